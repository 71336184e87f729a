#include "server/store/reclaimer.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "contract/page.h"
#include "gtest/gtest.h"
#include "server/core/notification.h"
#include "server/store/fair_share.h"

namespace zpaged {
namespace {

TEST(FairShareTest, TheLimitIsDividedAmongTheTenantsHoldingPages) {
  const std::vector<ShareClaim> claims = {
      {600, true}, {100, true}, {0, false}, {300, true}};
  EXPECT_EQ(ShareOf(900, claims), 300u);
  // Furthest above first; at the share (300) is not above it.
  EXPECT_EQ(AboveShare(900, claims), std::vector<size_t>({0}));
  EXPECT_EQ(AboveShare(600, claims), std::vector<size_t>({0, 3}));
  EXPECT_EQ(ShareOf(900, {}), 900u);
  EXPECT_TRUE(AboveShare(900, {}).empty());
}

// A sink whose watchers the test plays: it keeps each delivery until the
// test resolves it, never from inside Deliver.
class FakeSink final : public EvictionSink {
 public:
  void Watch(const std::string& tenant) { watched_.insert(tenant); }
  bool CanAccept(absl::string_view tenant) override {
    MutexLock lock(&mu_);
    return watched_.contains(tenant);
  }
  absl::Status Deliver(absl::string_view tenant, uint64_t key, PageBytes,
                       DeliveryDone done) override {
    MutexLock lock(&mu_);
    if (!watched_.contains(tenant)) return absl::UnavailableError("none");
    pending_.push_back({std::string(tenant), key, std::move(done)});
    return absl::OkStatus();
  }
  // Resolves every delivery out now with `outcome`; returns the tenants
  // they were for.
  std::vector<std::string> ResolveAll(DeliveryOutcome outcome) {
    std::deque<Pending> out;
    {
      MutexLock lock(&mu_);
      out.swap(pending_);
    }
    std::vector<std::string> tenants;
    for (Pending& p : out) {
      tenants.push_back(p.tenant);
      std::move(p.done)(outcome);
    }
    return tenants;
  }

 private:
  struct Pending {
    std::string tenant;
    uint64_t key;
    DeliveryDone done;
  };
  Mutex mu_;
  absl::flat_hash_set<std::string> watched_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
};

// A tenant's index reduced to what the reclaimer sees: frames of two pages
// on an LRU, each frame one MemoryBudget page.
class FakeSource final : public ReclaimSource {
 public:
  FakeSource(std::string name, MemoryBudget* budget, int frames)
      : name_(std::move(name)), budget_(budget) {
    for (int f = 0; f < frames; ++f) AddFrame();
  }
  ~FakeSource() override { budget_->Release(frames_ * kPageSize); }

  void AddFrame() {
    budget_->ChargeAnyway(kPageSize);
    const uint64_t first = next_key_;
    next_key_ += 2;
    MutexLock lock(&mu_);
    lru_.push_back({first, first + 1});
    ++frames_;
  }

  const std::string& name() const override { return name_; }
  uint64_t UsedBytes() const override {
    MutexLock lock(&mu_);
    return frames_ * kPageSize;
  }
  bool HoldsPages() const override { return UsedBytes() > 0; }
  uint64_t PoolFrames() const override { return UsedBytes() / kPageSize; }
  absl::StatusOr<FrameReclaim> StartReclaim() override {
    MutexLock lock(&mu_);
    if (lru_.empty()) return absl::NotFoundError("empty");
    FrameReclaim reclaim;
    reclaim.frame = static_cast<FrameIndex>(lru_.front()[0]);
    for (uint64_t key : lru_.front()) reclaim.handles.push_back(key);
    under_reclaim_[reclaim.frame] = lru_.front();
    lru_.pop_front();
    return reclaim;
  }
  bool EndReclaim(const FrameReclaim& reclaim) override {
    MutexLock lock(&mu_);
    auto it = under_reclaim_.find(reclaim.frame);
    const std::vector<uint64_t> left = it->second;
    under_reclaim_.erase(it);
    if (!left.empty()) {
      lru_.push_back(left);
      return false;
    }
    --frames_;
    budget_->Release(kPageSize);
    return true;
  }
  OfferOutcome OfferPooled(ZpoolHandle handle, HandOver hand_over) override {
    const std::array<uint8_t, kPageSize> page{};
    return hand_over(PageCopy{handle, handle, false}, page)
               ? OfferOutcome::kHandedOver
               : OfferOutcome::kRefused;
  }
  std::vector<PageCopy> SameFilledCopies() const override { return {}; }
  OfferOutcome OfferSameFilled(const PageCopy&, HandOver) override {
    return OfferOutcome::kStale;
  }
  void Settle(const PageCopy& copy, DeliveryOutcome outcome,
              EvictionReason reason) override {
    MutexLock lock(&mu_);
    if (outcome != DeliveryOutcome::kAcked) return;
    ++acked_[static_cast<int>(reason)];
    for (auto& [frame, keys] : under_reclaim_) {
      std::erase(keys, copy.key);
    }
  }
  uint64_t acked(EvictionReason reason) {
    MutexLock lock(&mu_);
    return acked_[static_cast<int>(reason)];
  }

