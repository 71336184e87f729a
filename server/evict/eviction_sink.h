// EvictionSink: where the store sends the pages reclaim evicts. The
// EvictionBroker is the one the server uses; the store's tests use fakes.
//
// Delivery is asynchronous: Deliver hands a copy of the page over and
// returns; the outcome arrives later through the DeliveryDone the store
// passed, and only an ack lets the store drop its copy.

#ifndef ZPAGED_SERVER_EVICT_EVICTION_SINK_H_
#define ZPAGED_SERVER_EVICT_EVICTION_SINK_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/evict/page_bytes.h"

namespace zpaged {

enum class DeliveryOutcome {
  kAcked,         // the watcher wrote the page and acked: drop it
  kTimedOut,      // no ack within the deadline: keep the page
  kDisconnected,  // the watcher left before acking: keep the page
};

// Receives one delivery's outcome, once.
using DeliveryDone = absl::AnyInvocable<void(DeliveryOutcome) &&>;

class EvictionSink {
 public:
  virtual ~EvictionSink() = default;

  // True if `tenant` has a watcher that could take a page now.
  virtual bool CanAccept(absl::string_view tenant) = 0;

  // Offers one page of `tenant` to a watcher of that tenant. OK: a watcher
  // took a copy, and `done` will be called exactly once with the outcome,
  // never from inside Deliver (so a caller may hold its own locks across
  // it). UNAVAILABLE, with `done` dropped uncalled: no watcher could take it,
  // or another copy of `key` still awaits its ack. Thread-safe.
  virtual absl::Status Deliver(absl::string_view tenant, uint64_t key,
                               PageBytes page, DeliveryDone done) = 0;
};

// The sink of a store that nobody watches: every delivery is refused, so
// reclaim frees nothing and a full pool refuses Puts. For tests and
// benchmarks of the store where evictions are beside the point.
class NoWatcherSink final : public EvictionSink {
 public:
  bool CanAccept(absl::string_view) override { return false; }
  absl::Status Deliver(absl::string_view tenant, uint64_t, PageBytes,
                       DeliveryDone) override {
    return absl::UnavailableError("no eviction watcher");
  }
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_EVICT_EVICTION_SINK_H_
