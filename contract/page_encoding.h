// How a page is kept, as server and clients name it.

#ifndef ZPAGED_CONTRACT_PAGE_ENCODING_H_
#define ZPAGED_CONTRACT_PAGE_ENCODING_H_

#include <cstdint>

namespace zpaged {

// SAME_FILLED: one repeated 8-byte word, kept as the word; LZ4 and ZSTD:
// compressed; RAW: kept whole (it did not compress enough).
enum class PageEncoding : uint8_t { kSameFilled, kLz4, kRaw, kZstd };

// "same_filled", "lz4", "raw" or "zstd".
const char* PageEncodingName(PageEncoding encoding);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_PAGE_ENCODING_H_
