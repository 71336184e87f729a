// CallObserver: what the RPC layer tells about each finished call, for
// metrics. The RPC layer knows nothing of Prometheus; server/metrics
// implements this.

#ifndef ZPAGED_SERVER_RPC_CALL_OBSERVER_H_
#define ZPAGED_SERVER_RPC_CALL_OBSERVER_H_

#include <cstdint>

#include "absl/time/time.h"
#include "grpcpp/support/status_code_enum.h"

namespace zpaged {

// The methods of zpaged.v1.PageStore, as metric labels.
enum class RpcMethod {
  kPut,
  kGet,
  kDelete,
  kReclaim,
  kWatchEvictions,
  kStats,
  kPutStream,
  kGetStream,
  kPutBatch,
  kGetBatch,
  kDeleteBatch,
  kDeleteAll
};
inline constexpr int kRpcMethodCount = 12;
inline const char* RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kPut:
      return "Put";
    case RpcMethod::kGet:
      return "Get";
    case RpcMethod::kDelete:
      return "Delete";
    case RpcMethod::kReclaim:
      return "Reclaim";
    case RpcMethod::kWatchEvictions:
      return "WatchEvictions";
    case RpcMethod::kStats:
      return "Stats";
    case RpcMethod::kPutStream:
      return "PutStream";
    case RpcMethod::kGetStream:
      return "GetStream";
    case RpcMethod::kPutBatch:
      return "PutBatch";
    case RpcMethod::kGetBatch:
      return "GetBatch";
    case RpcMethod::kDeleteBatch:
      return "DeleteBatch";
    case RpcMethod::kDeleteAll:
      return "DeleteAll";
  }
  return "unknown";
}

class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // Called once per call as it finishes; `latency` is from the handler's
  // start. Must be thread-safe and cheap: it runs on the call's path.
  virtual void OnCallFinished(RpcMethod method, grpc::StatusCode code,
                              absl::Duration latency) = 0;
  // Called as a call handles `pages` pages (items of a stream or a batch,
  // whatever their outcome). Thread-safe and cheap, as above.
  virtual void OnPages(RpcMethod method, uint32_t pages) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_CALL_OBSERVER_H_
