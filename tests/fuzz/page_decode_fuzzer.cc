// Fuzzes the decode path of stored compressed pages: the first byte picks
// the encoding (even: LZ4, odd: zstd), the rest is the stored data. Any bytes
// must decode to one page or be refused with DATA_LOSS, never read or write
// out of bounds; and a page that decodes must survive compressing again.
// The same bytes, as a client's page of the encoding data[0] % 4 names,
// must expand to one page or be refused with INVALID_ARGUMENT; a client's
// LZ4 or zstd page that expands is one that the store's decoder reads alike.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "contract/page.h"
#include "server/codec/page_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool zstd = data[0] % 2 == 1;
  const zpaged::PageEncoding encoding =
      zstd ? zpaged::PageEncoding::kZstd : zpaged::PageEncoding::kLz4;
  std::array<uint8_t, zpaged::kPageSize> page;
  // An exact-size heap copy, so AddressSanitizer sees any read past the end.
  std::vector<uint8_t> stored(data + 1, data + size);
  const auto client_encoding = static_cast<zpaged::PageEncoding>(data[0] % 4);
  std::array<uint8_t, zpaged::kPageSize> expanded;
  const absl::Status expand = zpaged::ExpandEncodedPage(
      client_encoding, stored, absl::MakeSpan(expanded));
  if (!expand.ok() && !absl::IsInvalidArgument(expand)) std::abort();
  if (expand.ok() && (client_encoding == zpaged::PageEncoding::kLz4 ||
                      client_encoding == zpaged::PageEncoding::kZstd)) {
    std::array<uint8_t, zpaged::kPageSize> read;
    if (!zpaged::DecompressPage(client_encoding, stored, absl::MakeSpan(read))
             .ok() ||
        read != expanded) {
      std::abort();
    }
  }
  const absl::Status decoded =
      zpaged::DecompressPage(encoding, stored, absl::MakeSpan(page));
  if (!decoded.ok()) {
    if (!absl::IsDataLoss(decoded)) std::abort();
    return 0;
  }
  const zpaged::CodecOptions options{.compressor =
                                         zstd ? zpaged::PageCompressor::kZstd
                                              : zpaged::PageCompressor::kLz4};
  std::vector<uint8_t> again(2 * zpaged::kPageSize);
  const zpaged::Compressed c =
      zpaged::CompressPage(options, page, absl::MakeSpan(again));
  if (c.bytes == 0) std::abort();
  std::array<uint8_t, zpaged::kPageSize> back;
  if (!zpaged::DecompressPage(c.encoding,
                              absl::MakeConstSpan(again.data(), c.bytes),
                              absl::MakeSpan(back))
           .ok() ||
      back != page) {
    std::abort();
  }
  return 0;
}
