#include "server/metrics/eviction_metrics.h"

namespace zpaged {
namespace {

// 100 us to 10 s: an ack on loopback to a watcher past its deadline.
prometheus::Histogram* Seconds(prometheus::Registry& registry, const char* name,
                               const char* help) {
  return &prometheus::BuildHistogram()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{
                           0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                           0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
}

}  // namespace

EvictionMetrics::EvictionMetrics(prometheus::Registry& registry)
    : ack_seconds_(Seconds(registry, "zpaged_eviction_ack_seconds",
                           "Time from sending an evicted page to a watcher to "
                           "its ack, 100 us to 10 s")),
      room_wait_seconds_(Seconds(
          registry, "zpaged_put_room_wait_seconds",
          "Time a Put that found no room waited for evictions before it was "
          "stored, 100 us to 10 s")) {}

void EvictionMetrics::OnRoomWait(absl::Duration waited) {
  room_wait_seconds_->Observe(absl::ToDoubleSeconds(waited));
}

void EvictionMetrics::OnAck(absl::Duration latency) {
  ack_seconds_->Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace zpaged
