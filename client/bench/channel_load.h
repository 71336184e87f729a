// ChannelLoad: what one channel does in one phase of a benchmark run — which
// keys it sends, which page each key carries — and the record of how each
// operation went: latency, errors, and for reads whether the bytes that came
// back are the bytes that were written.
//
// A channel owns keys channel, channel + channels, channel + 2*channels, ...
// so channels never share a key. Key k carries corpus page k % corpus size.
// Get and Delete phases go over exactly the keys the channel's Put phase
// stored.
//
// Thread-safe: a target may complete operations on any thread.

#ifndef ZPAGED_CLIENT_BENCH_CHANNEL_LOAD_H_
#define ZPAGED_CLIENT_BENCH_CHANNEL_LOAD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/bench/latency_histogram.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged::bench {

using Clock = std::chrono::steady_clock;

// A run puts its pages, reads them back, and deletes them so that the server
// is left as it was found (the delete phase is not reported).
enum class Phase { kPut, kGet, kDelete };

// "put", "get" or "delete".
const char* PhaseName(Phase phase);

// When a phase ends: after a fixed number of operations per channel, or at a
// deadline.
struct PhaseEnd {
  uint64_t operations = 0;  // used when `deadline` is unset
  Clock::time_point deadline{};
  bool by_deadline() const { return deadline != Clock::time_point{}; }
};

class ChannelLoad {
 public:
  // `stored` is how many keys this channel's Put phase stored: a Get phase
  // cycles over them. `completed` counts operations across all channels, for
  // the progress line.
  ChannelLoad(const PageCorpus& corpus, Phase phase, int channel, int channels,
              PhaseEnd end, uint64_t stored, std::atomic<uint64_t>& completed);

  Phase phase() const { return phase_; }

  // The next key to send; false when this channel's part of the phase is
  // done.
  bool NextKey(uint64_t* key);

  // The page key `key` carries.
  absl::string_view PageOf(uint64_t key) const;

  // Records one answered operation sent at `sent`. For a Get, `data` is what
  // came back and is compared with the page. `error` is empty when the
  // server said OK.
  void Done(uint64_t key, Clock::time_point sent, absl::string_view error,
            absl::string_view data = {});

  // Answered operations, those the server refused or failed, and Gets whose
  // bytes differed from the page.
  uint64_t operations() const;
  uint64_t errors() const;
  uint64_t mismatches() const;
  // The first error seen, for the report.
  std::string first_error() const;
  LatencyHistogram histogram() const;

 private:
  const PageCorpus& corpus_;
  const Phase phase_;
  const int channel_;
  const int channels_;
  const PhaseEnd end_;
  const uint64_t stored_;
  std::atomic<uint64_t>& completed_;

  mutable std::mutex mu_;
  uint64_t issued_ = 0;  // guarded by mu_
  uint64_t answered_ = 0;
  uint64_t errors_ = 0;
  uint64_t mismatches_ = 0;
  std::string first_error_;
  LatencyHistogram histogram_;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_CHANNEL_LOAD_H_
