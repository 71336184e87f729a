#include "server/core/memory_budget.h"

#include "gtest/gtest.h"

namespace zpaged {
namespace {

TEST(MemoryBudgetTest, RefusesPastTheLimitAndNamesIt) {
  MemoryBudget budget(100, "server memory limit");
  EXPECT_TRUE(budget.Charge(60).ok());
  const absl::Status over = budget.Charge(41);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.message(), "server memory limit of 100 bytes reached");
  EXPECT_EQ(budget.used_bytes(), 60u);
  EXPECT_TRUE(budget.Charge(40).ok());
  budget.Release(100);
  EXPECT_EQ(budget.used_bytes(), 0u);
}

TEST(MemoryBudgetTest, AChildChargesItsParentOrNeither) {
  MemoryBudget server(100, "server memory limit");
  MemoryBudget tenant_a(70, "tenant 'a' limit", &server);
  MemoryBudget tenant_b(70, "tenant 'b' limit", &server);
  ASSERT_TRUE(tenant_a.Charge(60).ok());
  // Within b's limit, past the server's: neither is charged.
  const absl::Status refused = tenant_b.Charge(50);
  EXPECT_EQ(refused.message(), "server memory limit of 100 bytes reached");
  EXPECT_EQ(tenant_b.used_bytes(), 0u);
  EXPECT_EQ(server.used_bytes(), 60u);
  // Past a's own limit: refused by a, the server untouched.
  EXPECT_EQ(tenant_a.Charge(20).message(),
            "tenant 'a' limit of 70 bytes reached");
  EXPECT_EQ(server.used_bytes(), 60u);
  ASSERT_TRUE(tenant_b.Charge(40).ok());
  EXPECT_EQ(server.used_bytes(), 100u);
  tenant_a.Release(60);
  EXPECT_EQ(server.used_bytes(), 40u);
  EXPECT_EQ(tenant_a.used_bytes(), 0u);
}

}  // namespace
}  // namespace zpaged
