#include "server/codec/page_codec.h"

#include <lz4.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "contract/page.h"

namespace zpaged {

const char* PageCompressorName(PageCompressor compressor) {
  return compressor == PageCompressor::kZstd ? "zstd" : "lz4";
}

std::optional<PageCompressor> ParsePageCompressor(absl::string_view name) {
  for (PageCompressor c : {PageCompressor::kLz4, PageCompressor::kZstd}) {
    if (name == PageCompressorName(c)) return c;
  }
  return std::nullopt;
}

absl::Status ValidateCodecOptions(const CodecOptions& options) {
  if (options.compressor == PageCompressor::kZstd &&
      (options.zstd_level < ZSTD_minCLevel() ||
       options.zstd_level > ZSTD_maxCLevel())) {
    return absl::InvalidArgumentError(
        absl::StrCat("zstd level ", options.zstd_level, " is not in ",
                     ZSTD_minCLevel(), " to ", ZSTD_maxCLevel()));
  }
  return absl::OkStatus();
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

namespace {

// One compression and one decompression context per thread: made once,
// they make a page's compression allocation-free.
struct ZstdContexts {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> compress{ZSTD_createCCtx(),
                                                              ZSTD_freeCCtx};
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> decompress{
      ZSTD_createDCtx(), ZSTD_freeDCtx};
};

ZstdContexts& ThreadZstdContexts() {
  thread_local ZstdContexts contexts;
  return contexts;
}

}  // namespace

size_t ZstdCompressPage(absl::Span<const uint8_t> page, absl::Span<uint8_t> out,
                        int level) {
  const size_t n =
      ZSTD_compressCCtx(ThreadZstdContexts().compress.get(), out.data(),
                        out.size(), page.data(), page.size(), level);
  return ZSTD_isError(n) ? 0 : n;
}

absl::Status ZstdDecompressPage(absl::Span<const uint8_t> compressed,
                                absl::Span<uint8_t> page) {
  const size_t n =
      ZSTD_decompressDCtx(ThreadZstdContexts().decompress.get(), page.data(),
                          page.size(), compressed.data(), compressed.size());
  if (ZSTD_isError(n) || n != kPageSize) {
    return absl::DataLossError(absl::StrCat(
        "stored zstd data of ", compressed.size(),
        " bytes did not decode to one page: ",
        ZSTD_isError(n) ? ZSTD_getErrorName(n) : absl::StrCat(n, " bytes")));
  }
  return absl::OkStatus();
}

Compressed CompressPage(const CodecOptions& options,
                        absl::Span<const uint8_t> page,
                        absl::Span<uint8_t> out) {
  if (options.compressor == PageCompressor::kZstd) {
    return {ZstdCompressPage(page, out, options.zstd_level),
            PageEncoding::kZstd};
  }
  return {Lz4CompressPage(page, out), PageEncoding::kLz4};
}

absl::Status DecompressPage(PageEncoding encoding,
                            absl::Span<const uint8_t> compressed,
                            absl::Span<uint8_t> page) {
  return encoding == PageEncoding::kZstd ? ZstdDecompressPage(compressed, page)
                                         : Lz4DecompressPage(compressed, page);
}

namespace {

// Checks a zstd frame's header before decoding it: one frame, exactly the
// input, of one page, needing no dictionary.
absl::Status CheckZstdFrame(absl::Span<const uint8_t> frame) {
  const size_t frame_bytes =
      ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "zstd data of ", frame.size(),
        " bytes is not a whole frame: ", ZSTD_getErrorName(frame_bytes)));
  }
  if (frame_bytes != frame.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("zstd data of ", frame.size(), " bytes holds a frame of ",
                     frame_bytes, " bytes and more after it"));
  }
  const unsigned long long content =
      ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content != kPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a zstd frame must name its content size, ", kPageSize, "; this one ",
        content == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("does not name it")
                                            : absl::StrCat("names ", content)));
  }
  if (const unsigned dictionary =
          ZSTD_getDictID_fromFrame(frame.data(), frame.size());
      dictionary != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the zstd frame needs dictionary ", dictionary,
                     ", which zpaged has not"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExpandEncodedPage(PageEncoding encoding,
                               absl::Span<const uint8_t> encoded,
                               absl::Span<uint8_t> page) {
  switch (encoding) {
    case PageEncoding::kSameFilled: {
      uint64_t word;
      if (encoded.size() != sizeof(word)) {
        return absl::InvalidArgumentError(
            absl::StrCat("a SAME_FILLED page is its ", sizeof(word),
                         "-byte word, not ", encoded.size(), " bytes"));
      }
      std::memcpy(&word, encoded.data(), sizeof(word));
      FillWithWord(word, page);
      return absl::OkStatus();
    }
    case PageEncoding::kRaw:
      if (encoded.size() != kPageSize) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a RAW page is ", kPageSize, " bytes, not ", encoded.size()));
      }
      std::memcpy(page.data(), encoded.data(), kPageSize);
      return absl::OkStatus();
    case PageEncoding::kLz4:
      if (!Lz4DecompressPage(encoded, page).ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "LZ4 data of ", encoded.size(),
            " bytes does not decode to exactly ", kPageSize, " bytes"));
      }
      return absl::OkStatus();
    case PageEncoding::kZstd:
      if (absl::Status frame = CheckZstdFrame(encoded); !frame.ok()) {
        return frame;
      }
      if (absl::Status decoded = ZstdDecompressPage(encoded, page);
          !decoded.ok()) {
        return absl::InvalidArgumentError(decoded.message());
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown page encoding");
}

}  // namespace zpaged
