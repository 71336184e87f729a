// Redis as the benchmark's peer: the store a user would otherwise put cold
// pages in. Each channel is one hiredis connection that pipelines SET/GET/DEL
// `depth` deep, in one of two flavours:
//
//   raw  pages are SET as they are.
//   lz4  the client LZ4-compresses each page before SET and decompresses it
//        after GET: what a user would build on Redis to get compression.
//
// Keys are "zpaged-bench:<flavour>:<key>", so the flavours do not overwrite
// each other. SampleServer reads INFO: used_cpu_user + used_cpu_sys and
// used_memory.
//
// With a replica (a second redis-server, `replicaof` the first), the sample
// is the sum of both, taken once the replica has caught up with every write
// the primary acknowledged. Redis replicates asynchronously: the primary
// acknowledges a SET before its replica has it, where a tier at two copies
// acknowledges a Put once both are stored.

#ifndef ZPAGED_CLIENT_BENCH_REDIS_TARGET_H_
#define ZPAGED_CLIENT_BENCH_REDIS_TARGET_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/bench/bench_target.h"

struct redisContext;

namespace zpaged::bench {

struct RedisAddress {
  std::string host;
  int port = 6379;
};

// Parses "redis://HOST:PORT" (the port defaults to 6379).
absl::StatusOr<RedisAddress> ParseRedisUrl(const std::string& url);

class RedisTarget : public BenchTarget {
 public:
  // How the client stores a page: as it is, or compressed by the client
  // (as a user of Redis would to save memory) with LZ4 or zstd level 1.
  enum class Flavour { kRaw, kLz4, kZstd };

  RedisTarget(Flavour flavour, RedisAddress address,
              std::optional<RedisAddress> replica = std::nullopt);
  ~RedisTarget() override;

  std::string store() const override { return "redis"; }
  std::string mode() const override;
  absl::Status Connect(int channels) override;
  absl::Status RunChannel(int channel, int depth, ChannelLoad& load) override;
  absl::StatusOr<std::optional<ServerSample>> SampleServer() override;

 private:
  struct ContextFree {
    void operator()(redisContext* context) const;
  };
  using Connection = std::unique_ptr<redisContext, ContextFree>;

  static absl::StatusOr<Connection> Open(const RedisAddress& address);
  // The INFO text of the server behind `connection`.
  static absl::StatusOr<std::string> Info(redisContext* connection);

  const Flavour flavour_;
  const RedisAddress address_;
  const std::optional<RedisAddress> replica_;
  std::vector<Connection> connections_;
  Connection info_connection_;
  Connection replica_connection_;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_REDIS_TARGET_H_
