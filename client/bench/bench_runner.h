// RunTarget: one benchmark run against one target — connect, an unmeasured
// warm-up, Put phase, Get phase, then an untimed delete of what was put —
// with the server's CPU time and memory sampled around the timed phases.

#ifndef ZPAGED_CLIENT_BENCH_BENCH_RUNNER_H_
#define ZPAGED_CLIENT_BENCH_BENCH_RUNNER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/bench/bench_target.h"
#include "client/bench/latency_histogram.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged::bench {

struct RunOptions {
  int channels = 2;
  int depth = 16;      // operations in flight per channel
  uint64_t pages = 0;  // pages put (and read back) over all channels...
  absl::Duration duration = absl::ZeroDuration();  // ...or, when set, for how
                                                   // long each phase runs
  // Pages put and deleted before the measured phases, so that what a
  // server spends once (connection buffers, threads, a tenant) is not
  // counted per page or per second; 0 for none.
  uint64_t warmup_pages = 2000;
};

struct PhaseResult {
  uint64_t operations = 0;  // answered, including errors
  uint64_t errors = 0;
  uint64_t mismatches = 0;  // Gets that read back other bytes
  std::string first_error;
  double seconds = 0;
  LatencyHistogram latency;
  // What the server spent, when the target can tell.
  std::optional<double> server_cpu_seconds;
  std::optional<int64_t> server_memory_growth_bytes;
  // Bytes on loopback during the phase, both ways (wire_bytes.h).
  std::optional<uint64_t> wire_bytes;

  double pages_per_second() const {
    return seconds > 0 ? operations / seconds : 0;
  }
};

struct TargetResult {
  std::string store;
  std::string mode;
  PhaseResult put;
  PhaseResult get;
  uint64_t delete_errors = 0;

  // Whether everything was stored and read back intact.
  bool clean() const {
    return put.errors + get.errors + get.mismatches + delete_errors == 0;
  }
};

// Runs the workload against `target`. An error means a connection failed;
// refused or wrong operations are counted in the result.
absl::StatusOr<TargetResult> RunTarget(BenchTarget& target,
                                       const PageCorpus& corpus,
                                       const RunOptions& options);

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_BENCH_RUNNER_H_
