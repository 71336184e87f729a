#include "server/codec/page_codec.h"

#include <array>
#include <random>
#include <vector>

#include "contract/page.h"
#include "gtest/gtest.h"

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

TEST(PageCodecTest, CompressibleRoundTripsAndIncompressibleDoesNotFit) {
  Page text;
  for (size_t i = 0; i < kPageSize; ++i) text[i] = "zbud pages "[i % 11];
  std::vector<uint8_t> out(kPageSize);
  const size_t n = Lz4CompressPage(text, absl::MakeSpan(out));
  ASSERT_GT(n, 0u);
  EXPECT_LT(n, 200u);
  Page back{};
  ASSERT_TRUE(Lz4DecompressPage(absl::MakeConstSpan(out.data(), n),
                                absl::MakeSpan(back))
                  .ok());
  EXPECT_EQ(back, text);

  Page noise;
  std::mt19937_64 rng(3);
  for (uint8_t& b : noise) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(Lz4CompressPage(noise, absl::MakeSpan(out.data(), 3960)), 0u);
}

TEST(PageCodecTest, CorruptOrShortDataIsDataLoss) {
  Page page{};
  page[100] = 7;
  std::vector<uint8_t> out(kPageSize);
  const size_t n = Lz4CompressPage(page, absl::MakeSpan(out));
  ASSERT_GT(n, 0u);
  Page back;
  EXPECT_EQ(Lz4DecompressPage(absl::MakeConstSpan(out.data(), n - 1),
                              absl::MakeSpan(back))
                .code(),
            absl::StatusCode::kDataLoss);
  std::vector<uint8_t> garbage(64, 0xFF);
  EXPECT_EQ(Lz4DecompressPage(garbage, absl::MakeSpan(back)).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace zpaged
