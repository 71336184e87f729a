// Consistency under load and faults, in the spirit of CacheLib's
// ValueTracker: client threads Put, Get and Delete their own keys in several
// tenants while watchers connect, ack, refuse, drop mid-stream and
// reconnect, a reclaimer shrinks pools, and small tenant limits make Puts
// evict. A model of every key checks, during the run and at the end:
//   - a Get returns exactly the version last written, or NOT_FOUND only if
//     a watcher of that tenant acked exactly that version;
//   - every page a watcher receives belongs to the watcher's own tenant and
//     carries the bytes that were written.
//
// ZPAGED_STRESS_SECONDS sets the duration (default 4, the CI run); for a
// long run: ZPAGED_STRESS_SECONDS=600 build/tests/consistency_stress_test

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/zpaged_client.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/zpaged_server.h"
#include "tests/testing/store_flavour.h"

namespace zpaged {
namespace {

constexpr int kTenants = 3;
constexpr int kWorkersPerTenant = 2;
constexpr int kKeysPerWorker = 200;
constexpr size_t kPage = 4096;

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

// The tenant a page says it belongs to, or -1.
int TenantOf(absl::string_view page) {
  int tenant = -1;
  std::sscanf(std::string(page.substr(0, 64)).c_str(), "tenant=%d", &tenant);
  return tenant;
}

// What watchers acked, per (tenant, key): the latest page.
class AckedLog {
 public:
  void Record(int tenant, uint64_t key, absl::string_view page) {
    MutexLock lock(&mu_);
    pages_[{tenant, key}] = std::string(page);
    ++acked_;
  }
  bool LatestIs(int tenant, uint64_t key, const std::string& page) {
    MutexLock lock(&mu_);
    auto it = pages_.find({tenant, key});
    return it != pages_.end() && it->second == page;
  }
  uint64_t acked() {
    MutexLock lock(&mu_);
    return acked_;
  }

