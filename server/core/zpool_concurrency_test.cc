// For each pool driver: several threads allocate, fill, check and free on
// one pool while another shrinks it; readers hold allocations mapped while
// their neighbours are freed and (in the dense driver) would be moved.
// Ownership of each allocation passes through a registry, so an allocation is
// checked by exactly one party: its owner or the evictor. Meant to run clean
// under ThreadSanitizer as much as to find lost data.

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/core/testing/zpool_shrink.h"
#include "server/core/zpool.h"

namespace zpaged {
namespace {

class Registry {
 public:
  void Add(ZpoolHandle handle, uint8_t byte, size_t size) {
    MutexLock lock(&mu_);
    entries_[handle] = {byte, size};
  }
  // Takes the entry out; false if someone else (the evictor) has it.
  bool Take(ZpoolHandle handle, uint8_t* byte, size_t* size) {
    MutexLock lock(&mu_);
    auto it = entries_.find(handle);
    if (it == entries_.end()) return false;
    *byte = it->second.first;
    *size = it->second.second;
    entries_.erase(it);
    return true;
  }

 private:
  Mutex mu_;
  absl::flat_hash_map<ZpoolHandle, std::pair<uint8_t, size_t>> entries_
      ABSL_GUARDED_BY(mu_);
};

bool Holds(Zpool& pool, ZpoolHandle handle, uint8_t byte, size_t size) {
  absl::StatusOr<MappedAllocation> m = pool.Map(handle);
  if (!m.ok() || m->capacity < size) return false;
  bool ok = true;
  for (size_t i = 0; i < size; ++i) ok &= m->data[i] == byte;
  pool.Unmap(handle);
  return ok;
}

class ZpoolConcurrencyTest
    : public ::testing::TestWithParam<absl::string_view> {};

TEST_P(ZpoolConcurrencyTest, ThreadsAllocateFreeMapAndReclaimTogether) {
  constexpr int kWorkers = 4;
  constexpr int kOpsPerWorker = 20'000;
  Registry registry;
  std::atomic<uint64_t> evicted{0}, corrupt{0};
  std::unique_ptr<Zpool> pool = *CreateZpool(GetParam(), ZpoolOptions{});
  const size_t max_allocation = pool->MaxAllocationSize();
  auto evict = [&](ZpoolHandle handle) -> absl::Status {
    uint8_t byte;
    size_t size;
    if (!registry.Take(handle, &byte, &size)) {
      return absl::UnavailableError("owner is using it");
    }
    if (!Holds(*pool, handle, byte, size)) corrupt.fetch_add(1);
    evicted.fetch_add(1);
    return pool->Free(handle);
  };

  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w);
      std::vector<ZpoolHandle> mine;
      for (int op = 0; op < kOpsPerWorker; ++op) {
        if (mine.size() < 200 && rng() % 2 == 0) {
          const size_t size = 1 + rng() % max_allocation;
          const uint8_t byte = static_cast<uint8_t>(rng());
          absl::StatusOr<ZpoolHandle> h = pool->Allocate(size);
          ASSERT_TRUE(h.ok()) << h.status();
          absl::StatusOr<MappedAllocation> m = pool->Map(*h);
          ASSERT_TRUE(m.ok());
          std::memset(m->data, byte, size);
          pool->Unmap(*h);
          registry.Add(*h, byte, size);
          mine.push_back(*h);
        } else if (!mine.empty()) {
          const size_t i = rng() % mine.size();
          const ZpoolHandle h = mine[i];
          mine[i] = mine.back();
          mine.pop_back();
          uint8_t byte;
          size_t size;
          if (!registry.Take(h, &byte, &size)) continue;  // evicted
          if (!Holds(*pool, h, byte, size)) corrupt.fetch_add(1);
          if (rng() % 4 == 0) {
            registry.Add(h, byte, size);  // only looked; keep it
            mine.push_back(h);
          } else {
            ASSERT_TRUE(pool->Free(h).ok());
          }
        }
      }
      for (ZpoolHandle h : mine) {
        uint8_t byte;
        size_t size;
        if (registry.Take(h, &byte, &size)) {
          if (!Holds(*pool, h, byte, size)) corrupt.fetch_add(1);
          ASSERT_TRUE(pool->Free(h).ok());
        }
      }
    });
  }
  std::thread reclaimer([&] {
    while (!done.load()) {
      Shrink(*pool, 4, evict);
      std::this_thread::yield();
    }
  });
  for (std::thread& t : threads) t.join();
  done = true;
  reclaimer.join();

  EXPECT_EQ(corrupt.load(), 0u);
  EXPECT_GT(evicted.load(), 0u);
  EXPECT_EQ(pool->Stats().allocations, 0u);
  EXPECT_EQ(pool->Stats().pool_frames, 0u);
  EXPECT_TRUE(pool->CheckConsistency().ok()) << pool->CheckConsistency();
}

INSTANTIATE_TEST_SUITE_P(Drivers, ZpoolConcurrencyTest,
                         ::testing::ValuesIn(kZpoolDrivers),
                         [](const auto& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace zpaged
