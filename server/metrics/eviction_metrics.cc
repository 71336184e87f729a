#include "server/metrics/eviction_metrics.h"

namespace zpaged {

EvictionMetrics::EvictionMetrics(prometheus::Registry& registry)
    : ack_seconds_(
          &prometheus::BuildHistogram()
               .Name("zpaged_eviction_ack_seconds")
               .Help("Time from sending an evicted page to a watcher to its "
                     "ack, 100 us to 10 s")
               .Register(registry)
               .Add({}, prometheus::Histogram::BucketBoundaries{
                            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                            0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})) {}

void EvictionMetrics::OnAck(absl::Duration latency) {
  ack_seconds_->Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace zpaged
