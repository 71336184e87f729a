// Threads Put, Get and Delete their own keys while limits force evictions
// through the broker to a watcher that acks from a thread of its own: two
// small tenants at their own limits, and sixteen tenants at the server's
// limit, where the reclaimer evicts tenants for each other and its headroom
// thread evicts in the background.
// Every read must return the last version written, unless the page was
// evicted, and then the sink must have received exactly that version. Runs
// under ThreadSanitizer without gRPC, so the store's own locking is checked.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "contract/page.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_broker.h"
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

// A watcher of every tenant whose client writes every page to a backing
// store that keeps the latest copy of each (tenant, key), then acks, in the
// order the pages came, on a thread of its own.
class RecordingWatcher : public WatcherChannel {
 public:
  RecordingWatcher(EvictionBroker* broker,
                   const std::vector<std::string>& tenants)
      : broker_(broker), client_([this] { Run(); }) {
    for (const std::string& tenant : tenants) {
      ids_[tenant] = *broker_->Attach(tenant, this);
    }
  }
  ~RecordingWatcher() override { Stop(); }

  // Stops the client and leaves the broker. Idempotent.
  void Stop() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      work_.SignalAll();
    }
    if (client_.joinable()) client_.join();
    for (const auto& [tenant, id] : ids_) broker_->Detach(id);
  }

  bool Send(const OutgoingPage& page) override {
    MutexLock lock(&mu_);
    Incoming& in = queue_.emplace_back();
    in.tenant = std::string(page.tenant);
    in.key = page.key;
    in.sequence = page.sequence;
    EXPECT_TRUE(ExpandEncodedPage(page.data.encoding, page.data.bytes,
                                  absl::MakeSpan(in.page))
                    .ok());
    work_.SignalAll();
    return true;
  }
  void Close(const absl::Status&) override {}

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
  struct Incoming {
    std::string tenant;
    uint64_t key;
    uint64_t sequence;
    Page page;
  };
  void Run() {
    MutexLock lock(&mu_);
    for (;;) {
      while (!stopping_ && queue_.empty()) work_.Wait(&mu_);
      if (stopping_) return;
      Incoming in = std::move(queue_.front());
      queue_.pop_front();
      // Now and then an ack is slow, as a watcher's often is; this holds the
      // window open in which other threads store and evict newer copies.
      if (delivered_++ % 64 == 0) {
        mu_.Unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        mu_.Lock();
      }
      latest_[in.tenant][in.key] = in.page;
      const EvictionBroker::WatcherId id = ids_.at(in.tenant);
      mu_.Unlock();
      EXPECT_TRUE(broker_->Ack(id, in.sequence).ok());
      mu_.Lock();
    }
  }

  EvictionBroker* const broker_;
  absl::flat_hash_map<std::string, EvictionBroker::WatcherId> ids_;
  Mutex mu_;
  CondVar work_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Incoming> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, Page>> latest_
      ABSL_GUARDED_BY(mu_);
  uint64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread client_;
};

struct ChurnShape {
  int tenants;
  int threads;  // thread t writes in tenant t % tenants
  int keys_per_thread;
  int ops_per_thread;
  StoreOptions store;
};

// Churns as the file comment says and checks every read against the model;
// returns the store's counters at the end.
PageStats ChurnAndCheck(const ChurnShape& shape) {
  const int kThreads = shape.threads;
  const int kKeysPerThread = shape.keys_per_thread;
  BrokerOptions options;
  options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(options));
  PageStore store(shape.store, &broker);
  std::vector<std::string> tenants;
  for (int i = 0; i < shape.tenants; ++i) {
    tenants.push_back("tenant-" + std::to_string(i));
  }
  RecordingWatcher sink(&broker, tenants);
  std::atomic<uint64_t> wrong_reads{0}, lost{0}, reads{0};

  // Reads `key`, which should hold `version` (0 = none), and counts what is
  // wrong. A page gone without a Delete must have been evicted, and the copy
  // its watchers acked last must be exactly that version: a client falls
  // back on that copy. Returns whether the store still had the page.
  auto check_read = [&](const std::string& tenant, uint64_t key,
                        uint32_t version) {
    Page out;
    absl::Status s = store.Get(tenant, key, absl::MakeSpan(out)).status();
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
  auto tenant_of = [&](int thread) { return tenants[thread % tenants.size()]; };
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
      for (int op = 0; op < shape.ops_per_thread; ++op) {
        const int slot = rng() % kKeysPerThread;
        const uint64_t key = key_of(t, slot);
        const int roll = rng() % 10;
        if (roll < 5) {
          const uint32_t v = version[slot] + 1;
          absl::StatusOr<PutResult> r =
              store.PutAndWait(tenant, key, MakePage(key, v));
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

  // Every outcome is in before the store goes: no watcher, no timer.
  sink.Stop();
  broker.Stop();
  EXPECT_EQ(wrong_reads.load(), 0u);
  EXPECT_EQ(lost.load(), 0u);
  EXPECT_GT(sink.delivered(), 100u) << "the test did not force evictions";
  EXPECT_GT(reads.load(), 1000u);
  for (const std::string& tenant : tenants) {
    PageStats stats = store.Stats(tenant).value();
    EXPECT_LE(stats.pool_pages * kPageSize, shape.store.tenant_max_bytes);
    EXPECT_GE(stats.density(), stats.pool_pages == 0 ? 0.0 : 1.0);
  }
  PageStats all = store.Stats("").value();
  EXPECT_LE(all.used_bytes, shape.store.max_memory_bytes);
  return all;
}

TEST(PageStoreConcurrencyTest, NothingIsLostOrMixedUpAtTenantLimits) {
  // Small enough that the working set does not fit: reclaim runs all along.
  ChurnAndCheck(
      {.tenants = 2,
       .threads = 4,
       .keys_per_thread = 150,
       .ops_per_thread = 6000,
       .store = {.tenant_max_bytes = 16 * kPageSize,
                 .max_memory_bytes = PageStore::MemoryFor(2, 28, 4 * 150)}});
}

TEST(PageStoreConcurrencyTest, NothingIsLostOrMixedUpAtTheServerLimit) {
  // Sixteen tenants share room for a third of their keys; no tenant limit.
  const PageStats all = ChurnAndCheck(
      {.tenants = 16,
       .threads = 16,
       .keys_per_thread = 60,
       .ops_per_thread = 1500,
       .store = {.max_memory_bytes = PageStore::MemoryFor(16, 16 * 20, 16 * 60),
                 .reclaim_headroom_bytes = 8 * kPageSize}});
  std::printf("server limit: %lu evictions at the limit, %lu ahead of time\n",
              all.evicted_server_limit, all.evicted_headroom);
  EXPECT_GT(all.evicted_server_limit + all.evicted_headroom, 100u);
  EXPECT_GT(all.evicted_headroom, 0u);
}

}  // namespace
}  // namespace zpaged
