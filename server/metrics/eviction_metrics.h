// EvictionMetrics: zpaged_eviction_ack_seconds, how long watchers take to ack
// an evicted page, fed by the EvictionBroker; zpaged_put_room_wait_seconds,
// how long Puts that found no room waited for it, fed by the store. The
// per-tenant eviction series are read at scrape time by StoreCollector.

#ifndef ZPAGED_SERVER_METRICS_EVICTION_METRICS_H_
#define ZPAGED_SERVER_METRICS_EVICTION_METRICS_H_

#include "absl/time/time.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zpaged {

class EvictionMetrics {
 public:
  // Registers the histogram in `registry`, which must outlive this.
  explicit EvictionMetrics(prometheus::Registry& registry);

  // One page acked `latency` after it was sent. Thread-safe.
  void OnAck(absl::Duration latency);

  // One Put stored `waited` after it found no room. Thread-safe.
  void OnRoomWait(absl::Duration waited);

 private:
  prometheus::Histogram* ack_seconds_;
  prometheus::Histogram* room_wait_seconds_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_METRICS_EVICTION_METRICS_H_
