// ByteSize: a flag value in bytes that people can write as 512M or 4G.

#ifndef ZPAGED_SERVER_CONFIG_BYTE_SIZE_H_
#define ZPAGED_SERVER_CONFIG_BYTE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace zpaged {

struct ByteSize {
  uint64_t bytes = 0;
};

// Parses a whole number with an optional binary suffix: K, M, G or T (also
// KiB, MiB, GiB, TiB, any case). Returns false, with `error` set, on anything
// else or on overflow.
bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error);
std::string AbslUnparseFlag(ByteSize size);

// A size given either in bytes (as ByteSize) or as a part of some limit,
// "2%": for a margin that should follow the limit it is taken from.
struct SizeOrPercent {
  uint64_t bytes = 0;
  double percent = -1;  // >= 0: a part of the limit, and `bytes` unused

  // What it comes to under `limit` (never more than `limit`).
  uint64_t Of(uint64_t limit) const;
};

// A ByteSize, or a number from 0 to 100 followed by '%'.
bool AbslParseFlag(absl::string_view text, SizeOrPercent* size,
                   std::string* error);
std::string AbslUnparseFlag(const SizeOrPercent& size);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CONFIG_BYTE_SIZE_H_
