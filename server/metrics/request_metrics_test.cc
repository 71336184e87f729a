#include "server/metrics/request_metrics.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

// The series of `family` whose labels include every one of `labels`.
std::vector<prometheus::ClientMetric> SeriesOf(
    const std::vector<prometheus::MetricFamily>& families,
    const std::string& family,
    const std::vector<prometheus::ClientMetric::Label>& labels) {
  std::vector<prometheus::ClientMetric> out;
  for (const auto& f : families) {
    if (f.name != family) continue;
    for (const auto& metric : f.metric) {
      bool all = true;
      for (const auto& wanted : labels) {
        bool found = false;
        for (const auto& label : metric.label) {
          found = found ||
                  (label.name == wanted.name && label.value == wanted.value);
        }
        all = all && found;
      }
      if (all) out.push_back(metric);
    }
  }
  return out;
}

TEST(RequestMetricsTest, CallsAreCountedByMethodAndCodeAndOnlyUnaryAreTimed) {
  prometheus::Registry registry;
  RequestMetrics metrics(registry);
  metrics.OnCallFinished(RpcMethod::kPut, grpc::StatusCode::OK,
                         absl::Microseconds(40));
  metrics.OnCallFinished(RpcMethod::kPut, grpc::StatusCode::OK,
                         absl::Milliseconds(3));
  metrics.OnCallFinished(RpcMethod::kGet, grpc::StatusCode::NOT_FOUND,
                         absl::Microseconds(20));
  metrics.OnCallFinished(RpcMethod::kPutStream, grpc::StatusCode::OK,
                         absl::Seconds(30));
  const std::vector<prometheus::MetricFamily> families = registry.Collect();

  auto count = [&](const char* method, const char* code) {
    auto series = SeriesOf(families, "zpaged_requests_total",
                           {{"method", method}, {"code", code}});
    return series.size() == 1 ? series[0].counter.value : -1;
  };
  EXPECT_EQ(count("Put", "OK"), 2);
  EXPECT_EQ(count("Get", "NOT_FOUND"), 1);
  EXPECT_EQ(count("Get", "OK"), 0);
  EXPECT_EQ(count("PutStream", "OK"), 1);

  auto put = SeriesOf(families, "zpaged_request_duration_seconds",
                      {{"method", "Put"}});
  ASSERT_EQ(put.size(), 1u);
  EXPECT_EQ(put[0].histogram.sample_count, 2u);
  EXPECT_NEAR(put[0].histogram.sample_sum, 0.00304, 1e-9);
  // A stream's length is the client's business: no latency series at all.
  for (const char* stream : {"PutStream", "GetStream", "WatchEvictions"}) {
    EXPECT_TRUE(SeriesOf(families, "zpaged_request_duration_seconds",
                         {{"method", stream}})
                    .empty())
        << stream;
  }
}

TEST(RequestMetricsTest, PagesAreCountedByMethodBesideTheCalls) {
  prometheus::Registry registry;
  RequestMetrics metrics(registry);
  metrics.OnPages(RpcMethod::kPutBatch, 16);
  metrics.OnPages(RpcMethod::kPutBatch, 256);
  metrics.OnPages(RpcMethod::kGet, 1);
  metrics.OnPages(RpcMethod::kDelete, 1);  // carries no page: not a series
  const auto families = registry.Collect();
  auto pages = [&](const char* method) {
    const auto series =
        SeriesOf(families, "zpaged_pages_total", {{"method", method}});
    return series.empty() ? -1.0 : series[0].counter.value;
  };
  EXPECT_EQ(pages("PutBatch"), 272);
  EXPECT_EQ(pages("Get"), 1);
  EXPECT_EQ(pages("GetBatch"), 0);
  EXPECT_EQ(pages("Delete"), -1);
}

}  // namespace
}  // namespace zpaged
