#include "server/metrics/listener_collector.h"

#include <string>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace zpaged {
namespace {

TEST(ListenerCollectorTest, EachCounterIsItsOwnSeries) {
  const ConnectionListener::Counters counters{.accepted = 11,
                                              .refused_at_cap = 2,
                                              .descriptor_pauses = 3,
                                              .closed_and_barred = 5,
                                              .refused_barred = 7};
  const std::string text =
      prometheus::TextSerializer().Serialize(ConnectionFamilies(counters));
  for (const char* line : {
           "zpaged_connections_accepted_total 11\n",
           "zpaged_connections_refused_total{reason=\"max_connections\"} 2\n",
           "zpaged_accept_pauses_total 3\n",
           "zpaged_connections_closed_total{reason=\"stream_resets\"} 5\n",
           "zpaged_connections_refused_total{reason=\"barred\"} 7\n",
           "# TYPE zpaged_connections_refused_total counter\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "in\n" << text;
  }
}

}  // namespace
}  // namespace zpaged
