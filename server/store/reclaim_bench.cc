// reclaim_bench: the store-wide reclaimer's two figures, without gRPC, in
// stores far smaller than the corpus pages written into them, each tenant
// with a watcher that acks every eviction at once from a thread of its own
// (a fast client).
//
//   headroom   Put latency at the server limit, one tenant, with the
//              reclaimer's headroom (2% of the limit, the default) against
//              without (0), in the same run, once with acks at once and
//              once with each ack `ack_us` late (a remote watcher's round
//              trip). Without a headroom each Put past the limit waits for
//              an eviction of its own; with one, the background thread has
//              usually made the room already.
//   fair share Eight tenants writing 1/16x to 4x the pages that fill their
//              share, interleaved: the pages each one had evicted against
//              its share. Tenants at or below their share lose nothing for
//              the others; the heavy ones are cut back to about their share.
//
// Reproduce (prints each round, then the medians of the rounds):
//   cmake --build build --target reclaim_bench corpus
//   build/server/store/reclaim_bench [rounds=5] [puts=20000] [ack_us=200]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "contract/page.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_broker.h"
#include "server/store/page_store.h"
#include "server/store/store_options.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

// Acks every page it is sent, in order, from a thread of its own, each
// `ack_latency` after it was sent: the round trip of a remote watcher's ack.
// Acks overlap, as they do on a stream, so the latency costs no throughput.
class AckingWatcher : public WatcherChannel {
 public:
  AckingWatcher(EvictionBroker* broker, const std::string& tenant,
                absl::Duration ack_latency)
      : broker_(broker), ack_latency_(ack_latency), acker_([this] { Run(); }) {
    id_ = *broker_->Attach(tenant, this);
  }
  ~AckingWatcher() override {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      work_.SignalAll();
    }
    acker_.join();
    broker_->Detach(id_);
  }
  bool Send(const OutgoingPage& page) override {
    MutexLock lock(&mu_);
    due_.push_back({page.sequence, absl::Now() + ack_latency_});
    work_.SignalAll();
    return true;
  }
  void Close(const absl::Status&) override {}

 private:
  struct DueAck {
    uint64_t sequence;
    absl::Time due;
  };

  void Run() {
    MutexLock lock(&mu_);
    for (;;) {
      while (!stopping_ && due_.empty()) work_.Wait(&mu_);
      if (stopping_) return;
      const DueAck ack = due_.front();
      due_.pop_front();
      mu_.Unlock();
      if (ack_latency_ > absl::ZeroDuration())
        absl::SleepFor(ack.due - absl::Now());
      broker_->Ack(id_, ack.sequence).IgnoreError();
      mu_.Lock();
    }
  }

  EvictionBroker* const broker_;
  const absl::Duration ack_latency_;
  EvictionBroker::WatcherId id_;
  Mutex mu_;
  CondVar work_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<DueAck> due_ ABSL_GUARDED_BY(mu_);
  std::thread acker_;
};

struct Latencies {
  double p50_us = 0, p99_us = 0;
  uint64_t room_waits = 0;
};

Latencies PutsAtTheLimit(const PageCorpus& corpus, uint64_t headroom_bytes,
                         size_t puts, absl::Duration ack_latency) {
  BrokerOptions broker_options;
  broker_options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(broker_options));
  std::vector<double> micros;
  micros.reserve(puts);
  uint64_t room_waits = 0;
  {
    const uint64_t limit = 16ull << 20;  // far below the pages written
    PageStore store(StoreOptions{.max_memory_bytes = limit,
                                 .reclaim_headroom_bytes = headroom_bytes},
                    &broker);
    AckingWatcher watcher(&broker, "vm", ack_latency);
    for (size_t i = 0; i < puts; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<PutResult> put =
          store.PutAndWait("vm", i, corpus.page(i % corpus.size()));
      const auto end = std::chrono::steady_clock::now();
      if (!put.ok()) {
        std::fprintf(stderr, "reclaim_bench: Put %zu: %s\n", i,
                     put.status().ToString().c_str());
        std::exit(1);
      }
      micros.push_back(
          std::chrono::duration<double, std::micro>(end - start).count());
    }
    room_waits = store.Stats("vm")->room_waits;
    broker.Stop();
  }
  std::sort(micros.begin(), micros.end());
  return {micros[micros.size() / 2], micros[micros.size() * 99 / 100],
          room_waits};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Pool and index bytes one corpus page costs on average, from a store with