 private:
  const std::string name_;
  MemoryBudget* const budget_;
  uint64_t next_key_ = 1;
  mutable Mutex mu_;
  std::deque<std::vector<uint64_t>> lru_ ABSL_GUARDED_BY(mu_);
  std::map<FrameIndex, std::vector<uint64_t>> under_reclaim_
      ABSL_GUARDED_BY(mu_);
  uint64_t frames_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint64_t, kEvictionReasons> acked_ ABSL_GUARDED_BY(mu_) = {};
};

class ReclaimerTest : public ::testing::Test {
 protected:
  // A reclaimer over `sources_`, on a budget of `frames` frames.
  void Make(uint64_t frames, uint64_t headroom_frames = 0) {
    budget_.emplace(frames * kPageSize);
    reclaimer_.emplace(
        &sink_, &*budget_,
        [this] {
          MutexLock lock(&sources_mu_);
          return std::vector<std::shared_ptr<ReclaimSource>>(sources_.begin(),
                                                             sources_.end());
        },
        ReclaimerOptions{.headroom_bytes = headroom_frames * kPageSize,
                         .headroom_retry = absl::Milliseconds(5)});
  }
  std::shared_ptr<FakeSource> Add(const std::string& name, int frames,
                                  bool watched) {
    auto source = std::make_shared<FakeSource>(name, &*budget_, frames);
    if (watched) sink_.Watch(name);
    MutexLock lock(&sources_mu_);
    sources_.push_back(source);
    return source;
  }
  // MakeRoom for `requester`, acking every page as the sink gets it;
  // returns the tenants whose pages were evicted, and the result.
  std::pair<std::vector<std::string>, ReclaimResult> MakeRoom(
      const std::shared_ptr<FakeSource>& requester, bool at_own_limit,
      DeliveryOutcome outcome = DeliveryOutcome::kAcked) {
    std::optional<ReclaimResult> result;
    reclaimer_->MakeRoom(requester, at_own_limit,
                         [&](ReclaimResult r) { result = r; });
    std::vector<std::string> evicted;
    while (!result.has_value()) {
      for (std::string& t : sink_.ResolveAll(outcome)) {
        evicted.push_back(std::move(t));
      }
    }
    return {evicted, *result};
  }

  FakeSink sink_;
  std::optional<MemoryBudget> budget_;
  // Listed by the reclaimer's headroom thread while a test adds to them.
  Mutex sources_mu_;
  std::vector<std::shared_ptr<FakeSource>> sources_
      ABSL_GUARDED_BY(sources_mu_);
  // Destroyed first: its thread lists the sources.
  std::optional<Reclaimer> reclaimer_;

