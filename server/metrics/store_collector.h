// StoreCollector: the per-tenant metrics, read from the store and the
// eviction broker at scrape time, so they agree exactly with what the Stats
// RPC says at that moment. The store's series are kPageStatFields' rows
// (server/store/page_stats.h).

#ifndef ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_
#define ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/evict/eviction_broker.h"
#include "server/store/page_store.h"

namespace zpaged {

class StoreCollector final : public prometheus::Collectable {
 public:
  // Both must outlive the collector. Without `per_tenant` every series is
  // the sum over tenants, with no tenant label.
  StoreCollector(const PageStore* store, EvictionBroker* broker,
                 bool per_tenant = true)
      : store_(store), broker_(broker), per_tenant_(per_tenant) {}

  // Every row of kPageStatFields with a metric, by tenant; zpaged_density
  // (by tenant); zpaged_watchers, _stalled_watchers, _evictions_in_flight
  // (by tenant with a watcher); _rejected_tenants_total, _tenants,
  // _memory_limit_bytes, _tenant_limit_bytes.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const PageStore* const store_;
  EvictionBroker* const broker_;
  const bool per_tenant_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_
