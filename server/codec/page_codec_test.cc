#include "server/codec/page_codec.h"

#include <array>
#include <random>
#include <string>
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

}  // namespace
}  // namespace zpaged
