// Consistency under load and faults, in the spirit of CacheLib's
// ValueTracker: client threads Put, Get and Delete their own keys in several
// tenants while watchers connect, ack, refuse, stall and drop mid-stream and
// reconnect, a client calls Reclaim, and memory limits make Puts evict:
// each tenant's own limit, or (sixteen tenants) the server's, where the
// reclaimer evicts tenants for each other and in the background, and Puts
// give up waiting for room. A model of every key checks, during the run and
// at the end:
//   - a Get returns a version that may be the last written (the last that
//     succeeded, or one whose Put timed out after it), never an older one;
//   - NOT_FOUND only if absent is possible or a watcher of that tenant
//     acked one of those versions;
//   - every page a watcher receives belongs to the watcher's own tenant and
//     carries the bytes that were written;
//   - at the server limit, the server's use never passes the limit by more
//     than one newcomer's fixed cost.
//
// ZPAGED_STRESS_SECONDS sets the duration (default 4, the CI run); for a
// long run: ZPAGED_STRESS_SECONDS=600 build/tests/consistency_stress_test

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/lib/zpaged_client.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/zpaged_server.h"
#include "tests/testing/store_flavour.h"

namespace zpaged {
namespace {

constexpr size_t kPage = 4096;

// How the store is squeezed. kTenantLimit: few tenants, each against its own
// --tenant_max_bytes, evicting only itself. kServerLimit: many tenants
// against one --max_memory_bytes, with the reclaimer's headroom thread,
// evicting each other by the fair share; some watchers stall past the ack
// deadline, one tenant has no watcher at all, and Puts have short deadlines,
// so Puts give up while they wait for room.
enum class Pressure { kTenantLimit, kServerLimit };

struct StressShape {
  StoreFlavour flavour;
  Pressure pressure;
  int tenants;
  int workers_per_tenant;
  int keys_per_worker;

  bool at_server_limit() const { return pressure == Pressure::kServerLimit; }
  // The tenant that never watches: at the server limit it cannot be
  // evicted, so it must never lose a page and never take another's.
  bool unwatched(int tenant) const {
    return at_server_limit() && tenant == tenants - 1;
  }
  // Tenants whose watchers now and then hold a page past the ack deadline.
  bool stalls(int tenant) const { return at_server_limit() && tenant % 4 == 1; }
  std::string Name() const {
    return absl::StrCat(flavour.Name(),
                        at_server_limit() ? "_server_limit_" : "_tenant_limit_",
                        tenants, "_tenants");
  }
};

std::string TenantName(int t) { return absl::StrCat("stress-", t); }

// The page for (tenant, key, version): a header naming all three, then
// content that is compressible for most versions and random for some.
std::string MakePage(int tenant, uint64_t key, uint32_t version) {
  std::string page(kPage, '\0');
  std::snprintf(page.data(), 64, "tenant=%d key=%lu version=%u;", tenant,
                static_cast<unsigned long>(key), version);
  std::mt19937_64 rng(key * 7919 + version * 104729 + tenant);
  if (version % 4 == 0) {
    for (size_t i = 64; i < kPage; ++i) page[i] = static_cast<char>(rng());
  } else {
    const std::string text = absl::StrCat("guest memory ", key, " ", version);
    for (size_t i = 64; i < kPage; ++i) page[i] = text[i % text.size()];
    for (int i = 0; i < 30; ++i) page[64 + rng() % (kPage - 64)] ^= 1;
  }
  return page;
}

// The version a page says it is, or 0.
uint32_t PageVersion(absl::string_view page) {
  int tenant = -1;
  unsigned long key = 0;
  unsigned version = 0;
  std::sscanf(std::string(page.substr(0, 64)).c_str(),
              "tenant=%d key=%lu version=%u;", &tenant, &key, &version);
  return version;
}

// The tenant a page says it belongs to, or -1.
int TenantOf(absl::string_view page) {
  int tenant = -1;
  std::sscanf(std::string(page.substr(0, 64)).c_str(), "tenant=%d", &tenant);
  return tenant;
}

// What watchers acked, per (tenant, key), as a versioned application keeps
// it (the NBD bridge by its generations): the newest page it was handed.
// Not the last one handed: a watcher's callback that stalls may return
// after its stream was cancelled, when the server has already kept that
// copy and evicted a newer one to another watcher; the late callback's ack
// never reached the server, and its older page must not count as the
// newest. The order of the callbacks is kept for failure messages.
class AckedLog {
 public:
  void Record(int tenant, uint64_t key, absl::string_view page) {
    MutexLock lock(&mu_);
    const uint32_t version = PageVersion(page);
    Acked& acked = pages_[{tenant, key}];
    if (acked.history.empty() || version > PageVersion(acked.newest)) {
      acked.newest = std::string(page);
    }
    acked.history.push_back(version);
    ++acked_;
  }
  bool NewestIs(int tenant, uint64_t key, const std::string& page) {
    MutexLock lock(&mu_);
    auto it = pages_.find({tenant, key});
    return it != pages_.end() && it->second.newest == page;
  }
  // The versions acked, in the order of the callbacks.
  std::string History(int tenant, uint64_t key) {
    MutexLock lock(&mu_);
    auto it = pages_.find({tenant, key});
    return it == pages_.end() ? "none" : absl::StrJoin(it->second.history, ",");
  }
  uint64_t acked() {
    MutexLock lock(&mu_);
    return acked_;
  }

