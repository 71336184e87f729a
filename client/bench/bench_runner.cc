#include "client/bench/bench_runner.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/bench/channel_load.h"
#include "client/bench/progress_line.h"
#include "client/bench/wire_bytes.h"

namespace zpaged::bench {
namespace {

struct PhaseRun {
  PhaseResult result;
  std::vector<uint64_t> answered;  // per channel
};

// How channel `channel` of `channels` ends `phase`. Put phases share out the
// pages or run to the deadline; Get phases read back what the channel put,
// cycling until the deadline when there is one; Delete phases remove exactly
// what the channel put.
PhaseEnd EndOf(Phase phase, int channel, const RunOptions& options,
               const std::vector<uint64_t>& stored,
               Clock::time_point deadline) {
  PhaseEnd end;
  if (phase == Phase::kDelete) {
    end.operations = stored[channel];
  } else if (options.duration > absl::ZeroDuration()) {
    end.deadline = deadline;
  } else if (phase == Phase::kGet) {
    end.operations = stored[channel];
  } else {
    const uint64_t channels = options.channels;
    end.operations =
        options.pages / channels +
        (static_cast<uint64_t>(channel) < options.pages % channels ? 1 : 0);
  }
  return end;
}

absl::StatusOr<std::optional<ServerSample>> Sample(BenchTarget& target,
                                                   bool wanted) {
  if (!wanted) return std::nullopt;
  return target.SampleServer();
}

absl::StatusOr<PhaseRun> RunPhase(BenchTarget& target, const PageCorpus& corpus,
                                  const RunOptions& options, Phase phase,
                                  const std::vector<uint64_t>& stored) {
  const bool timed = phase != Phase::kDelete;
  absl::StatusOr<std::optional<ServerSample>> before = Sample(target, timed);
  if (!before.ok()) return before.status();
  const std::optional<uint64_t> wire_before = LoopbackBytes();

  std::atomic<uint64_t> completed{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + absl::ToChronoNanoseconds(options.duration);
  std::vector<std::unique_ptr<ChannelLoad>> loads;
  for (int c = 0; c < options.channels; ++c) {
    loads.push_back(std::make_unique<ChannelLoad>(
        corpus, phase, c, options.channels,
        EndOf(phase, c, options, stored, deadline), stored[c], completed));
  }
  std::vector<absl::Status> statuses(options.channels);
  {
    ProgressLine progress(
        absl::StrCat(target.store(), " ", target.mode(), " ", PhaseName(phase)),
        completed);
    std::vector<std::thread> threads;
    for (int c = 0; c < options.channels; ++c) {
      threads.emplace_back([&, c] {
        statuses[c] = target.RunChannel(c, options.depth, *loads[c]);
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  PhaseRun run;
  run.result.seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }

  const std::optional<uint64_t> wire_after = LoopbackBytes();
  if (wire_before.has_value() && wire_after.has_value()) {
    run.result.wire_bytes = *wire_after - *wire_before;
  }
  absl::StatusOr<std::optional<ServerSample>> after = Sample(target, timed);
  if (!after.ok()) return after.status();
  if (before->has_value() && after->has_value()) {
    run.result.server_cpu_seconds =
        (*after)->cpu_seconds - (*before)->cpu_seconds;
    run.result.server_memory_growth_bytes =
        static_cast<int64_t>((*after)->memory_bytes) -
        static_cast<int64_t>((*before)->memory_bytes);
  }
  for (const auto& load : loads) {
    run.answered.push_back(load->operations());
    run.result.operations += load->operations();
    run.result.errors += load->errors();
    run.result.mismatches += load->mismatches();
    run.result.latency.Merge(load->histogram());
    if (run.result.first_error.empty()) {
      run.result.first_error = load->first_error();
    }
  }
  return run;
}

}  // namespace

absl::StatusOr<TargetResult> RunTarget(BenchTarget& target,
                                       const PageCorpus& corpus,
                                       const RunOptions& options) {
  if (absl::Status connected = target.Connect(options.channels);
      !connected.ok()) {
    return connected;
  }
  TargetResult result;
  result.store = target.store();
  result.mode = target.mode();
  const std::vector<uint64_t> nothing(options.channels, 0);
  if (options.warmup_pages > 0) {
    std::fprintf(stderr, "%s %s: warm-up, %lu pages put and deleted\n",
                 result.store.c_str(), result.mode.c_str(),
                 static_cast<unsigned long>(options.warmup_pages));
    RunOptions warmup = options;
    warmup.pages = options.warmup_pages;
    warmup.duration = absl::ZeroDuration();
    absl::StatusOr<PhaseRun> put =
        RunPhase(target, corpus, warmup, Phase::kPut, nothing);
    if (!put.ok()) return put.status();
    absl::StatusOr<PhaseRun> cleanup =
        RunPhase(target, corpus, warmup, Phase::kDelete, put->answered);
    if (!cleanup.ok()) return cleanup.status();
  }
  absl::StatusOr<PhaseRun> put =
      RunPhase(target, corpus, options, Phase::kPut, nothing);
  if (!put.ok()) return put.status();
  result.put = std::move(put->result);
  absl::StatusOr<PhaseRun> get =
      RunPhase(target, corpus, options, Phase::kGet, put->answered);
  if (!get.ok()) return get.status();
  result.get = std::move(get->result);
  absl::StatusOr<PhaseRun> cleanup =
      RunPhase(target, corpus, options, Phase::kDelete, put->answered);
  if (!cleanup.ok()) return cleanup.status();
  result.delete_errors = cleanup->result.errors;
  return result;
}

}  // namespace zpaged::bench
