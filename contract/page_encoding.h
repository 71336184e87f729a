// How a page is kept, as server and clients name it.

#ifndef ZPAGED_CONTRACT_PAGE_ENCODING_H_
#define ZPAGED_CONTRACT_PAGE_ENCODING_H_

#include <cstdint>
#include <initializer_list>

namespace zpaged {

// SAME_FILLED: one repeated 8-byte word, kept as the word; LZ4 and ZSTD:
// compressed; RAW: kept whole (it did not compress enough).
enum class PageEncoding : uint8_t { kSameFilled, kLz4, kRaw, kZstd };

// "same_filled", "lz4", "raw" or "zstd".
const char* PageEncodingName(PageEncoding encoding);

// Encodings a client decodes itself, so that pages stored in them may come
// back as stored. Empty: pages come back whole.
class PageEncodingSet {
 public:
  constexpr PageEncodingSet() = default;
  constexpr PageEncodingSet(std::initializer_list<PageEncoding> encodings) {
    for (PageEncoding e : encodings) Add(e);
  }
  constexpr void Add(PageEncoding encoding) { bits_ |= Bit(encoding); }
  constexpr bool Contains(PageEncoding encoding) const {
    return (bits_ & Bit(encoding)) != 0;
  }
  constexpr bool empty() const { return bits_ == 0; }

 private:
  static constexpr uint8_t Bit(PageEncoding encoding) {
    return static_cast<uint8_t>(1u << static_cast<unsigned>(encoding));
  }
  uint8_t bits_ = 0;
};

// Every encoding: pages as they are kept.
inline constexpr PageEncodingSet kEveryEncoding = {
    PageEncoding::kSameFilled, PageEncoding::kLz4, PageEncoding::kRaw,
    PageEncoding::kZstd};

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_PAGE_ENCODING_H_