// no limit: how many pages fill a share.
double BytesPerPage(const PageCorpus& corpus) {
  BrokerOptions broker_options;
  broker_options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(broker_options));
  PageStore store(StoreOptions{}, &broker);
  const size_t pages = std::min<size_t>(corpus.size(), 4000);
  for (size_t i = 0; i < pages; ++i) {
    store.PutAndWait("probe", i, corpus.page(i)).IgnoreError();
  }
  const double bytes = static_cast<double>(store.Stats("probe")->used_bytes);
  broker.Stop();
  return bytes / static_cast<double>(pages);
}

// Where max-min fairness puts each tenant: its whole load if that is below
// the water level, else the level, the level being where the loads capped
// by it add up to `capacity`.
std::vector<double> WaterFill(const std::vector<double>& loads,
                              double capacity) {
  std::vector<double> sorted = loads;
  std::sort(sorted.begin(), sorted.end());
  double level = capacity / static_cast<double>(sorted.size());
  double left = capacity;
  for (size_t i = 0; i < sorted.size(); ++i) {
    level = left / static_cast<double>(sorted.size() - i);
    if (sorted[i] > level) break;
    left -= sorted[i];
    level = sorted[i];
  }
  std::vector<double> fair;
  for (double load : loads) fair.push_back(std::min(load, level));
  return fair;
}

struct TenantOutcome {
  uint64_t written = 0;
  uint64_t evicted = 0;  // acked evictions, for any reason
  uint64_t used_bytes = 0;
  uint64_t share_bytes = 0;
};

// The tenants write `loads[i]` pages each, interleaved so that each one's
// Puts are spread over the whole run, into a store of `limit` bytes.
std::vector<TenantOutcome> TenantsAtTheLimit(const PageCorpus& corpus,
                                             const std::vector<size_t>& loads,
                                             uint64_t limit) {
  BrokerOptions broker_options;
  broker_options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(broker_options));
  std::vector<TenantOutcome> outcomes(loads.size());
  {
    PageStore store(
        StoreOptions{.max_memory_bytes = limit,
                     .reclaim_headroom_bytes = static_cast<uint64_t>(
                         limit * kDefaultReclaimHeadroom)},
        &broker);
    std::vector<std::string> names;
    std::vector<std::unique_ptr<AckingWatcher>> watchers;
    for (size_t t = 0; t < loads.size(); ++t) {
      names.push_back("tenant-" + std::to_string(t));
      watchers.push_back(std::make_unique<AckingWatcher>(&broker, names[t],
                                                         absl::ZeroDuration()));
    }
    const size_t steps = *std::max_element(loads.begin(), loads.end());
    for (size_t step = 1; step <= steps; ++step) {
      for (size_t t = 0; t < loads.size(); ++t) {
        for (uint64_t& key = outcomes[t].written; key < step * loads[t] / steps;
             ++key) {
          absl::StatusOr<PutResult> put = store.PutAndWait(
              names[t], key, corpus.page((t * 7919 + key) % corpus.size()));
          if (!put.ok()) {
            std::fprintf(stderr, "reclaim_bench: %s key %lu: %s\n",
                         names[t].c_str(), key,
                         put.status().ToString().c_str());
            std::exit(1);
          }
        }
      }
    }
    for (size_t t = 0; t < loads.size(); ++t) {
      const PageStats stats = *store.Stats(names[t]);
      outcomes[t].evicted = stats.evicted_pages;
      outcomes[t].used_bytes = stats.used_bytes;
      outcomes[t].share_bytes = stats.share_bytes;
    }
    watchers.clear();
    broker.Stop();
  }
  return outcomes;
}

