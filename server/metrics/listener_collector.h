// ListenerCollector: what zpaged's accept loop (ConnectionListener) did to
// connections, read at scrape time. Refusals and closings are how an
// operator learns that --max_connections is too low for the clients, that
// descriptors ran out, or that a client was cut off for resetting streams
// faster than --max_stream_resets_per_second (HTTP/2 rapid reset).
//
//   zpaged_connections_accepted_total                     handed to gRPC
//   zpaged_connections_refused_total{reason}              closed on arrival:
//       max_connections (the cap was reached), barred (its source was cut
//       off for stream resets and its bar had not ended)
//   zpaged_connections_closed_total{reason="stream_resets"}
//   zpaged_accept_pauses_total                            descriptors ran out

#ifndef ZPAGED_SERVER_METRICS_LISTENER_COLLECTOR_H_
#define ZPAGED_SERVER_METRICS_LISTENER_COLLECTOR_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/net/connection_listener.h"

namespace zpaged {

// The families above, from one reading of the listener's counters.
std::vector<prometheus::MetricFamily> ConnectionFamilies(
    const ConnectionListener::Counters& counters);

class ListenerCollector final : public prometheus::Collectable {
 public:
  // `listener` must outlive every scrape: the exposer that calls Collect
  // goes first.
  explicit ListenerCollector(const ConnectionListener* listener)
      : listener_(listener) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    return ConnectionFamilies(listener_->counters());
  }

 private:
  const ConnectionListener* const listener_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_METRICS_LISTENER_COLLECTOR_H_
