#include "server/config/byte_size.h"

#include "gtest/gtest.h"

namespace zpaged {
namespace {

uint64_t Parse(absl::string_view text) {
  ByteSize size;
  std::string error;
  EXPECT_TRUE(AbslParseFlag(text, &size, &error)) << text << ": " << error;
  return size.bytes;
}

TEST(ByteSizeTest, ParsesPlainAndSuffixedSizes) {
  EXPECT_EQ(Parse("4096"), 4096u);
  EXPECT_EQ(Parse("64K"), 64u << 10);
  EXPECT_EQ(Parse("512m"), 512u << 20);
  EXPECT_EQ(Parse("4G"), uint64_t{4} << 30);
  EXPECT_EQ(Parse("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(Parse(" 1T "), uint64_t{1} << 40);
}

TEST(ByteSizeTest, RejectsGarbageAndOverflow) {
  for (absl::string_view bad : {"", "G", "12X", "-1", "1.5G", "1iB",
                                "99999999999999999999", "20000000T"}) {
    ByteSize size;
    std::string error;
    EXPECT_FALSE(AbslParseFlag(bad, &size, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

TEST(ByteSizeTest, UnparsesToTheLargestWholeUnit) {
  EXPECT_EQ(AbslUnparseFlag(ByteSize{uint64_t{4} << 30}), "4G");
  EXPECT_EQ(AbslUnparseFlag(ByteSize{1536u << 10}), "1536K");
  EXPECT_EQ(AbslUnparseFlag(ByteSize{1000}), "1000");
  EXPECT_EQ(AbslUnparseFlag(ByteSize{0}), "0");
}

}  // namespace
TEST(SizeOrPercentTest, TakesAPartOfTheLimitOrBytes) {
  SizeOrPercent size;
  std::string error;
  ASSERT_TRUE(AbslParseFlag("2%", &size, &error)) << error;
  EXPECT_EQ(size.Of(1000), 20u);
  EXPECT_EQ(AbslUnparseFlag(size), "2%");
  ASSERT_TRUE(AbslParseFlag("0.5%", &size, &error)) << error;
  EXPECT_EQ(size.Of(1000), 5u);
  ASSERT_TRUE(AbslParseFlag("64M", &size, &error)) << error;
  EXPECT_EQ(size.Of(uint64_t{1} << 30), uint64_t{64} << 20);
  EXPECT_EQ(size.Of(1000), 1000u);  // never more than the limit
  ASSERT_TRUE(AbslParseFlag("0", &size, &error)) << error;
  EXPECT_EQ(size.Of(1000), 0u);
}

TEST(SizeOrPercentTest, RejectsPercentagesOutOfRangeAndGarbage) {
  SizeOrPercent size;
  std::string error;
  EXPECT_FALSE(AbslParseFlag("101%", &size, &error));
  EXPECT_FALSE(AbslParseFlag("-1%", &size, &error));
  EXPECT_FALSE(AbslParseFlag("x%", &size, &error));
  EXPECT_FALSE(AbslParseFlag("%", &size, &error));
  EXPECT_FALSE(AbslParseFlag("2 percent", &size, &error));
}

}  // namespace zpaged
