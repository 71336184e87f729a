// The CPU time and resident memory of a local process, from /proc.

#ifndef ZPAGED_CLIENT_BENCH_PROCESS_SAMPLE_H_
#define ZPAGED_CLIENT_BENCH_PROCESS_SAMPLE_H_

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "client/bench/bench_target.h"

namespace zpaged::bench {

// User + system CPU seconds and resident bytes of process `pid`. NOT_FOUND
// if there is no such process.
absl::StatusOr<ServerSample> SampleProcess(pid_t pid);

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_PROCESS_SAMPLE_H_