 private:
  struct Acked {
    std::string newest;
    std::vector<uint32_t> history;
  };
  Mutex mu_;
  absl::flat_hash_map<std::pair<int, uint64_t>, Acked> pages_
      ABSL_GUARDED_BY(mu_);
  uint64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Counters {
  std::atomic<uint64_t> operations{0}, puts_refused{0}, puts_gave_up{0},
      reconnects{0}, reclaims{0}, refused_acks{0}, stalls{0};
  std::atomic<uint64_t> wrong_reads{0}, lost{0}, foreign_pages{0},
      corrupt_evictions{0};
};

// The key a worker writes, and the versions any of which the store may
// hold for it: one once a write is known to have landed, more after a Put
// whose outcome the client cannot know (its deadline passed: the server may
// have stored it just before). A later Put or Delete makes it one again;
// 0 stands for absent.
class KeyModel {
 public:
  void Landed(uint32_t version) { possible_.assign(1, version); }
  void MaybeLanded(uint32_t version) { possible_.push_back(version); }
  bool Allows(uint32_t version) const {
    return std::find(possible_.begin(), possible_.end(), version) !=
           possible_.end();
  }
  // Evicted (NOT_FOUND): fine if absent is possible or a watcher acked one
  // of the possible versions.
  template <typename AckedOne>
  bool AllowsEvicted(AckedOne acked_one) const {
    for (uint32_t version : possible_) {
      if (version == 0 || acked_one(version)) return true;
    }
    return false;
  }
  const std::vector<uint32_t>& possible() const { return possible_; }

