#include "server/net/stream_reset_guard.h"

#include <vector>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

ConnectionStreams Connection(int64_t id, int64_t failed) {
  PeerAddress peer;
  peer.port = static_cast<uint16_t>(id);
  return ConnectionStreams{
      .socket_id = id, .peer = peer, .streams_failed = failed};
}

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(ResetBudgetsTest, AConnectionMayResetOneSecondsWorthAtOnce) {
  ResetBudgets budgets(1000);
  EXPECT_TRUE(budgets.Overspent({Connection(1, 1000)}, kStart).empty());
  EXPECT_DOUBLE_EQ(budgets.least_left(), 0);
  const std::vector<ConnectionStreams> over =
      budgets.Overspent({Connection(1, 1001)}, kStart);
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].socket_id, 1);
}

TEST(ResetBudgetsTest, TheBudgetRefillsAtTheRateUpToOneSecondsWorth) {
  ResetBudgets budgets(1000);
  EXPECT_TRUE(budgets.Overspent({Connection(1, 900)}, kStart).empty());
  // Half a second later, 500 are back: 600 left.
  EXPECT_TRUE(
      budgets.Overspent({Connection(1, 1500)}, kStart + absl::Seconds(0.5))
          .empty());
  EXPECT_NEAR(budgets.least_left(), 0, 1e-6);
  // A long quiet spell refills one second's worth, no more.
  EXPECT_TRUE(
      budgets.Overspent({Connection(1, 2500)}, kStart + absl::Seconds(60.5))
          .empty());
  EXPECT_EQ(
      budgets.Overspent({Connection(1, 2501)}, kStart + absl::Seconds(60.5))
          .size(),
      1u);
}

TEST(ResetBudgetsTest, ASteadyRateUnderTheLimitNeverOverspends) {
  ResetBudgets budgets(1000);
  for (int tick = 1; tick <= 100; ++tick) {
    EXPECT_TRUE(budgets
                    .Overspent({Connection(1, tick * 90)},
                               kStart + absl::Milliseconds(100 * tick))
                    .empty())
        << tick;
  }
}

TEST(ResetBudgetsTest, ConnectionsHaveTheirOwnBudgetsAndEachIsReportedOnce) {
  ResetBudgets budgets(100);
  const std::vector<ConnectionStreams> over = budgets.Overspent(
      {Connection(1, 50), Connection(2, 150), Connection(3, 100)}, kStart);
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].socket_id, 2);
  EXPECT_DOUBLE_EQ(budgets.least_left(), 0);  // connection 3's
  EXPECT_TRUE(budgets
                  .Overspent({Connection(1, 50), Connection(2, 300)},
                             kStart + absl::Milliseconds(1))
                  .empty());
  // Connection 3 was forgotten: seen again, it starts from a full budget
  // less what it has failed, not from what it had left plus the refill.
  EXPECT_TRUE(budgets.Overspent({Connection(3, 100)}, kStart + absl::Seconds(2))
                  .empty());
  EXPECT_DOUBLE_EQ(budgets.least_left(), 0);
}

}  // namespace
}  // namespace zpaged
