// zpaged as a benchmark target, over streams (PutStream/GetStream), over
// unary calls kept `depth` deep with gRPC's callback API, or over batches
// (PutBatch/GetBatch) of `batch_pages` pages, depth / batch_pages calls deep,
// so that every mode has `depth` pages in flight.
//
// Each channel is its own grpc::Channel, so its own HTTP/2 connection. Each
// mode writes to its own tenant, "<tenant>-<mode>", so that runs of both
// modes against one server do not overwrite each other's pages.

#ifndef ZPAGED_CLIENT_BENCH_ZPAGED_TARGET_H_
#define ZPAGED_CLIENT_BENCH_ZPAGED_TARGET_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/bench/bench_target.h"
#include "zpaged/v1/page_store.grpc.pb.h"

namespace zpaged::bench {

struct ZpagedTargetOptions {
  std::string server;    // "HOST:PORT"
  std::string tenant;    // the prefix of the tenant names
  std::string token;     // bearer token, when the server wants one
  pid_t server_pid = 0;  // for SampleServer; 0 when unknown
  int batch_pages = 16;  // pages per PutBatch/GetBatch call, batch mode
};

class ZpagedTarget : public BenchTarget {
 public:
  enum class Mode { kStream, kUnary, kBatch };

  ZpagedTarget(Mode mode, ZpagedTargetOptions options);

  std::string store() const override { return "zpaged"; }
  std::string mode() const override;
  absl::Status Connect(int channels) override;
  absl::Status RunChannel(int channel, int depth, ChannelLoad& load) override;
  absl::StatusOr<std::optional<ServerSample>> SampleServer() override;

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  absl::Status RunStream(v1::PageStore::Stub& stub, int depth,
                         ChannelLoad& load);
  void RunUnary(v1::PageStore::Stub& stub, int depth, ChannelLoad& load);
  void RunBatches(v1::PageStore::Stub& stub, int depth, ChannelLoad& load);

  const Mode mode_;
  const ZpagedTargetOptions options_;
  const std::string tenant_;
  std::vector<std::unique_ptr<v1::PageStore::Stub>> stubs_;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_ZPAGED_TARGET_H_
