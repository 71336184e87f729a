// EvictionSink: where evicted pages go. The store calls it from reclaim; the
// RPC layer implements it with the tenants' WatchEvictions streams.

#ifndef ZPAGED_SERVER_STORE_EVICTION_SINK_H_
#define ZPAGED_SERVER_STORE_EVICTION_SINK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace zpaged {

class EvictionSink {
 public:
  virtual ~EvictionSink() = default;

  // True if `tenant` has a watcher that could take evicted pages now.
  virtual bool CanAccept(absl::string_view tenant) = 0;

  // Hands one page to a watcher of `tenant` and blocks until the watcher
  // acknowledges that the page is safe (OK), or until that cannot happen:
  // no watcher, the watcher left, or the ack deadline passed (any non-OK).
  // Only after OK may the store drop the page. Thread-safe.
  virtual absl::Status Deliver(absl::string_view tenant, uint64_t key,
                               absl::Span<const uint8_t> page) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_EVICTION_SINK_H_
