// EdgeCodec: compression at the edge. A client encodes the pages it puts
// on its own threads, as the server would (same-filled pages as their word,
// the rest LZ4 or zstd, RAW when that saves nothing), sends them encoded,
// and asks for pages back as stored, so the server stores, copies and
// returns compressed bytes and never runs a compressor for it. The codec
// itself is the server's (server/codec/page_codec.h): one definition of
// each encoding for both sides.

#ifndef ZPAGED_CLIENT_LIB_EDGE_CODEC_H_
#define ZPAGED_CLIENT_LIB_EDGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "contract/page_encoding.h"

namespace zpaged {

enum class EdgeCompressor {
  kNone,  // pages travel whole; the server compresses them (older clients)
  kLz4,
  kZstd,
};

// "none", "lz4" or "zstd", as the tools' flags and the bridge spell them.
const char* EdgeCompressorName(EdgeCompressor compressor);
std::optional<EdgeCompressor> ParseEdgeCompressor(absl::string_view name);

struct EdgeCompression {
  EdgeCompressor compressor = EdgeCompressor::kLz4;
  // zstd's level, as the server's --zstd_level.
  int zstd_level = 1;
};

// What this client asks the server to return pages in: the encodings it
// decodes, none when it compresses nothing (then pages come back whole).
PageEncodingSet AcceptedEncodings(const EdgeCompression& compression);

// Encodes `page` (kPageSize bytes) into `out` (kPageSize bytes or more) as
// `compression` says, which must not be kNone; returns its encoding and
// size.
struct EdgeEncoded {
  PageEncoding encoding;
  size_t bytes;
};
EdgeEncoded EncodeAtEdge(const EdgeCompression& compression,
                         absl::Span<const uint8_t> page,
                         absl::Span<uint8_t> out);

// Writes into `page` (kPageSize bytes) the page that `bytes`, as the server
// returned it in `encoding`, stands for. DATA_LOSS if they do not decode to
// exactly one page.
absl::Status ExpandAtEdge(PageEncoding encoding, absl::string_view bytes,
                          uint8_t* page);

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_LIB_EDGE_CODEC_H_
