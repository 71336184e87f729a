#include "server/auth/token_table.h"

#include "gtest/gtest.h"

namespace zpaged {
namespace {

TEST(TokenTableTest, ParsesGrantsCommentsAndBlankLines) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(
      "# operators\n"
      "\n"
      "s3cret-one vm-1,vm-2\n"
      "  s3cret-two\tvm-3  \n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  ASSERT_NE(table->TenantsOf("s3cret-one"), nullptr);
  EXPECT_EQ(*table->TenantsOf("s3cret-one"),
            (std::vector<std::string>{"vm-1", "vm-2"}));
  EXPECT_EQ(*table->TenantsOf("s3cret-two"), std::vector<std::string>{"vm-3"});
  EXPECT_EQ(table->TenantsOf("s3cret-on"), nullptr);
  EXPECT_EQ(table->TenantsOf("s3cret-one "), nullptr);
  EXPECT_EQ(table->TenantsOf(""), nullptr);
}

TEST(TokenTableTest, BadLinesAreRejectedWithoutShowingTheToken) {
  for (absl::string_view bad : {"Zq9-lonely\n", "Zq9 a b\n", "Zq9 bad/tenant\n",
                                "Zq9 a,,b\n", "Zq9 a\nZq9 b\n"}) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(bad);
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(table.status().message().find("Zq9"), absl::string_view::npos)
        << table.status();
    EXPECT_NE(table.status().message().find("line"), absl::string_view::npos);
  }
}

TEST(TokenTableTest, MissingFileIsNotFound) {
  EXPECT_EQ(TokenTable::Load("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("xbc", "abc"));
}

}  // namespace
}  // namespace zpaged
