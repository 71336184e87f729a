#include "server/metrics/store_collector.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "server/core/page.h"
#include "server/store/no_watcher_sink.h"

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
             const std::string& reason = "") {
  const prometheus::MetricFamily* f = Find(families, name);
  if (f == nullptr) return -1;
  for (const auto& m : f->metric) {
    bool match = true;
    for (const auto& label : m.label) {
      if (label.name == "tenant") match &= label.value == tenant;
      if (label.name == "reason") match &= label.value == reason;
    }
    if (match) {
      return f->type == prometheus::MetricType::Counter ? m.counter.value
                                                        : m.gauge.value;
    }
  }
  return -1;
}

TEST(StoreCollectorTest, SeriesAgreeWithTheStoreAtScrapeTime) {
  NoWatcherSink sink;
  PageStore store(StoreOptions{.tenant_max_bytes = 3 * kPageSize,
                               .max_memory_bytes = 100 * kPageSize},
                  &sink);
  std::vector<uint8_t> page(kPageSize);
  std::mt19937 rng(1);
  for (uint64_t key = 0; key < 5; ++key) {  // 3 fit, 2 refused for the limit
    for (uint8_t& b : page) b = static_cast<uint8_t>(rng());
    store.Put("vm-a", key, page, true).IgnoreError();
  }
  std::vector<uint8_t> zero(kPageSize, 0);
  ASSERT_TRUE(store.Put("vm-b", 1, zero, true).ok());
  EXPECT_FALSE(
      store.Put("vm-b", 2, absl::MakeSpan(zero).subspan(1), true).ok());

  StoreCollector collector(&store);
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

  const std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_NE(text.find("zpaged_stored_pages{tenant=\"vm-a\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE zpaged_density gauge"), std::string::npos);
}

}  // namespace
}  // namespace zpaged