  void TearDown() override { reclaimer_.reset(); }
};

TEST_F(ReclaimerTest, RoomComesFromTheTenantFurthestAboveItsShare) {
  Make(30);
  auto small = Add("small", 5, true);
  auto big = Add("big", 15, true);
  auto mid = Add("mid", 10, true);  // exactly at its share: 30 / 3
  auto [evicted, result] = MakeRoom(small, /*at_own_limit=*/false);
  EXPECT_EQ(result.reclaimed_pool_pages, 1u);
  EXPECT_EQ(evicted, std::vector<std::string>({"big", "big"}));
  EXPECT_EQ(big->acked(EvictionReason::kServerLimit), 2u);
  EXPECT_EQ(mid->acked(EvictionReason::kServerLimit), 0u);
}

TEST_F(ReclaimerTest, ATenantWithoutAWatcherIsPassedOver) {
  Make(30);
  auto newcomer = Add("new", 1, true);
  Add("hog", 19, /*watched=*/false);
  auto next = Add("next", 10, true);  // above its share of 10? no: at it
  auto above = Add("above", 0, true);
  // Three tenants hold pages ("above" holds none, so has no share): the
  // share is 10; only the hog is above it, and it cannot give room without
  // losing pages, so the newcomer makes room from its own LRU.
  auto [evicted, result] = MakeRoom(newcomer, false);
  EXPECT_EQ(result.reclaimed_pool_pages, 1u);
  EXPECT_EQ(evicted, std::vector<std::string>({"new", "new"}));
  EXPECT_EQ(next->acked(EvictionReason::kServerLimit), 0u);
  // Grown above its share with a watcher, "next" gives the room next time:
  // the three frames the server is short of with one page more.
  next->AddFrame();
  next->AddFrame();
  newcomer->AddFrame();
  auto [evicted2, result2] = MakeRoom(newcomer, false);
  EXPECT_EQ(result2.reclaimed_pool_pages, 3u);
  EXPECT_EQ(evicted2, std::vector<std::string>(6, "next"));
  EXPECT_EQ(above->acked(EvictionReason::kServerLimit), 0u);
}

TEST_F(ReclaimerTest, AtItsOwnLimitATenantEvictsOnlyItself) {
  Make(100);
  auto own = Add("own", 2, true);
  auto big = Add("big", 60, true);
  auto [evicted, result] = MakeRoom(own, /*at_own_limit=*/true);
  EXPECT_EQ(evicted, std::vector<std::string>({"own", "own"}));
  EXPECT_EQ(own->acked(EvictionReason::kTenantLimit), 2u);
  EXPECT_EQ(big->acked(EvictionReason::kTenantLimit), 0u);
}

TEST_F(ReclaimerTest, WhenNoAckComesNothingIsReleasedAndTheNextIsTried) {
  Make(30);
  auto requester = Add("req", 5, true);
  auto first = Add("first", 15, true);
  auto second = Add("second", 12, true);
  // Every page times out: each candidate in turn keeps its frames.
  auto [evicted, result] =
      MakeRoom(requester, false, DeliveryOutcome::kTimedOut);
  EXPECT_EQ(result.reclaimed_pool_pages, 0u);
  EXPECT_EQ(first->UsedBytes(), 15 * kPageSize);
  EXPECT_EQ(second->UsedBytes(), 12 * kPageSize);
  EXPECT_EQ(requester->UsedBytes(), 5 * kPageSize);
  // In order: "first" and "second" (above 32 / 3), then the requester
  // itself, each for at least kTriesPerFrame frames of two pages.
  std::vector<std::string> order;
  for (const std::string& t : evicted) {
    if (order.empty() || order.back() != t) order.push_back(t);
  }
  EXPECT_EQ(order, std::vector<std::string>({"first", "second", "req"}));
  EXPECT_GE(std::count(evicted.begin(), evicted.end(), "first"),
            2 * Reclaimer::kTriesPerFrame);
}

TEST_F(ReclaimerTest, NobodyToEvictIsSaidBeforeWaiting) {
  Make(10);
  auto a = Add("a", 5, false);
  auto b = Add("b", 5, false);
  EXPECT_FALSE(reclaimer_->CanMakeRoom(*a, false));
  sink_.Watch("b");
  // b is at its share: it gives room to itself, never to a.
  EXPECT_FALSE(reclaimer_->CanMakeRoom(*a, false));
  EXPECT_TRUE(reclaimer_->CanMakeRoom(*b, false));
  b->AddFrame();  // above its share now
  EXPECT_TRUE(reclaimer_->CanMakeRoom(*a, false));
  EXPECT_FALSE(reclaimer_->CanMakeRoom(*a, /*at_own_limit=*/true));
}

TEST_F(ReclaimerTest, TheHeadroomThreadKeepsFreeMemoryByTheSameRule) {
  Make(100, /*headroom_frames=*/10);
  auto low = Add("low", 20, true);
  auto high = Add("high", 78, true);
  reclaimer_->NoteCharged();
  // 98 of 100 used: the thread evicts from "high" (above 90 / 2) until 10
  // frames are free, and never from "low".
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (budget_->used_bytes() > 90 * kPageSize && absl::Now() < give_up) {
    for (const std::string& t : sink_.ResolveAll(DeliveryOutcome::kAcked)) {
      EXPECT_EQ(t, "high");
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_LE(budget_->used_bytes(), 90 * kPageSize);
  EXPECT_EQ(low->UsedBytes(), 20 * kPageSize);
  EXPECT_GT(high->acked(EvictionReason::kHeadroom), 0u);
  reclaimer_->Stop();
  sink_.ResolveAll(DeliveryOutcome::kAcked);
}

}  // namespace
}  // namespace zpaged
