#include "server/metrics/store_collector.h"

#include <random>
#include <string>
#include <vector>

#include "contract/page.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/evict/eviction_broker.h"

namespace zpaged {
namespace {

const prometheus::MetricFamily* Find(
    const std::vector<prometheus::MetricFamily>& families,
    const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

double Value(const std::vector<prometheus::MetricFamily>& families,
             const std::string& name, const std::string& tenant,
             const std::string& extra = "") {
  const prometheus::MetricFamily* f = Find(families, name);
  if (f == nullptr) return -1;
  for (const auto& m : f->metric) {
    bool match = true;
    for (const auto& label : m.label) {
      if (label.name == "tenant") match &= label.value == tenant;
      if (label.name == "reason" || label.name == "outcome") {
        match &= label.value == extra;
      }
    }
    if (match) {
      return f->type == prometheus::MetricType::Counter ? m.counter.value
                                                        : m.gauge.value;
    }
  }
  return -1;
}

// A watcher that takes pages and never acks.
class SilentChannel : public WatcherChannel {
 public:
  bool Send(const OutgoingPage&) override { return true; }
  void Close(const absl::Status&) override {}
};

TEST(StoreCollectorTest, SeriesAgreeWithTheStoreAtScrapeTime) {
  BrokerOptions options;
  options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(options));
  PageStore store(StoreOptions{.tenant_max_bytes = 3 * kPageSize,
                               .max_memory_bytes = 100 * kPageSize},
                  &broker);
  std::vector<uint8_t> page(kPageSize);
  std::mt19937 rng(1);
  for (uint64_t key = 0; key < 5; ++key) {  // 3 fit, 2 refused for the limit
    for (uint8_t& b : page) b = static_cast<uint8_t>(rng());
    store.PutAndWait("vm-a", key, page).IgnoreError();
  }
  std::vector<uint8_t> zero(kPageSize, 0);
  ASSERT_TRUE(store.PutAndWait("vm-b", 1, zero).ok());
  EXPECT_FALSE(
      store.PutAndWait("vm-b", 2, absl::MakeSpan(zero).subspan(1)).ok());

  // One watcher of vm-a, with the two least recently used pages out.
  SilentChannel channel;
  const EvictionBroker::WatcherId watcher = *broker.Attach("vm-a", &channel);
  store.Reclaim("vm-a", 2, [](absl::StatusOr<ReclaimResult>) {});

  StoreCollector collector(&store, &broker);
  const auto families = collector.Collect();
  const PageStats a = *store.Stats("vm-a");
  EXPECT_EQ(Value(families, "zpaged_stored_pages", "vm-a"), a.stored_pages);
  EXPECT_EQ(Value(families, "zpaged_stored_pages", "vm-a"), 3);
  EXPECT_EQ(Value(families, "zpaged_pool_pages", "vm-a"), a.pool_pages);
  EXPECT_EQ(Value(families, "zpaged_density", "vm-a"), a.density());
  EXPECT_EQ(Value(families, "zpaged_raw_pages", "vm-a"), 3);
  EXPECT_EQ(Value(families, "zpaged_same_filled_pages", "vm-b"), 1);
  EXPECT_EQ(Value(families, "zpaged_rejected_puts_total", "vm-a", "limit"), 2);
  EXPECT_EQ(Value(families, "zpaged_rejected_puts_total", "vm-b", "invalid"),
            1);
  EXPECT_GT(Value(families, "zpaged_arena_mapped_bytes", "vm-a"), 0);
  EXPECT_EQ(Find(families, "zpaged_tenants")->metric[0].gauge.value, 2);
  EXPECT_EQ(Find(families, "zpaged_memory_limit_bytes")->metric[0].gauge.value,
            100 * kPageSize);
  EXPECT_EQ(Find(families, "zpaged_evicted_pages_total")->type,
            prometheus::MetricType::Counter);
  EXPECT_EQ(Value(families, "zpaged_watchers", "vm-a"), 1);
  EXPECT_EQ(Value(families, "zpaged_stalled_watchers", "vm-a"), 0);
  EXPECT_EQ(Value(families, "zpaged_evictions_in_flight", "vm-a"), 2);
  // vm-b holds pages and has no watcher: its series say 0, for alerts.
  EXPECT_EQ(Value(families, "zpaged_watchers", "vm-b"), 0);
  EXPECT_EQ(Value(families, "zpaged_stalled_watchers", "vm-b"), 0);
  EXPECT_EQ(Value(families, "zpaged_evictions_in_flight", "vm-b"), 0);
  // Two tenants hold pages: each has half the limit as its share.
  EXPECT_EQ(Value(families, "zpaged_tenant_share_bytes", "vm-a"),
            50 * kPageSize);
  EXPECT_GT(Value(families, "zpaged_tenant_used_bytes", "vm-a"),
            Value(families, "zpaged_pool_pages", "vm-a") * kPageSize);
  EXPECT_EQ(
      Value(families, "zpaged_eviction_deliveries_total", "vm-a", "acked"), 0);
  EXPECT_EQ(Find(families, "zpaged_eviction_deliveries_total")->metric.size(),
            5u * 2);  // five outcomes, two tenants

  const std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_NE(text.find("zpaged_stored_pages{tenant=\"vm-a\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE zpaged_density gauge"), std::string::npos);
  // The two pages out resolve as the watcher leaves; they stay stored.
  broker.Detach(watcher);
  broker.Stop();
  const auto after = collector.Collect();
  EXPECT_EQ(
      Value(after, "zpaged_eviction_deliveries_total", "vm-a", "disconnected"),
      2);
  EXPECT_EQ(Value(after, "zpaged_stored_pages", "vm-a"), 3);
}

// Issue 11 #11: /metrics named every tenant; an operator may not want that.
TEST(StoreCollectorTest, WithoutPerTenantSeriesTheSumsNameNoTenant) {
  BrokerOptions options;
  options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(options));
  PageStore store(StoreOptions{}, &broker);
  std::vector<uint8_t> zero(kPageSize, 0);
  ASSERT_TRUE(store.PutAndWait("secret-a", 1, zero).ok());
  ASSERT_TRUE(store.PutAndWait("secret-b", 1, zero).ok());
  ASSERT_TRUE(store.PutAndWait("secret-b", 2, zero).ok());
  SilentChannel channel;
  const EvictionBroker::WatcherId watcher =
      *broker.Attach("secret-a", &channel);

  StoreCollector collector(&store, &broker, /*per_tenant=*/false);
  const auto families = collector.Collect();
  const std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  EXPECT_EQ(text.find("tenant=\""), std::string::npos) << text;
  EXPECT_NE(text.find("zpaged_stored_pages 3"), std::string::npos) << text;
  EXPECT_NE(text.find("zpaged_same_filled_pages 3"), std::string::npos);
  EXPECT_NE(text.find("zpaged_watchers 1"), std::string::npos) << text;
  EXPECT_NE(text.find("zpaged_tenants 2"), std::string::npos) << text;
  broker.Detach(watcher);
  broker.Stop();
}

}  // namespace
}  // namespace zpaged
