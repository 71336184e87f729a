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

}  // namespace
}  // namespace zpaged
