// A randomized test of each pool driver against a reference model: a
// million mixed operations, every live allocation filled with a pattern
// derived from its handle and checked before it goes, the pool's accounting
// compared with the model after every step, and the driver's density bounds
// checked throughout.

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "server/core/dense_pool.h"
#include "server/core/testing/zpool_shrink.h"
#include "server/core/zpool.h"

namespace zpaged {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Fills or checks `size` bytes with the handle's pattern. Any overlap between
// two live allocations overwrites one's pattern and fails its check.
void Fill(uint8_t* data, size_t size, ZpoolHandle handle) {
  uint64_t word = SplitMix(handle);
  for (size_t i = 0; i < size; i += 8, word = SplitMix(word)) {
    std::memcpy(data + i, &word, std::min<size_t>(8, size - i));
  }
}
bool Holds(const uint8_t* data, size_t size, ZpoolHandle handle) {
  uint64_t word = SplitMix(handle);
  for (size_t i = 0; i < size; i += 8, word = SplitMix(word)) {
    if (std::memcmp(data + i, &word, std::min<size_t>(8, size - i)) != 0) {
      return false;
    }
  }
  return true;
}

struct DriverBounds {
  const char* driver;
  uint64_t max_allocations_per_frame;
};

class ZpoolModelTest : public ::testing::TestWithParam<DriverBounds> {
 protected:
  struct Live {
    size_t size;
    size_t index;  // position in handles_
  };

  ZpoolModelTest()
      : pool_(*CreateZpool(GetParam().driver, ZpoolOptions{})),
        max_allocation_(pool_->MaxAllocationSize()) {}

  // The eviction callback: refuses some pages (a watcher that is not ready),
  // checks and frees the rest.
  absl::Status Evict(ZpoolHandle handle) {
    auto it = live_.find(handle);
    if (it == live_.end()) {
      ADD_FAILURE() << "evict offered unknown handle " << handle;
      return absl::InternalError("unknown");
    }
    if (std::bernoulli_distribution(0.1)(rng_)) {
      return absl::UnavailableError("refused");
    }
    CheckAndFree(handle);
    ++evicted_;
    return absl::OkStatus();
  }

  void CheckAndFree(ZpoolHandle handle) {
    const Live live = live_.at(handle);
    absl::StatusOr<MappedAllocation> m = pool_->Map(handle);
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_GE(m->capacity, live.size);
    ASSERT_TRUE(Holds(m->data, live.size, handle)) << "handle " << handle;
    pool_->Unmap(handle);
    ASSERT_TRUE(pool_->Free(handle).ok());
    const ZpoolHandle moved = handles_.back();
    handles_[live.index] = moved;
    live_[moved].index = live.index;
    handles_.pop_back();
    live_.erase(handle);
  }

  size_t RandomSize() {
    // Mostly the spread of LZ4 output on real memory, with the edges.
    switch (std::uniform_int_distribution<int>(0, 9)(rng_)) {
      case 0:
        return std::uniform_int_distribution<size_t>(1, 130)(rng_);
      case 1:
        return max_allocation_ -
               std::uniform_int_distribution<size_t>(0, 70)(rng_);
      default:
        return std::uniform_int_distribution<size_t>(1, max_allocation_)(rng_);
    }
  }

  void Allocate() {
    const bool whole = std::bernoulli_distribution(0.03)(rng_);
    const size_t size = whole ? kPageSize : RandomSize();
    absl::StatusOr<ZpoolHandle> handle =
        whole ? pool_->AllocateWholeFrame() : pool_->Allocate(size);
    ASSERT_TRUE(handle.ok()) << handle.status();
    ASSERT_FALSE(live_.contains(*handle)) << "handle handed out twice";
    absl::StatusOr<MappedAllocation> m = pool_->Map(*handle);
    ASSERT_TRUE(m.ok());
    // The pool says which pages it keeps whole; a Get relies on it.
    ASSERT_EQ(m->whole_frame, whole);
    Fill(m->data, size, *handle);
    pool_->Unmap(*handle);
    live_[*handle] = Live{size, handles_.size()};
    handles_.push_back(*handle);
  }

  void CheckAccounting() {
    const ZpoolStats stats = pool_->Stats();
    ASSERT_EQ(stats.allocations, live_.size());
    ASSERT_EQ(stats.frames_under_reclaim, 0u);
    // Density (allocations per frame) is at least 1, since a frame is
    // released with its last allocation, and at most the driver's bound.
    ASSERT_LE(stats.pool_frames, stats.allocations);
    ASSERT_GE(GetParam().max_allocations_per_frame * stats.pool_frames,
              stats.allocations);
    ASSERT_EQ(stats.arena.frames_in_use, stats.pool_frames);
  }

  std::mt19937_64 rng_{20261122};
  std::unique_ptr<Zpool> pool_;
  const size_t max_allocation_;
  absl::flat_hash_map<ZpoolHandle, Live> live_;
  std::vector<ZpoolHandle> handles_;
  uint64_t evicted_ = 0;
};

TEST_P(ZpoolModelTest, MillionMixedOperations) {
  constexpr int kOperations = 1'000'000;
  uint64_t reclaimed = 0;
  for (int op = 0; op < kOperations; ++op) {
    // The target population drifts, so the pool both grows and drains.
    const size_t target = 2000 + 1500 * ((op / 100'000) % 3);
    const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
    if (roll < 50 && live_.size() < 2 * target) {
      ASSERT_NO_FATAL_FAILURE(Allocate());
    } else if (roll < 96 && !handles_.empty()) {
      const size_t i =
          std::uniform_int_distribution<size_t>(0, handles_.size() - 1)(rng_);
      ASSERT_NO_FATAL_FAILURE(CheckAndFree(handles_[i]));
    } else if (roll < 99 && !handles_.empty()) {
      const uint64_t frames_before = pool_->Stats().pool_frames;
      const uint32_t n = Shrink(
          *pool_, 2, [this](ZpoolHandle handle) { return Evict(handle); });
      ASSERT_EQ(pool_->Stats().pool_frames, frames_before - n);
      reclaimed += n;
    } else if (!handles_.empty()) {
      // A stale handle is refused and changes nothing.
      const ZpoolHandle victim = handles_.back();
      ASSERT_NO_FATAL_FAILURE(CheckAndFree(victim));
      ASSERT_EQ(pool_->Free(victim).code(), absl::StatusCode::kNotFound);
    }
    ASSERT_NO_FATAL_FAILURE(CheckAccounting());
    if (op % 50'000 == 0) {
      ASSERT_TRUE(pool_->CheckConsistency().ok())
          << "after " << op << " operations: " << pool_->CheckConsistency();
    }
  }
  ASSERT_TRUE(pool_->CheckConsistency().ok()) << pool_->CheckConsistency();
  EXPECT_GT(reclaimed, 1000u);
  EXPECT_GT(evicted_, 1000u);

  while (!handles_.empty()) ASSERT_NO_FATAL_FAILURE(CheckAndFree(handles_[0]));
  EXPECT_EQ(pool_->Stats().pool_frames, 0u);
  EXPECT_TRUE(pool_->CheckConsistency().ok());
}

INSTANTIATE_TEST_SUITE_P(
    Drivers, ZpoolModelTest,
    ::testing::Values(DriverBounds{"zbud", 2},
                      DriverBounds{"dense", kDenseMaxSlots}),
    [](const auto& info) { return std::string(info.param.driver); });

}  // namespace
}  // namespace zpaged
