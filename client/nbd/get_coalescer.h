// GetCoalescer: turns concurrent reads of a few blocks each into shared
// GetBatch calls.
//
// nbdkit serves each NBD request on its own thread, and a 4 KiB random read
// is one block: alone, each would pay a whole gRPC call. Here a reader that
// finds fewer than kMaxCallsInFlight calls out issues one at once, carrying
// its own keys and every key queued so far; a reader that finds them all
// busy queues its keys, and the next call to finish issues a call for the
// queue on its behalf. So one reader alone is never delayed, and under load
// the calls carry many keys each. One call at a time measured best on two
// cores: more overlap only made each call carry fewer keys. The calls run
// on one completion queue the issuing reader polls, so no gRPC thread hands
// the answer over.
//
// Thread-safe. Fetch blocks its caller until its keys are answered.

#ifndef ZPAGED_CLIENT_NBD_GET_COALESCER_H_
#define ZPAGED_CLIENT_NBD_GET_COALESCER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/zpaged_client.h"
#include "grpcpp/completion_queue.h"

namespace zpaged::nbd {

class GetCoalescer {
 public:
  static constexpr int kMaxCallsInFlight = 1;
  static constexpr size_t kMaxKeysPerCall = 256;

  // `client` must outlive the coalescer.
  GetCoalescer(Client* client, std::string tenant);
  ~GetCoalescer();

  // Fetches `keys` (at most kMaxKeysPerCall) of the tenant: each found page
  // into its 4096 bytes at outs[i] with codes[i] = 0, else codes[i] = the
  // item's google.rpc.Code. An error when the call carrying them failed.
  absl::Status Fetch(absl::Span<const uint64_t> keys,
                     absl::Span<uint8_t* const> outs,
                     absl::Span<int32_t> codes);

 private:
  // One caller's keys, waiting for or riding on a call.
  struct Request {
    absl::Span<const uint64_t> keys;
    absl::Span<uint8_t* const> outs;
    absl::Span<int32_t> codes;
    absl::Status status;
    bool done = false;
    // Woken when the request is answered, or when it heads the queue and a
    // call is free: one thread per event, not every reader.
    std::condition_variable wake;
  };

  // Issues one call for `requests` (the lock not held) and fills them in.
  void Call(const std::vector<Request*>& requests);
  // Takes queued requests up to kMaxKeysPerCall keys. Requires mu_.
  std::vector<Request*> TakeQueued();

  Client* const client_;
  const std::string tenant_;
  // Used by the one call in flight, polled by the reader that issued it.
  grpc::CompletionQueue cq_;
  std::mutex mu_;
  std::deque<Request*> queue_;  // guarded by mu_
  int calls_in_flight_ = 0;     // guarded by mu_
};

}  // namespace zpaged::nbd

#endif  // ZPAGED_CLIENT_NBD_GET_COALESCER_H_
