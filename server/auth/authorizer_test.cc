#include "server/auth/authorizer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/zpaged-tokens-XXXXXX";
    close(mkstemp(name));
    path_ = name;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void Write(const std::string& contents) { std::ofstream(path_) << contents; }
  std::string path_;
};

TEST_F(AuthorizerTest, OffAllowsEverything) {
  Authorizer off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.Check(std::nullopt, "any").ok());
  EXPECT_FALSE(off.TenantsOf(std::nullopt)->has_value());
}

TEST_F(AuthorizerTest, TokensGrantTheirTenantsOnly) {
  Write("alpha vm-1,vm-2\nbeta vm-3\n");
  auto auth = Authorizer::FromFile(path_);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Check("Bearer alpha", "vm-1").ok());
  EXPECT_TRUE((*auth)->Check("bearer alpha", "vm-2").ok());
  EXPECT_EQ((*auth)->Check("Bearer alpha", "vm-3").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*auth)->Check("Bearer gamma", "vm-1").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*auth)->Check(std::nullopt, "vm-1").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*auth)->Check("alpha", "vm-1").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(**(*auth)->TenantsOf("Bearer beta"),
            std::vector<std::string>{"vm-3"});
}

TEST_F(AuthorizerTest, ReloadSwapsTablesAndKeepsTheOldOneOnError) {
  Write("alpha vm-1\n");
  auto auth = Authorizer::FromFile(path_);
  ASSERT_TRUE(auth.ok());
  Write("alpha vm-2\n");
  ASSERT_EQ(*(*auth)->Reload(), 1u);
  EXPECT_EQ((*auth)->Check("Bearer alpha", "vm-1").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*auth)->Check("Bearer alpha", "vm-2").ok());
  Write("alpha\n");  // broken
  EXPECT_FALSE((*auth)->Reload().ok());
  EXPECT_TRUE((*auth)->Check("Bearer alpha", "vm-2").ok());
}

TEST_F(AuthorizerTest, UnreadableFileFailsAtStart) {
  EXPECT_FALSE(Authorizer::FromFile("/nonexistent/tokens").ok());
}

}  // namespace
}  // namespace zpaged
