#include "server/metrics/listener_collector.h"

#include <cstdint>
#include <string>
#include <utility>

namespace zpaged {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// A counter family whose series are (reason, value); a reason of nullptr
// is the one unlabelled series.
MetricFamily CounterFamily(
    const char* name, const char* help,
    std::vector<std::pair<const char*, uint64_t>> series) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = MetricType::Counter;
  for (const auto& [reason, value] : series) {
    ClientMetric metric;
    if (reason != nullptr) metric.label.push_back({"reason", reason});
    metric.counter.value = static_cast<double>(value);
    family.metric.push_back(std::move(metric));
  }
  return family;
}

}  // namespace

std::vector<MetricFamily> ConnectionFamilies(
    const ConnectionListener::Counters& counters) {
  std::vector<MetricFamily> families;
  families.push_back(CounterFamily("zpaged_connections_accepted_total",
                                   "Connections accepted and handed to gRPC",
                                   {{nullptr, counters.accepted}}));
  families.push_back(CounterFamily(
      "zpaged_connections_refused_total",
      "Connections closed on arrival: max_connections were open, or their "
      "source was barred for resetting streams",
      {{"max_connections", counters.refused_at_cap},
       {"barred", counters.refused_barred}}));
  families.push_back(
      CounterFamily("zpaged_connections_closed_total",
                    "Open connections closed by zpaged: their client reset "
                    "streams faster than --max_stream_resets_per_second",
                    {{"stream_resets", counters.closed_and_barred}}));
  families.push_back(CounterFamily(
      "zpaged_accept_pauses_total",
      "Times accepting paused because the process ran out of descriptors",
      {{nullptr, counters.descriptor_pauses}}));
  return families;
}

}  // namespace zpaged
