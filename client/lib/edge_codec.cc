#include "client/lib/edge_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "contract/page.h"
#include "server/codec/page_codec.h"

namespace zpaged {

const char* EdgeCompressorName(EdgeCompressor compressor) {
  switch (compressor) {
    case EdgeCompressor::kNone:
      return "none";
    case EdgeCompressor::kLz4:
      return "lz4";
    case EdgeCompressor::kZstd:
      return "zstd";
  }
  return "unknown";
}

std::optional<EdgeCompressor> ParseEdgeCompressor(absl::string_view name) {
  for (EdgeCompressor c :
       {EdgeCompressor::kNone, EdgeCompressor::kLz4, EdgeCompressor::kZstd}) {
    if (name == EdgeCompressorName(c)) return c;
  }
  return std::nullopt;
}

PageEncodingSet AcceptedEncodings(const EdgeCompression& compression) {
  if (compression.compressor == EdgeCompressor::kNone) return {};
  // Whatever the server keeps, whichever compressor put it there.
  return {PageEncoding::kSameFilled, PageEncoding::kLz4, PageEncoding::kZstd};
}

EdgeEncoded EncodeAtEdge(const EdgeCompression& compression,
                         absl::Span<const uint8_t> page,
                         absl::Span<uint8_t> out) {
  if (std::optional<uint64_t> word = SameFilledWord(page)) {
    std::memcpy(out.data(), &*word, sizeof(*word));
    return {PageEncoding::kSameFilled, sizeof(*word)};
  }
  // A page that does not shrink travels whole: a compressed page as large
  // as one saves nothing on the wire and costs the server a decode.
  const CodecOptions codec{
      .compressor = compression.compressor == EdgeCompressor::kZstd
                        ? PageCompressor::kZstd
                        : PageCompressor::kLz4,
      .zstd_level = compression.zstd_level};
  const Compressed compressed =
      CompressPage(codec, page, out.subspan(0, kPageSize - 1));
  if (compressed.bytes > 0) return {compressed.encoding, compressed.bytes};
  std::memcpy(out.data(), page.data(), kPageSize);
  return {PageEncoding::kRaw, kPageSize};
}

absl::Status ExpandAtEdge(PageEncoding encoding, absl::string_view bytes,
                          uint8_t* page) {
  absl::Status expanded = ExpandEncodedPage(
      encoding,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()),
                          bytes.size()),
      absl::MakeSpan(page, kPageSize));
  if (expanded.ok()) return expanded;
  return absl::DataLossError(absl::StrCat(
      "the server returned a page that does not decode: ", expanded.message()));
}

}  // namespace zpaged
