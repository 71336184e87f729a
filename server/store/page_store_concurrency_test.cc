// Threads Put, Get and Delete their own keys in two small tenants while the
// limits force evictions through a sink that acks from the evicting thread.
// Every read must return the last version written, unless the page was
// evicted, and then the sink must have received exactly that version. Runs
// under ThreadSanitizer without gRPC, so the store's own locking is checked.

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/core/page.h"
#include "server/store/page_store.h"

namespace zpaged {
namespace {

using Page = std::array<uint8_t, kPageSize>;

// Page contents for (key, version): compressible most of the time, random
// (RAW) sometimes, same-filled now and then.
Page MakePage(uint64_t key, uint32_t version) {
  Page page{};
  std::mt19937_64 rng(key * 1000003 + version);
  switch (version % 5) {
    case 0: {  // random
      for (uint8_t& b : page) b = static_cast<uint8_t>(rng());
      break;
    }
    case 1: {  // same-filled
      const uint64_t word = rng();
      for (size_t i = 0; i < kPageSize; i += 8) std::memcpy(&page[i], &word, 8);
      break;
    }
    default: {  // text-like
      const std::string text = "key " + std::to_string(key) + " version " +
                               std::to_string(version) + "; ";
      for (size_t i = 0; i < kPageSize; ++i) page[i] = text[i % text.size()];
      for (int i = 0; i < 40; ++i) page[rng() % kPageSize] ^= 0x5A;
    }
  }
  return page;
}

// Acks every page, keeping the latest delivered copy of each (tenant, key).
class RecordingSink : public EvictionSink {
 public:
  bool CanAccept(absl::string_view) override { return true; }
  absl::Status Deliver(absl::string_view tenant, uint64_t key,
                       absl::Span<const uint8_t> page) override {
    // Now and then an ack is slow, as a watcher's often is; this holds the
    // window open in which other threads store and evict newer copies.
    if (calls_.fetch_add(1) % 64 == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    MutexLock lock(&mu_);
    Page& copy = latest_[std::string(tenant)][key];
    std::memcpy(copy.data(), page.data(), kPageSize);
    ++delivered_;
    return absl::OkStatus();
  }
  bool LatestIs(const std::string& tenant, uint64_t key, const Page& page) {
    MutexLock lock(&mu_);
    auto t = latest_.find(tenant);
    if (t == latest_.end()) return false;
    auto k = t->second.find(key);
    return k != t->second.end() && k->second == page;
  }
  uint64_t delivered() {
    MutexLock lock(&mu_);
    return delivered_;
  }

 private:
  std::atomic<uint64_t> calls_{0};
  Mutex mu_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, Page>> latest_
      ABSL_GUARDED_BY(mu_);
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(PageStoreConcurrencyTest, NothingIsLostOrMixedUpUnderEvictionPressure) {
  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 150;
  constexpr int kOpsPerThread = 6000;
  RecordingSink sink;
  // Small enough that the working set does not fit: reclaim runs all along.
  PageStore store(StoreOptions{.tenant_max_bytes = 16 * kPageSize,
                               .max_memory_bytes = 28 * kPageSize},
                  &sink);
  std::atomic<uint64_t> wrong_reads{0}, lost{0}, reads{0};

  // Reads `key`, which should hold `version` (0 = none), and counts what is
  // wrong. A page gone without a Delete must have been evicted, and the copy
  // its watchers acked last must be exactly that version: a client falls
  // back on that copy. Returns whether the store still had the page.
  auto check_read = [&](const std::string& tenant, uint64_t key,
                        uint32_t version) {
    Page out;
    absl::Status s = store.Get(tenant, key, absl::MakeSpan(out));
    reads++;
    if (s.ok()) {
      if (version == 0 || out != MakePage(key, version)) wrong_reads++;
      return true;
    }
    EXPECT_TRUE(absl::IsNotFound(s)) << s;
    if (version != 0 && !sink.LatestIs(tenant, key, MakePage(key, version))) {
      lost++;
    }
    return false;
  };
  auto tenant_of = [](int thread) { return thread % 2 == 0 ? "even" : "odd"; };
  auto key_of = [](int thread, int slot) {
    return uint64_t(thread) << 32 | slot;
  };

  // versions[t][slot]: the version thread t's key `slot` should hold.
  std::vector<std::vector<uint32_t>> versions(
      kThreads, std::vector<uint32_t>(kKeysPerThread, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string tenant = tenant_of(t);
      std::mt19937 rng(t);
      std::vector<uint32_t>& version = versions[t];
      for (int op = 0; op < kOpsPerThread; ++op) {
        const int slot = rng() % kKeysPerThread;
        const uint64_t key = key_of(t, slot);
        const int roll = rng() % 10;
        if (roll < 5) {
          const uint32_t v = version[slot] + 1;
          absl::StatusOr<PutResult> r =
              store.Put(tenant, key, MakePage(key, v), /*may_reclaim=*/true);
          ASSERT_TRUE(r.ok()) << r.status();
          version[slot] = v;
        } else if (roll < 9) {
          // Once evicted, the page lives on in the watcher's copy only.
          if (!check_read(tenant, key, version[slot])) version[slot] = 0;
        } else {
          ASSERT_TRUE(store.Delete(tenant, key).ok());
          version[slot] = 0;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // Every ack has come by now, so an older copy acked late shows here even
  // where no thread read the key after its eviction.
  for (int t = 0; t < kThreads; ++t) {
    for (int slot = 0; slot < kKeysPerThread; ++slot) {
      check_read(tenant_of(t), key_of(t, slot), versions[t][slot]);
    }
  }

  EXPECT_EQ(wrong_reads.load(), 0u);
  EXPECT_EQ(lost.load(), 0u);
  EXPECT_GT(sink.delivered(), 100u) << "the test did not force evictions";
  EXPECT_GT(reads.load(), 1000u);
  for (const char* tenant : {"even", "odd"}) {
    PageStats stats = store.Stats(tenant).value();
    EXPECT_LE(stats.pool_pages, 16u);
    EXPECT_GE(stats.density(), stats.pool_pages == 0 ? 0.0 : 1.0);
  }
}

}  // namespace
}  // namespace zpaged
