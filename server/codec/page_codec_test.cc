#include "server/codec/page_codec.h"

#include <lz4.h>
#include <zstd.h>

#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "contract/page.h"
#include "gtest/gtest.h"
#include "tests/testing/compressor_param.h"

namespace zpaged {
namespace {

using Page = std::array<uint8_t, kPageSize>;

TEST(PageCodecTest, ZeroAndRepeatedWordPagesAreSameFilled) {
  Page page{};
  EXPECT_EQ(SameFilledWord(page), 0u);
  FillWithWord(0x0123456789ABCDEF, absl::MakeSpan(page));
  EXPECT_EQ(SameFilledWord(page), 0x0123456789ABCDEFu);
  page[kPageSize - 1] ^= 1;  // one bit off at the very end
  EXPECT_FALSE(SameFilledWord(page).has_value());
}

// Each compressor, through the functions the store uses.
class CompressorTest : public ::testing::TestWithParam<PageCompressor> {
 protected:
  CodecOptions options() const {
    return CodecOptions{.compressor = GetParam()};
  }
};

TEST_P(CompressorTest, CompressibleRoundTripsAndIncompressibleDoesNotFit) {
  Page text;
  for (size_t i = 0; i < kPageSize; ++i) text[i] = "zbud pages "[i % 11];
  std::vector<uint8_t> out(kPageSize);
  const Compressed c = CompressPage(options(), text, absl::MakeSpan(out));
  ASSERT_GT(c.bytes, 0u);
  EXPECT_LT(c.bytes, 200u);
  EXPECT_EQ(c.encoding, GetParam() == PageCompressor::kZstd
                            ? PageEncoding::kZstd
                            : PageEncoding::kLz4);
  Page back{};
  ASSERT_TRUE(DecompressPage(c.encoding,
                             absl::MakeConstSpan(out.data(), c.bytes),
                             absl::MakeSpan(back))
                  .ok());
  EXPECT_EQ(back, text);

  Page noise;
  std::mt19937_64 rng(3);
  for (uint8_t& b : noise) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(
      CompressPage(options(), noise, absl::MakeSpan(out.data(), 3960)).bytes,
      0u);
}

TEST_P(CompressorTest, CorruptOrShortDataIsDataLoss) {
  Page page{};
  page[100] = 7;
  std::vector<uint8_t> out(kPageSize);
  const Compressed c = CompressPage(options(), page, absl::MakeSpan(out));
  ASSERT_GT(c.bytes, 0u);
  Page back;
  EXPECT_EQ(
      DecompressPage(c.encoding, absl::MakeConstSpan(out.data(), c.bytes - 1),
                     absl::MakeSpan(back))
          .code(),
      absl::StatusCode::kDataLoss);
  std::vector<uint8_t> garbage(64, 0xFF);
  EXPECT_EQ(DecompressPage(c.encoding, garbage, absl::MakeSpan(back)).code(),
            absl::StatusCode::kDataLoss);
  // Valid data of the wrong length is not a page either.
  const Compressed half =
      CompressPage(options(), absl::MakeConstSpan(page.data(), kPageSize / 2),
                   absl::MakeSpan(out));
  EXPECT_EQ(
      DecompressPage(half.encoding, absl::MakeConstSpan(out.data(), half.bytes),
                     absl::MakeSpan(back))
          .code(),
      absl::StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(Compressors, CompressorTest, AllCompressors(),
                         CompressorName);

TEST(PageCodecTest, APageDecodesByTheEncodingItWasStoredWith) {
  Page text;
  for (size_t i = 0; i < kPageSize; ++i) text[i] = "swap slot "[i % 10];
  std::vector<uint8_t> out(kPageSize);
  const size_t n = ZstdCompressPage(text, absl::MakeSpan(out), 3);
  ASSERT_GT(n, 0u);
  Page back{};
  EXPECT_FALSE(DecompressPage(PageEncoding::kLz4,
                              absl::MakeConstSpan(out.data(), n),
                              absl::MakeSpan(back))
                   .ok());
  ASSERT_TRUE(DecompressPage(PageEncoding::kZstd,
                             absl::MakeConstSpan(out.data(), n),
                             absl::MakeSpan(back))
                  .ok());
  EXPECT_EQ(back, text);
}

TEST(PageCodecTest, CompressorNamesParseBack) {
  for (PageCompressor c : {PageCompressor::kLz4, PageCompressor::kZstd}) {
    EXPECT_EQ(ParsePageCompressor(PageCompressorName(c)), c);
  }
  EXPECT_FALSE(ParsePageCompressor("gzip").has_value());
}

TEST(PageCodecTest, ZstdLevelsOutsideItsRangeAreRefused) {
  EXPECT_TRUE(ValidateCodecOptions(
                  {.compressor = PageCompressor::kZstd, .zstd_level = 19})
                  .ok());
  EXPECT_EQ(ValidateCodecOptions(
                {.compressor = PageCompressor::kZstd, .zstd_level = 99})
                .code(),
            absl::StatusCode::kInvalidArgument);
  // The level means nothing to LZ4.
  EXPECT_TRUE(ValidateCodecOptions({.zstd_level = 99}).ok());
}

// Pages as a client encodes them: each encoding's well-formed bytes expand
// to the page, and every malformed form is refused, never read or written
// past its bounds.
class EncodedPageTest : public ::testing::Test {
 protected:
  static Page TextPage() {
    Page page;
    for (size_t i = 0; i < kPageSize; ++i) page[i] = "edge pages "[i % 11];
    return page;
  }
  static std::vector<uint8_t> Lz4(absl::Span<const uint8_t> input) {
    std::vector<uint8_t> out(LZ4_compressBound(input.size()));
    out.resize(LZ4_compress_default(reinterpret_cast<const char*>(input.data()),
                                    reinterpret_cast<char*>(out.data()),
                                    input.size(), out.size()));
    return out;
  }
  static std::vector<uint8_t> Zstd(absl::Span<const uint8_t> input,
                                   bool name_size = true) {
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(),
                                                            ZSTD_freeCCtx);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, name_size);
    std::vector<uint8_t> out(ZSTD_compressBound(input.size()));
    out.resize(ZSTD_compress2(cctx.get(), out.data(), out.size(), input.data(),
                              input.size()));
    return out;
  }
  static absl::StatusCode Expand(PageEncoding encoding,
                                 const std::vector<uint8_t>& bytes) {
    Page out;
    return ExpandEncodedPage(encoding, bytes, absl::MakeSpan(out)).code();
  }
};

TEST_F(EncodedPageTest, EveryEncodingExpandsToThePage) {
  const Page text = TextPage();
  Page out;
  for (const auto& [encoding, bytes] :
       {std::pair{PageEncoding::kLz4, Lz4(text)},
        std::pair{PageEncoding::kZstd, Zstd(text)},
        std::pair{PageEncoding::kRaw,
                  std::vector<uint8_t>(text.begin(), text.end())}}) {
    out.fill(0);
    ASSERT_TRUE(ExpandEncodedPage(encoding, bytes, absl::MakeSpan(out)).ok())
        << PageEncodingName(encoding);
    EXPECT_EQ(out, text) << PageEncodingName(encoding);
  }
  const uint64_t word = 0x0123456789ABCDEF;
  std::vector<uint8_t> word_bytes(sizeof(word));
  std::memcpy(word_bytes.data(), &word, sizeof(word));
  ASSERT_TRUE(ExpandEncodedPage(PageEncoding::kSameFilled, word_bytes,
                                absl::MakeSpan(out))
                  .ok());
  EXPECT_EQ(SameFilledWord(out), word);
}

TEST_F(EncodedPageTest, MalformedLz4IsRefused) {
  const Page text = TextPage();
  std::vector<uint8_t> good = Lz4(text);
  std::vector<uint8_t> truncated(good.begin(), good.end() - 1);
  std::vector<uint8_t> too_long = good;
  too_long.push_back(0);
  std::vector<uint8_t> longer_page(kPageSize + 1, 'e');
  EXPECT_EQ(Expand(PageEncoding::kLz4, truncated),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kLz4, too_long),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kLz4,
                   Lz4(absl::MakeConstSpan(text).subspan(0, kPageSize - 1))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kLz4, Lz4(longer_page)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kLz4, {}), absl::StatusCode::kInvalidArgument);
  // The right bytes under the wrong name.
  EXPECT_EQ(Expand(PageEncoding::kZstd, good),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kLz4, Zstd(text)),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EncodedPageTest, MalformedZstdIsRefused) {
  const Page text = TextPage();
  const std::vector<uint8_t> good = Zstd(text);
  std::vector<uint8_t> truncated(good.begin(), good.end() - 1);
  std::vector<uint8_t> two_frames = good;
  two_frames.insert(two_frames.end(), good.begin(), good.end());
  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  EXPECT_EQ(Expand(PageEncoding::kZstd, truncated),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kZstd, two_frames),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kZstd, trailing),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kZstd,
                   Zstd(absl::MakeConstSpan(text).subspan(0, kPageSize - 1))),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> longer_page(kPageSize + 1, 'e');
  EXPECT_EQ(Expand(PageEncoding::kZstd, Zstd(longer_page)),
            absl::StatusCode::kInvalidArgument);
  // A frame that does not say how large it is could say anything.
  EXPECT_EQ(Expand(PageEncoding::kZstd, Zstd(text, /*name_size=*/false)),
            absl::StatusCode::kInvalidArgument);
  // A bomb: 64 MiB of zeros in a few hundred bytes, claiming its size.
  const std::vector<uint8_t> zeros(64 << 20, 0);
  const std::vector<uint8_t> bomb = Zstd(zeros);
  ASSERT_LT(bomb.size(), 8192u);
  EXPECT_EQ(Expand(PageEncoding::kZstd, bomb),
            absl::StatusCode::kInvalidArgument);
  // The good frame, but naming dictionary 42 (a one-byte dictionary id
  // after the header descriptor of a single-segment frame).
  std::vector<uint8_t> with_dictionary = good;
  ASSERT_EQ(with_dictionary[4] & 0x23, 0x20);  // single segment, no dict id
  with_dictionary[4] |= 0x01;
  with_dictionary.insert(with_dictionary.begin() + 5, 42);
  ASSERT_EQ(
      ZSTD_getDictID_fromFrame(with_dictionary.data(), with_dictionary.size()),
      42u);
  EXPECT_EQ(Expand(PageEncoding::kZstd, with_dictionary),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EncodedPageTest, SameFilledAndRawOfTheWrongSizeAreRefused) {
  EXPECT_EQ(Expand(PageEncoding::kSameFilled, std::vector<uint8_t>(7)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kSameFilled, std::vector<uint8_t>(9)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kRaw, std::vector<uint8_t>(kPageSize - 1)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Expand(PageEncoding::kRaw, std::vector<uint8_t>(kPageSize + 1)),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zpaged