 private:
  Mutex mu_;
  absl::flat_hash_map<std::pair<int, uint64_t>, std::string> pages_
      ABSL_GUARDED_BY(mu_);
  uint64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Counters {
  std::atomic<uint64_t> operations{0}, puts_refused{0}, reconnects{0},
      reclaims{0}, refused_acks{0};
  std::atomic<uint64_t> wrong_reads{0}, lost{0}, foreign_pages{0},
      corrupt_evictions{0};
};

// Once per compressor on zbud, and once on the dense driver with zstd, the
// combination that moves the most allocations (the test parameter).
class ConsistencyStressTest : public ::testing::TestWithParam<StoreFlavour> {};

TEST_P(ConsistencyStressTest, NothingLostNothingMisrouted) {
  const char* env = std::getenv("ZPAGED_STRESS_SECONDS");
  const absl::Duration duration = absl::Seconds(env ? std::atoi(env) : 4);

  ServerOptions options;
  options.listen = "127.0.0.1:0";
  GetParam().ApplyTo(options.store);
  options.store.tenant_max_bytes = 96 * kPage;  // far less than the keys need
  options.ack_deadline = absl::Milliseconds(150);
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();

  AckedLog acked;
  Counters counters;
  std::atomic<bool> stop{false};
  const absl::Time end = absl::Now() + duration;
  std::fprintf(stderr, "stress: %d tenants x %d workers for %s on %s\n",
               kTenants, kWorkersPerTenant,
               absl::FormatDuration(duration).c_str(), address.c_str());

  // Watchers: each tenant keeps one or two, which ack most pages, refuse a
  // few, and are dropped and replaced every few hundred milliseconds.
  std::vector<std::thread> threads;
  for (int t = 0; t < kTenants; ++t) {
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
      client->Reclaim(TenantName(rng() % kTenants), 1 + rng() % 8)
          .IgnoreError();
      counters.reclaims++;
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

  // Workers, each the only writer of its keys.
  std::vector<std::thread> workers;
  for (int t = 0; t < kTenants; ++t) {
    for (int w = 0; w < kWorkersPerTenant; ++w) {
      workers.emplace_back([&, t, w] {
        std::mt19937 rng(t * 100 + w);
        std::unique_ptr<Client> client = Client::Connect(address);
        const std::string tenant = TenantName(t);
        std::vector<uint32_t> version(kKeysPerWorker, 0);  // 0: absent
        std::vector<uint32_t> next(kKeysPerWorker, 1);
        auto key_of = [&](int slot) { return uint64_t(w) << 32 | slot; };
        // Checks one key against the model; returns false on a violation.
        auto check = [&](int slot) {
          const uint64_t key = key_of(slot);
          absl::StatusOr<std::string> got = client->Get(tenant, key);
          if (got.ok()) {
            if (version[slot] == 0 || *got != MakePage(t, key, version[slot])) {
              counters.wrong_reads++;
            }
          } else if (absl::IsNotFound(got.status())) {
            if (version[slot] != 0) {
              if (!acked.LatestIs(t, key, MakePage(t, key, version[slot]))) {
                counters.lost++;
              }
              version[slot] = 0;
            }
          } else {
            ADD_FAILURE() << "Get: " << got.status();
          }
        };
        while (absl::Now() < end) {
          const int slot = rng() % kKeysPerWorker;
          const int roll = rng() % 10;
          if (roll < 5) {
            const uint32_t v = next[slot]++;
            absl::StatusOr<PutReply> put =
                client->Put(tenant, key_of(slot), MakePage(t, key_of(slot), v));
            if (put.ok()) {
              version[slot] = v;
            } else if (absl::IsResourceExhausted(put.status())) {
              counters.puts_refused++;  // the old version must still be there
            } else {
              ADD_FAILURE() << "Put: " << put.status();
            }
          } else if (roll < 9) {
            check(slot);
          } else {
            absl::StatusOr<bool> deleted = client->Delete(tenant, key_of(slot));
            ASSERT_TRUE(deleted.ok()) << deleted.status();
            version[slot] = 0;
          }
          counters.operations++;
        }
        // The final sweep: every key, after the churn of this worker.
        for (int slot = 0; slot < kKeysPerWorker; ++slot) check(slot);
      });
    }
  }
  for (std::thread& worker : workers) worker.join();
  stop = true;
  for (std::thread& thread : threads) thread.join();

  uint64_t evicted = 0;
  for (int t = 0; t < kTenants; ++t) {
    absl::StatusOr<PageStats> stats = (*server)->store().Stats(TenantName(t));
    ASSERT_TRUE(stats.ok());
    evicted += stats->evicted_pages;
  }
  std::fprintf(stderr,
               "stress: %lu operations, %lu evictions acked (%lu by "
               "watchers), %lu acks refused, %lu watcher reconnects, %lu "
               "reclaims, %lu puts refused; lost %lu, wrong %lu, foreign %lu\n",
               counters.operations.load(), evicted, acked.acked(),
               counters.refused_acks.load(), counters.reconnects.load(),
               counters.reclaims.load(), counters.puts_refused.load(),
               counters.lost.load(), counters.wrong_reads.load(),
               counters.foreign_pages.load());
  EXPECT_EQ(counters.lost.load(), 0u);
  EXPECT_EQ(counters.wrong_reads.load(), 0u);
  EXPECT_EQ(counters.foreign_pages.load(), 0u);
  EXPECT_GT(evicted, 100u) << "the run did not exercise eviction";
  EXPECT_GT(counters.reconnects.load(), 3u);
}

INSTANTIATE_TEST_SUITE_P(
    Flavours, ConsistencyStressTest,
    ::testing::Values(StoreFlavour{"zbud", PageCompressor::kLz4},
                      StoreFlavour{"zbud", PageCompressor::kZstd},
                      StoreFlavour{"dense", PageCompressor::kZstd}),
    StoreFlavourName);

}  // namespace
}  // namespace zpaged
