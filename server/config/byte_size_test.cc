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
}  // namespace zpaged
