// BenchTarget: one store driven by zpaged-bench — zpaged over unary calls or
// streams, or Redis as the peer — behind one interface, so every target runs
// the identical workload.

#ifndef ZPAGED_CLIENT_BENCH_BENCH_TARGET_H_
#define ZPAGED_CLIENT_BENCH_BENCH_TARGET_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/bench/channel_load.h"

namespace zpaged::bench {

// What the server behind a target has spent, read between phases.
struct ServerSample {
  double cpu_seconds = 0;  // user + system, since it started
  // Memory holding the data: resident bytes for zpaged, used_memory for
  // Redis.
  uint64_t memory_bytes = 0;
};

class BenchTarget {
 public:
  virtual ~BenchTarget() = default;

  // "zpaged" or "redis", and how it is driven: "stream", "unary", "raw" or
  // "lz4".
  virtual std::string store() const = 0;
  virtual std::string mode() const = 0;

  // Opens `channels` independent connections and waits until each is ready,
  // so that connecting is not timed.
  virtual absl::Status Connect(int channels) = 0;

  // Runs `load` on connection `channel`, keeping up to `depth` operations in
  // flight, and returns once every sent operation is answered. An error
  // means the connection itself failed; per-operation errors go to `load`.
  virtual absl::Status RunChannel(int channel, int depth,
                                  ChannelLoad& load) = 0;

  // The server's CPU time and memory now, when the target can tell.
  virtual absl::StatusOr<std::optional<ServerSample>> SampleServer() = 0;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_BENCH_TARGET_H_
