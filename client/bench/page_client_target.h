// zpaged as a user of the client library drives it: through the PageClient
// interface, PutMany/GetMany/DeleteMany of `depth` pages at a time, which
// the library sends as batch calls of `batch_pages`, depth / batch_pages
// calls in flight. Over one server the PageClient is a Client; over
// several, a TierClient keeping `replicas` copies of each page, so the same
// workload measures a tier against one server (or against Redis with a
// replica).
//
// Each channel is its own client, so its own connections. Its tenant is
// "<tenant>-client-<compressor>" (one server) or "<tenant>-tier-<compressor>"
// (several).

#ifndef ZPAGED_CLIENT_BENCH_PAGE_CLIENT_TARGET_H_
#define ZPAGED_CLIENT_BENCH_PAGE_CLIENT_TARGET_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/bench/bench_target.h"
#include "client/lib/edge_codec.h"
#include "client/lib/page_client.h"

namespace zpaged::bench {

struct PageClientTargetOptions {
  std::vector<std::string> servers;  // "HOST:PORT" or "NAME=HOST:PORT"
  int replicas = 1;                  // copies of each page, with servers > 1
  std::string tenant;                // the prefix of the tenant name
  std::string token;                 // bearer token, when servers want one
  std::vector<pid_t> server_pids;    // for SampleServer: summed over them
  int batch_pages = 16;              // pages per batch call
  int depth = 16;                    // pages in flight per channel
  // How the client library encodes pages (edge_codec.h).
  EdgeCompression compression;
};

class PageClientTarget : public BenchTarget {
 public:
  explicit PageClientTarget(PageClientTargetOptions options);

  std::string store() const override { return "zpaged"; }
  // "client-<compressor>", or "tier-<compressor> R=<replicas>/<servers>".
  std::string mode() const override;
  absl::Status Connect(int channels) override;
  absl::Status RunChannel(int channel, int depth, ChannelLoad& load) override;
  absl::StatusOr<std::optional<ServerSample>> SampleServer() override;

 private:
  std::string tenant() const;

  const PageClientTargetOptions options_;
  int depth_ = 16;
  std::vector<std::unique_ptr<PageClient>> clients_;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_PAGE_CLIENT_TARGET_H_
