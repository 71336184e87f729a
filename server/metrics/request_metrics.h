// RequestMetrics: zpaged_requests_total{method,code},
// zpaged_request_duration_seconds{method} and zpaged_pages_total{method}, fed
// by the RPC layer.

#ifndef ZPAGED_SERVER_METRICS_REQUEST_METRICS_H_
#define ZPAGED_SERVER_METRICS_REQUEST_METRICS_H_

#include <array>

#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/rpc/call_observer.h"

namespace zpaged {

class RequestMetrics final : public CallObserver {
 public:
  // Registers the families in `registry`, which must outlive this.
  explicit RequestMetrics(prometheus::Registry& registry);

  void OnCallFinished(RpcMethod method, grpc::StatusCode code,
                      absl::Duration latency) override;
  void OnPages(RpcMethod method, uint32_t pages) override;

 private:
  // gRPC status codes run from OK (0) to UNAUTHENTICATED (16).
  static constexpr int kCodes = 17;

  // Every (method, code) series is made up front, so a call only bumps an
  // atomic: no label lookup or lock on the request path.
  std::array<std::array<prometheus::Counter*, kCodes>, kRpcMethodCount>
      requests_;
  // Null for streams, which are not timed.
  std::array<prometheus::Histogram*, kRpcMethodCount> durations_;
  // zpaged_pages_total; null for methods that carry no pages.
  std::array<prometheus::Counter*, kRpcMethodCount> pages_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_METRICS_REQUEST_METRICS_H_
