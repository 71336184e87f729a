// PageCodec: how a 4 KiB page is kept, and the transforms between a page and
// what is kept.
//
//   SAME_FILLED  the page is one 8-byte word repeated (zero pages above all):
//                keep the word.
//   LZ4          LZ4 output fits the caller's bound: keep the compressed bytes.
//   RAW          it does not: keep the page as it is.
//
// Pure functions over caller-provided buffers: no allocation, no locks.

#ifndef ZPAGED_SERVER_CODEC_PAGE_CODEC_H_
#define ZPAGED_SERVER_CODEC_PAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace zpaged {

enum class PageEncoding : uint8_t { kSameFilled, kLz4, kRaw };

// "same_filled", "lz4" or "raw".
const char* PageEncodingName(PageEncoding encoding);

// The repeated word if `page` (kPageSize bytes) is one 8-byte word repeated.
std::optional<uint64_t> SameFilledWord(absl::Span<const uint8_t> page);

// Writes `word` over all of `page`.
void FillWithWord(uint64_t word, absl::Span<uint8_t> page);

// Compresses `page` into `out` and returns the compressed size, or 0 when the
// output would not fit in `out.size()` bytes (then LZ4 gives up early, which
// is what makes incompressible pages cheap to classify).
size_t Lz4CompressPage(absl::Span<const uint8_t> page, absl::Span<uint8_t> out);

// Decompresses `compressed` into `page`, which must be kPageSize bytes.
// DATA_LOSS unless the input decodes to exactly one page.
absl::Status Lz4DecompressPage(absl::Span<const uint8_t> compressed,
                               absl::Span<uint8_t> page);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CODEC_PAGE_CODEC_H_
