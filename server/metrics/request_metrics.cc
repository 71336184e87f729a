#include "server/metrics/request_metrics.h"

#include "absl/status/status.h"

namespace zpaged {
namespace {

// 10 µs to 1 s, about three buckets a decade.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
      5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1.0};
  return *buckets;
}

// A stream's length says how long the client kept it open, not how fast the
// server was, so streams get no latency series.
bool IsStream(RpcMethod method) {
  return method == RpcMethod::kWatchEvictions ||
         method == RpcMethod::kPutStream || method == RpcMethod::kGetStream;
}

bool CarriesPages(RpcMethod method) {
  switch (method) {
    case RpcMethod::kPut:
    case RpcMethod::kGet:
    case RpcMethod::kPutStream:
    case RpcMethod::kGetStream:
    case RpcMethod::kPutBatch:
    case RpcMethod::kGetBatch:
      return true;
    default:
      return false;
  }
}

}  // namespace

RequestMetrics::RequestMetrics(prometheus::Registry& registry) {
  auto& requests = prometheus::BuildCounter()
                       .Name("zpaged_requests_total")
                       .Help("RPCs finished, by method and gRPC status code")
                       .Register(registry);
  auto& durations =
      prometheus::BuildHistogram()
          .Name("zpaged_request_duration_seconds")
          .Help(
              "RPC latency from the handler's start to its finish; "
              "streams are not timed")
          .Register(registry);
  auto& pages = prometheus::BuildCounter()
                    .Name("zpaged_pages_total")
                    .Help(
                        "Pages handled, by method: one per unary Put or "
                        "Get, per stream item, per key of a batch")
                    .Register(registry);
  for (int m = 0; m < kRpcMethodCount; ++m) {
    const char* method = RpcMethodName(static_cast<RpcMethod>(m));
    for (int c = 0; c < kCodes; ++c) {
      requests_[m][c] = &requests.Add(
          {{"method", method},
           {"code",
            absl::StatusCodeToString(static_cast<absl::StatusCode>(c))}});
    }
    durations_[m] =
        IsStream(static_cast<RpcMethod>(m))
            ? nullptr
            : &durations.Add({{"method", method}}, LatencyBuckets());
    pages_[m] = CarriesPages(static_cast<RpcMethod>(m))
                    ? &pages.Add({{"method", method}})
                    : nullptr;
  }
}

void RequestMetrics::OnPages(RpcMethod method, uint32_t pages) {
  if (prometheus::Counter* counter = pages_[static_cast<int>(method)]) {
    counter->Increment(pages);
  }
}

void RequestMetrics::OnCallFinished(RpcMethod method, grpc::StatusCode code,
                                    absl::Duration latency) {
  const int m = static_cast<int>(method);
  const int c = static_cast<int>(code);
  if (c >= 0 && c < kCodes) requests_[m][c]->Increment();
  if (durations_[m] != nullptr) {
    durations_[m]->Observe(absl::ToDoubleSeconds(latency));
  }
}

}  // namespace zpaged
