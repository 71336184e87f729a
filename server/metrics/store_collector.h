// StoreCollector: the per-tenant metrics, read from the store at scrape time,
// so they agree exactly with what the Stats RPC says at that moment.

#ifndef ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_
#define ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/store/page_store.h"

namespace zpaged {

class StoreCollector final : public prometheus::Collectable {
 public:
  // `store` must outlive the collector.
  explicit StoreCollector(const PageStore* store) : store_(store) {}

  // zpaged_stored_pages, _pool_pages, _density, _same_filled_pages,
  // _raw_pages, _compressed_bytes, _arena_mapped_bytes (gauges, by tenant);
  // _evicted_pages_total, _reclaimed_pool_pages_total (counters, by tenant);
  // _rejected_puts_total (by tenant and reason); _tenants and
  // _memory_limit_bytes (gauges).
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const PageStore* const store_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_METRICS_STORE_COLLECTOR_H_