 private:
  std::vector<uint32_t> possible_{0};
};

// GoogleTest prints the parameter by its name.
void PrintTo(const StressShape& shape, std::ostream* out) {
  *out << shape.Name();
}

class ConsistencyStressTest : public ::testing::TestWithParam<StressShape> {};

TEST_P(ConsistencyStressTest, NothingLostNothingStaleNothingMisrouted) {
  const StressShape shape = GetParam();
  const char* env = std::getenv("ZPAGED_STRESS_SECONDS");
  const absl::Duration duration = absl::Seconds(env ? std::atoi(env) : 4);

  ServerOptions options;
  options.listen = "127.0.0.1:0";
  shape.flavour.ApplyTo(options.store);
  ClientOptions worker_options;
  if (shape.at_server_limit()) {
    // Room for a third of what the keys need, after the tenants' fixed cost.
    options.store.max_memory_bytes =
        shape.tenants * (PageStore::kTenantBytes + 16 * kPage);
    options.store.reclaim_headroom_bytes = 16 * kPage;
    worker_options.timeout = absl::Milliseconds(300);
  } else {
    options.store.tenant_max_bytes = 96 * kPage;  // far less than keys need
  }
  options.ack_deadline = absl::Milliseconds(150);
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();

  AckedLog acked;
  Counters counters;
  std::atomic<bool> stop{false};
  const absl::Time end = absl::Now() + duration;
  std::fprintf(stderr, "stress: %s, %d workers for %s on %s\n",
               shape.Name().c_str(), shape.tenants * shape.workers_per_tenant,
               absl::FormatDuration(duration).c_str(), address.c_str());

  // Watchers: each watched tenant keeps one or two, which ack most pages,
  // refuse a few, stall on some (past the ack deadline) in some tenants, and
  // are dropped and replaced every few hundred milliseconds.
  std::vector<std::thread> threads;
  for (int t = 0; t < shape.tenants; ++t) {
    if (shape.unwatched(t)) continue;
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      std::unique_ptr<Client> client = Client::Connect(address);
      auto on_page = [&, t](uint64_t key, absl::string_view page) {
        if (TenantOf(page) != t) {
          counters.foreign_pages++;
          return false;
        }
        thread_local std::mt19937 coin(std::random_device{}());
        if (coin() % 20 == 0) {
          counters.refused_acks++;
          return false;  // not safe yet: the server must keep it
        }
        if (shape.stalls(t) && coin() % 30 == 0) {
          counters.stalls++;
          absl::SleepFor(options.ack_deadline * 3);
        }
        acked.Record(t, key, page);
        return true;
      };
      std::vector<std::unique_ptr<EvictionWatcher>> watchers;
      while (!stop.load()) {
        if (watchers.size() < 2) {
          auto w = client->Watch(TenantName(t), on_page);
          if (w.ok()) watchers.push_back(*std::move(w));
        }
        absl::SleepFor(absl::Milliseconds(100 + rng() % 300));
        if (!watchers.empty() && rng() % 2 == 0) {
          watchers.erase(watchers.begin() + rng() % watchers.size());
          counters.reconnects++;
        }
      }
    });
  }
  // A reclaimer on top of the limit pressure.
  threads.emplace_back([&] {
    std::mt19937 rng(7);
    std::unique_ptr<Client> client = Client::Connect(address);
    while (!stop.load()) {
      client->Reclaim(TenantName(rng() % shape.tenants), 1 + rng() % 8)
          .IgnoreError();
      counters.reclaims++;
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  // The server's use, sampled: past the limit only by a newcomer's fixed
  // cost (page_store.h).
  std::atomic<uint64_t> peak_used{0};
  threads.emplace_back([&] {
    while (!stop.load()) {
      absl::StatusOr<PageStats> all = (*server)->store().Stats("");
      if (all.ok() && all->used_bytes > peak_used.load()) {
        peak_used = all->used_bytes;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  });

  // Workers, each the only writer of its keys.
  std::vector<std::thread> workers;
  for (int t = 0; t < shape.tenants; ++t) {
    for (int w = 0; w < shape.workers_per_tenant; ++w) {
      workers.emplace_back([&, t, w] {
        std::mt19937 rng(t * 100 + w);
        std::unique_ptr<Client> client =
            Client::Connect(address, worker_options);
        const std::string tenant = TenantName(t);
        std::vector<KeyModel> model(shape.keys_per_worker);
        std::vector<uint32_t> next(shape.keys_per_worker, 1);
        auto key_of = [&](int slot) { return uint64_t(w) << 32 | slot; };
        // Checks one key against the model.
        auto check = [&](int slot) {
          const uint64_t key = key_of(slot);
          KeyModel& m = model[slot];
          absl::StatusOr<std::string> got = client->Get(tenant, key);
          if (got.ok()) {
            const uint32_t version = PageVersion(*got);
            if (version == 0 || !m.Allows(version) ||
                *got != MakePage(t, key, version)) {
              counters.wrong_reads++;
            }
          } else if (absl::IsNotFound(got.status())) {
            if (!m.AllowsEvicted([&](uint32_t version) {
                  return acked.NewestIs(t, key, MakePage(t, key, version));
                })) {
              counters.lost++;
              ADD_FAILURE()
                  << "lost: tenant " << t << " key " << key
                  << ", possible versions " << absl::StrJoin(m.possible(), ",")
                  << ", versions acked " << acked.History(t, key);
            }
            if (m.possible().size() == 1) m.Landed(0);
          } else if (!absl::IsDeadlineExceeded(got.status())) {
            ADD_FAILURE() << "Get: " << got.status();
          }
        };
        while (absl::Now() < end) {
          const int slot = rng() % shape.keys_per_worker;
          const int roll = rng() % 10;
          if (roll < 5) {
            const uint32_t v = next[slot]++;
            absl::StatusOr<PutReply> put =
                client->Put(tenant, key_of(slot), MakePage(t, key_of(slot), v));
            if (put.ok()) {
              model[slot].Landed(v);
            } else if (absl::IsResourceExhausted(put.status())) {
              counters.puts_refused++;  // the old version must still be there
            } else if (absl::IsDeadlineExceeded(put.status())) {
              counters.puts_gave_up++;
              model[slot].MaybeLanded(v);
            } else {
              ADD_FAILURE() << "Put: " << put.status();
            }
          } else if (roll < 9) {
            check(slot);
          } else {
            absl::StatusOr<bool> deleted = client->Delete(tenant, key_of(slot));
            ASSERT_TRUE(deleted.ok()) << deleted.status();
            model[slot].Landed(0);
          }
          counters.operations++;
        }
        // The final sweep: every key, after the churn of this worker.
        for (int slot = 0; slot < shape.keys_per_worker; ++slot) check(slot);
      });
    }
  }
  for (std::thread& worker : workers) worker.join();
  stop = true;
  for (std::thread& thread : threads) thread.join();

  absl::StatusOr<PageStats> all = (*server)->store().Stats("");
  ASSERT_TRUE(all.ok());
  std::fprintf(stderr,
               "stress: %lu operations, %lu evictions acked (%lu by "
               "watchers), %lu acks refused, %lu stalls, %lu watcher "
               "reconnects, %lu reclaims, %lu puts refused, %lu gave up; "
               "peak use %lu of %lu bytes; lost %lu, wrong %lu, foreign %lu\n",
               counters.operations.load(), all->evicted_pages, acked.acked(),
               counters.refused_acks.load(), counters.stalls.load(),
               counters.reconnects.load(), counters.reclaims.load(),
               counters.puts_refused.load(), counters.puts_gave_up.load(),
               peak_used.load(), options.store.max_memory_bytes,
               counters.lost.load(), counters.wrong_reads.load(),
               counters.foreign_pages.load());
  EXPECT_EQ(counters.lost.load(), 0u);
  EXPECT_EQ(counters.wrong_reads.load(), 0u);
  EXPECT_EQ(counters.foreign_pages.load(), 0u);
  EXPECT_GT(all->evicted_pages, 100u) << "the run did not exercise eviction";
  EXPECT_GT(counters.reconnects.load(), 3u);
  if (shape.at_server_limit()) {
    EXPECT_LE(peak_used.load(),
              options.store.max_memory_bytes + PageStore::kTenantBytes);
    EXPECT_GT(all->evicted_server_limit + all->evicted_headroom, 0u)
        << "no tenant was evicted for another";
    EXPECT_GT(counters.stalls.load(), 0u);
  }
}

// Once per compressor on zbud, and once on the dense driver with zstd, the
// combination that moves the most allocations; and at the server limit with
// sixteen tenants, on both drivers.
INSTANTIATE_TEST_SUITE_P(
    Shapes, ConsistencyStressTest,
    ::testing::Values(
        StressShape{
            {"zbud", PageCompressor::kLz4}, Pressure::kTenantLimit, 3, 2, 200},
        StressShape{
            {"zbud", PageCompressor::kZstd}, Pressure::kTenantLimit, 3, 2, 200},
        StressShape{{"dense", PageCompressor::kZstd},
                    Pressure::kTenantLimit,
                    3,
                    2,
                    200},
        StressShape{
            {"zbud", PageCompressor::kLz4}, Pressure::kServerLimit, 16, 1, 96},
        StressShape{{"dense", PageCompressor::kZstd},
                    Pressure::kServerLimit,
                    16,
                    1,
                    72}),
    [](const ::testing::TestParamInfo<StressShape>& info) {
      return info.param.Name();
    });

}  // namespace
}  // namespace zpaged
