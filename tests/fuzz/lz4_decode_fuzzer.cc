// Fuzzes the decode path of stored LZ4 data: any bytes must decode to one
// page or be refused with DATA_LOSS, never read or write out of bounds; and a
// page that decodes must survive compressing again.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "contract/page.h"
#include "server/codec/page_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::array<uint8_t, zpaged::kPageSize> page;
  // An exact-size heap copy, so AddressSanitizer sees any read past the end.
  std::vector<uint8_t> stored(data, data + size);
  const absl::Status decoded =
      zpaged::Lz4DecompressPage(stored, absl::MakeSpan(page));
  if (!decoded.ok()) {
    if (!absl::IsDataLoss(decoded)) std::abort();
    return 0;
  }
  std::vector<uint8_t> again(zpaged::kPageSize + zpaged::kPageSize / 255 + 16);
  const size_t n = zpaged::Lz4CompressPage(page, absl::MakeSpan(again));
  if (n == 0) std::abort();
  std::array<uint8_t, zpaged::kPageSize> back;
  if (!zpaged::Lz4DecompressPage(absl::MakeConstSpan(again.data(), n),
                                 absl::MakeSpan(back))
           .ok() ||
      back != page) {
    std::abort();
  }
  return 0;
}
