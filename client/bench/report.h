// The benchmark's report: a table for people, JSON for scripts, and the
// zpaged/Redis ratios in both.

#ifndef ZPAGED_CLIENT_BENCH_REPORT_H_
#define ZPAGED_CLIENT_BENCH_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "client/bench/bench_runner.h"

namespace zpaged::bench {

// Server CPU seconds per million operations of `phase`, when sampled.
std::optional<double> CpuSecondsPerMillion(const PhaseResult& phase);

// The server's memory growth over the Put phase per page stored, when
// sampled.
std::optional<double> MemoryBytesPerPage(const TargetResult& result);

// The table: one row per target and phase, then one ratio line per zpaged
// mode and Redis flavour.
std::string FormatTable(const RunOptions& options,
                        const std::vector<TargetResult>& results);

// {"config": {...}, "results": [one object per target and mode],
//  "ratios": [one object per zpaged mode and Redis flavour]}.
std::string FormatJson(const RunOptions& options,
                       const std::vector<TargetResult>& results);

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_REPORT_H_
