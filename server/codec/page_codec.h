// PageCodec: how a 4 KiB page is kept, and the transforms between a page and
// what is kept.
//
//   SAME_FILLED  the page is one 8-byte word repeated (zero pages above all):
//                keep the word.
//   LZ4, ZSTD    the compressor's output (CodecOptions picks one) fits the
//                caller's bound: keep the compressed bytes.
//   RAW          it does not: keep the page as it is.
//
// Each stored page records its encoding, so pages of both compressors
// decode whatever the options are now. Functions over caller-provided
// buffers: no allocation and no locks, apart from zstd's contexts, one per
// thread, made on a thread's first use.

#ifndef ZPAGED_SERVER_CODEC_PAGE_CODEC_H_
#define ZPAGED_SERVER_CODEC_PAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "contract/page_encoding.h"

namespace zpaged {

enum class PageCompressor { kLz4, kZstd };

// "lz4" or "zstd", as --compressor spells them.
const char* PageCompressorName(PageCompressor compressor);
// The compressor `name` spells, if any.
std::optional<PageCompressor> ParsePageCompressor(absl::string_view name);

// How pages that are not same-filled are compressed.
struct CodecOptions {
  PageCompressor compressor = PageCompressor::kLz4;
  // zstd's level (ZSTD_minCLevel() to ZSTD_maxCLevel()); 1 is its fastest
  // positive level. A per-tenant trained dictionary would join these.
  int zstd_level = 1;
};

// OK if `options` name a level zstd has; INVALID_ARGUMENT saying why not.
absl::Status ValidateCodecOptions(const CodecOptions& options);

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

// As Lz4CompressPage, with zstd at `level`. zstd does not stop early when
// the output outgrows `out`, but the bound still decides RAW.
size_t ZstdCompressPage(absl::Span<const uint8_t> page, absl::Span<uint8_t> out,
                        int level);

// As Lz4DecompressPage, for one zstd frame.
absl::Status ZstdDecompressPage(absl::Span<const uint8_t> compressed,
                                absl::Span<uint8_t> page);

// Compresses `page` into `out` as `options` say, and returns the size and
// the encoding (kLz4 or kZstd); a size of 0 means it does not fit: RAW.
struct Compressed {
  size_t bytes;
  PageEncoding encoding;
};
Compressed CompressPage(const CodecOptions& options,
                        absl::Span<const uint8_t> page,
                        absl::Span<uint8_t> out);

// Decompresses a page stored as `encoding` (kLz4 or kZstd).
absl::Status DecompressPage(PageEncoding encoding,
                            absl::Span<const uint8_t> compressed,
                            absl::Span<uint8_t> page);

// A page as a client encoded it, for the server to check or a client to
// expand: SAME_FILLED, the 8-byte word; LZ4, one block; ZSTD, one frame that
// names its content size and no dictionary; RAW, the kPageSize-byte page.
// Writes the page into `page` (kPageSize bytes) and returns OK only if
// `encoded` is exactly that and decodes to exactly one page; otherwise
// INVALID_ARGUMENT saying what is wrong, with `page` undefined. Never reads
// past `encoded` nor writes past `page`, whatever the bytes claim.
absl::Status ExpandEncodedPage(PageEncoding encoding,
                               absl::Span<const uint8_t> encoded,
                               absl::Span<uint8_t> page);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CODEC_PAGE_CODEC_H_
