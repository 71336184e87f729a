#include "client/tier/dropped_copies.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace zpaged {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

TEST(DroppedCopiesTest, ARecordNamesOneCopy) {
  DroppedCopies dropped;
  dropped.Add("vm", 7, "m0", kStart);
  EXPECT_TRUE(dropped.Contains("vm", 7, "m0", kStart));
  EXPECT_FALSE(dropped.Contains("vm", 7, "m1", kStart));
  EXPECT_FALSE(dropped.Contains("vm", 8, "m0", kStart));
  EXPECT_FALSE(dropped.Contains("other", 7, "m0", kStart));
}

TEST(DroppedCopiesTest, RecordsExpireAfterTheirTime) {
  DroppedCopies dropped(absl::Seconds(10));
  dropped.Add("vm", 1, "m0", kStart);
  dropped.Add("vm", 2, "m0", kStart + absl::Seconds(5));
  EXPECT_TRUE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(10)));
  EXPECT_FALSE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(11)));
  EXPECT_TRUE(dropped.Contains("vm", 2, "m0", kStart + absl::Seconds(11)));
  EXPECT_EQ(dropped.size(), 1u);
}

TEST(DroppedCopiesTest, TheOldestGoPastTheLimit) {
  DroppedCopies dropped(absl::Minutes(2), 3);
  for (uint64_t key = 0; key < 5; ++key) dropped.Add("vm", key, "m0", kStart);
  EXPECT_EQ(dropped.size(), 3u);
  EXPECT_FALSE(dropped.Contains("vm", 1, "m0", kStart));
  EXPECT_TRUE(dropped.Contains("vm", 2, "m0", kStart));
  EXPECT_TRUE(dropped.Contains("vm", 4, "m0", kStart));
}

TEST(DroppedCopiesTest, ACopyDroppedTwiceStaysUntilItsLastRecordGoes) {
  DroppedCopies dropped(absl::Seconds(10));
  dropped.Add("vm", 1, "m0", kStart);
  dropped.Add("vm", 1, "m0", kStart + absl::Seconds(8));
  EXPECT_TRUE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(15)));
  EXPECT_FALSE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(19)));
}

TEST(DroppedCopiesTest, ACopyStoredAgainIsHeld) {
  DroppedCopies dropped(absl::Seconds(10));
  dropped.Add("vm", 1, "m0", kStart);
  dropped.Add("vm", 1, "m0", kStart + absl::Seconds(1));
  dropped.Remove("vm", 1, "m0");
  EXPECT_FALSE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(2)));
  dropped.Add("vm", 1, "m0", kStart + absl::Seconds(12));
  EXPECT_TRUE(dropped.Contains("vm", 1, "m0", kStart + absl::Seconds(12)));
}

}  // namespace
}  // namespace zpaged