void HeadroomFigure(const PageCorpus& corpus, int rounds, size_t puts,
                    absl::Duration ack_latency) {
  const uint64_t limit = 16ull << 20;
  const uint64_t headroom =
      static_cast<uint64_t>(limit * kDefaultReclaimHeadroom);
  std::printf(
      "headroom: %zu Puts of corpus pages into a 16 MiB store, one watcher "
      "acking %s after each eviction, %d rounds (headroom %lu bytes vs 0)\n",
      puts, absl::FormatDuration(ack_latency).c_str(), rounds, headroom);
  std::vector<double> p50[2], p99[2], waits[2];
  for (int round = 0; round < rounds; ++round) {
    for (int with = 0; with < 2; ++with) {
      const Latencies l =
          PutsAtTheLimit(corpus, with ? headroom : 0, puts, ack_latency);
      p50[with].push_back(l.p50_us);
      p99[with].push_back(l.p99_us);
      waits[with].push_back(static_cast<double>(l.room_waits));
      std::printf("  round %d %-12s p50 %7.1f us  p99 %7.1f us  waited %lu\n",
                  round, with ? "headroom 2%" : "headroom 0", l.p50_us,
                  l.p99_us, l.room_waits);
      std::fflush(stdout);
    }
  }
  std::printf(
      "medians: headroom 0: p50 %.1f us p99 %.1f us, %.0f Puts waited; "
      "headroom 2%%: p50 %.1f us p99 %.1f us, %.0f waited; ratios (2%% / 0) "
      "p50 %.2f p99 %.2f\n",
      Median(p50[0]), Median(p99[0]), Median(waits[0]), Median(p50[1]),
      Median(p99[1]), Median(waits[1]), Median(p50[1]) / Median(p50[0]),
      Median(p99[1]) / Median(p99[0]));
}

void FairShareFigure(const PageCorpus& corpus, int rounds) {
  const uint64_t limit = 16ull << 20;
  const std::vector<double> shares = {1.0 / 16, 0.25, 0.5, 0.75, 1.5, 2, 3, 4};
  const double share_pages =
      static_cast<double>(limit) / shares.size() / BytesPerPage(corpus);
  std::vector<size_t> loads;
  std::vector<double> load_bytes;
  for (double s : shares) {
    loads.push_back(static_cast<size_t>(s * share_pages));
    load_bytes.push_back(s * static_cast<double>(limit) / shares.size());
  }
  const std::vector<double> fair = WaterFill(
      load_bytes, static_cast<double>(limit) * (1 - kDefaultReclaimHeadroom));
  std::printf(
      "fair share: %zu tenants in a 16 MiB store (a share: %.0f corpus "
      "pages), loads of 1/16x to 4x a share, %d rounds\n",
      shares.size(), share_pages, rounds);
  std::vector<std::vector<double>> evicted(shares.size()), used(shares.size());
  std::vector<uint64_t> share_bytes(shares.size());
  for (int round = 0; round < rounds; ++round) {
    const std::vector<TenantOutcome> outcomes =
        TenantsAtTheLimit(corpus, loads, limit);
    std::printf("  round %d evicted:", round);
    for (size_t t = 0; t < outcomes.size(); ++t) {
      evicted[t].push_back(static_cast<double>(outcomes[t].evicted));
      used[t].push_back(static_cast<double>(outcomes[t].used_bytes));
      share_bytes[t] = outcomes[t].share_bytes;
      std::printf(" %lu", outcomes[t].evicted);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf(
      "medians:\n  tenant  load (x share)  written  evicted  evicted/written"
      "  held MiB  max-min fair MiB  share MiB\n");
  double evicted_within_share = 0;
  for (size_t t = 0; t < shares.size(); ++t) {
    const double e = Median(evicted[t]);
    if (shares[t] <= 1) evicted_within_share += e;
    std::printf("  %6zu  %14.2f  %7zu  %7.0f  %15.2f  %8.2f  %16.2f  %9.2f\n",
                t, shares[t], loads[t], e, e / static_cast<double>(loads[t]),
                Median(used[t]) / (1 << 20), fair[t] / (1 << 20),
                share_bytes[t] / double(1 << 20));
  }
  std::printf(
      "pages evicted from the tenants whose load is within their share: %.0f "
      "(the rule: 0)\n",
      evicted_within_share);
}

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const size_t puts = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  const absl::Duration ack_latency =
      absl::Microseconds(argc > 3 ? std::atoi(argv[3]) : 200);
  const zpaged::PageCorpus corpus =
      zpaged::PageCorpus::LoadDefaultOrExit("reclaim_bench");
  zpaged::HeadroomFigure(corpus, rounds, puts, absl::ZeroDuration());
  zpaged::HeadroomFigure(corpus, rounds, puts, ack_latency);
  zpaged::FairShareFigure(corpus, rounds);
  return 0;
}
