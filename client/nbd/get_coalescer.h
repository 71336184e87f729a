// GetCoalescer: turns concurrent reads of a few blocks each into shared
// GetMany calls.
//
// nbdkit serves each NBD request on its own thread, and a 4 KiB random read
// is one block: alone, each would pay a whole gRPC call. Here a reader that
// finds fewer than kMaxCallsInFlight calls out issues one at once, carrying
// its own keys and every key queued so far; a reader that finds them all
// busy queues its keys, and the next call to finish issues a call for the
// queue on its behalf. So one reader alone is never delayed, and under load
// the calls carry many keys each. One call at a time measured best on two
// cores: more overlap only made each call carry fewer keys. The calls run
// on the issuing reader's thread (PageClient::GetMany), so no other thread
// hands the answer over.
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
#include "client/lib/page_client.h"

namespace zpaged::nbd {

class GetCoalescer {
 public:
  static constexpr int kMaxCallsInFlight = 1;
  static constexpr size_t kMaxKeysPerCall = 256;

  // `client` must outlive the coalescer.
  GetCoalescer(PageClient* client, std::string tenant);

  // Fetches `keys` (at most kMaxKeysPerCall) of the tenant: each found page
  // into its 4096 bytes at outs[i] with found[i] OK, else found[i] the
  // item's status (NOT_FOUND, ...). An error when the call carrying them
  // failed.
  absl::Status Fetch(absl::Span<const uint64_t> keys,
                     absl::Span<uint8_t* const> outs,
                     absl::Span<absl::Status> found);

 private:
  // One caller's keys, waiting for or riding on a call.
  struct Request {
    absl::Span<const uint64_t> keys;
    absl::Span<uint8_t* const> outs;
    absl::Span<absl::Status> found;
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

  PageClient* const client_;
  const std::string tenant_;
  std::mutex mu_;
  std::deque<Request*> queue_;  // guarded by mu_
  int calls_in_flight_ = 0;     // guarded by mu_
};

}  // namespace zpaged::nbd

#endif  // ZPAGED_CLIENT_NBD_GET_COALESCER_H_
