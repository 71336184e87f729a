// headroom_bench: Put latency at the server limit, with the reclaimer's
// headroom (2% of the limit, the default) against without (0), in the same
// run, without gRPC. One tenant writes corpus pages into a store far smaller
// than them; a watcher on its own thread acks every eviction at once, as a
// fast client does. Without a headroom each Put past the limit waits for an
// eviction of its own; with one, the background thread has usually made
// the room already.
//
// Reproduce (prints the medians of the rounds, then each round):
//   cmake --build build --target headroom_bench corpus
//   build/server/store/headroom_bench [rounds=5] [puts=20000]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "contract/page.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_broker.h"
#include "server/store/page_store.h"
#include "server/store/store_options.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

// Acks every page it is sent, from a thread of its own, in order.
class AckingWatcher : public WatcherChannel {
 public:
  AckingWatcher(EvictionBroker* broker, const std::string& tenant)
      : broker_(broker), acker_([this] { Run(); }) {
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
    sequences_.push_back(page.sequence);
    work_.SignalAll();
    return true;
  }
  void Close(const absl::Status&) override {}

 private:
  void Run() {
    MutexLock lock(&mu_);
    for (;;) {
      while (!stopping_ && sequences_.empty()) work_.Wait(&mu_);
      if (stopping_) return;
      const uint64_t sequence = sequences_.front();
      sequences_.pop_front();
      mu_.Unlock();
      broker_->Ack(id_, sequence).IgnoreError();
      mu_.Lock();
    }
  }

  EvictionBroker* const broker_;
  EvictionBroker::WatcherId id_;
  Mutex mu_;
  CondVar work_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<uint64_t> sequences_ ABSL_GUARDED_BY(mu_);
  std::thread acker_;
};

struct Latencies {
  double p50_us = 0, p99_us = 0;
  uint64_t room_waits = 0;
};

Latencies PutsAtTheLimit(const PageCorpus& corpus, uint64_t headroom_bytes,
                         size_t puts) {
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
    AckingWatcher watcher(&broker, "vm");
    for (size_t i = 0; i < puts; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<PutResult> put =
          store.PutAndWait("vm", i, corpus.page(i % corpus.size()));
      const auto end = std::chrono::steady_clock::now();
      if (!put.ok()) {
        std::fprintf(stderr, "headroom_bench: Put %zu: %s\n", i,
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

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  using namespace zpaged;
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const size_t puts = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
  const PageCorpus corpus = PageCorpus::LoadDefaultOrExit("headroom_bench");
  const uint64_t limit = 16ull << 20;
  const uint64_t headroom =
      static_cast<uint64_t>(limit * kDefaultReclaimHeadroom);
  std::printf(
      "headroom_bench: %zu Puts of corpus pages into a 16 MiB store, one "
      "acking watcher, %d rounds (headroom %lu bytes vs 0)\n",
      puts, rounds, headroom);
  std::vector<double> p50[2], p99[2], waits[2];
  for (int round = 0; round < rounds; ++round) {
    for (int with = 0; with < 2; ++with) {
      const Latencies l = PutsAtTheLimit(corpus, with ? headroom : 0, puts);
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
  return 0;
}
