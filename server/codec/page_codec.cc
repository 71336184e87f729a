#include "server/codec/page_codec.h"

#include <lz4.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "contract/page.h"

namespace zpaged {

const char* PageEncodingName(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kSameFilled:
      return "same_filled";
    case PageEncoding::kLz4:
      return "lz4";
    case PageEncoding::kRaw:
      return "raw";
  }
  return "unknown";
}

std::optional<uint64_t> SameFilledWord(absl::Span<const uint8_t> page) {
  uint64_t word;
  std::memcpy(&word, page.data(), sizeof(word));
  for (size_t offset = sizeof(word); offset < kPageSize;
       offset += sizeof(word)) {
    uint64_t next;
    std::memcpy(&next, page.data() + offset, sizeof(next));
    if (next != word) return std::nullopt;
  }
  return word;
}

void FillWithWord(uint64_t word, absl::Span<uint8_t> page) {
  for (size_t offset = 0; offset < page.size(); offset += sizeof(word)) {
    std::memcpy(page.data() + offset, &word, sizeof(word));
  }
}

size_t Lz4CompressPage(absl::Span<const uint8_t> page,
                       absl::Span<uint8_t> out) {
  const int n = LZ4_compress_default(reinterpret_cast<const char*>(page.data()),
                                     reinterpret_cast<char*>(out.data()),
                                     static_cast<int>(page.size()),
                                     static_cast<int>(out.size()));
  return n > 0 ? static_cast<size_t>(n) : 0;
}

absl::Status Lz4DecompressPage(absl::Span<const uint8_t> compressed,
                               absl::Span<uint8_t> page) {
  const int n = LZ4_decompress_safe(
      reinterpret_cast<const char*>(compressed.data()),
      reinterpret_cast<char*>(page.data()), static_cast<int>(compressed.size()),
      static_cast<int>(page.size()));
  if (n != static_cast<int>(kPageSize)) {
    return absl::DataLossError(
        absl::StrCat("stored LZ4 data of ", compressed.size(),
                     " bytes decoded to ", n, " bytes, not one page"));
  }
  return absl::OkStatus();
}

}  // namespace zpaged
