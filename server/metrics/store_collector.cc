#include "server/metrics/store_collector.h"

#include <string>
#include <utility>

namespace zpaged {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct TenantSeries {
  const char* name;
  const char* help;
  MetricType type;
  double (*value)(const PageStats&);
};

const TenantSeries kTenantSeries[] = {
    {"zpaged_stored_pages", "Pages stored, every encoding", MetricType::Gauge,
     [](const PageStats& s) { return double(s.stored_pages); }},
    {"zpaged_pool_pages", "4 KiB frames held by the tenant's zbud pool",
     MetricType::Gauge,
     [](const PageStats& s) { return double(s.pool_pages); }},
    {"zpaged_density",
     "Pages held in the pool (LZ4 + RAW) per pool frame, as in the Stats RPC",
     MetricType::Gauge, [](const PageStats& s) { return s.density(); }},
    {"zpaged_same_filled_pages", "Pages kept as one repeated word",
     MetricType::Gauge,
     [](const PageStats& s) { return double(s.same_filled_pages); }},
    {"zpaged_raw_pages", "Incompressible pages kept whole", MetricType::Gauge,
     [](const PageStats& s) { return double(s.raw_pages); }},
    {"zpaged_compressed_bytes", "Bytes of compressed data in the pool",
     MetricType::Gauge,
     [](const PageStats& s) { return double(s.compressed_bytes); }},
    {"zpaged_arena_mapped_bytes", "Address space the tenant's arenas hold",
     MetricType::Gauge,
     [](const PageStats& s) { return double(s.arena_mapped_bytes); }},
    {"zpaged_evicted_pages_total", "Pages handed to watchers and acked",
     MetricType::Counter,
     [](const PageStats& s) { return double(s.evicted_pages); }},
    {"zpaged_reclaimed_pool_pages_total", "Frames released by reclaim",
     MetricType::Counter,
     [](const PageStats& s) { return double(s.reclaimed_pool_pages); }},
};

ClientMetric Sample(std::vector<ClientMetric::Label> labels, MetricType type,
                    double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

// A family of one unlabelled series.
MetricFamily Single(const char* name, const char* help, MetricType type,
                    double value) {
  MetricFamily family = Family(name, help, type);
  family.metric.push_back(Sample({}, type, value));
  return family;
}

}  // namespace

std::vector<MetricFamily> StoreCollector::Collect() const {
  const auto tenants = store_->StatsByTenant();
  std::vector<MetricFamily> families;
  for (const TenantSeries& series : kTenantSeries) {
    MetricFamily family = Family(series.name, series.help, series.type);
    for (const auto& [tenant, stats] : tenants) {
      family.metric.push_back(
          Sample({{"tenant", tenant}}, series.type, series.value(stats)));
    }
    families.push_back(std::move(family));
  }

  MetricFamily rejected =
      Family("zpaged_rejected_puts_total",
             "Puts refused, by reason: limit (no room could be made), invalid "
             "(bad page)",
             MetricType::Counter);
  for (const auto& [tenant, stats] : tenants) {
    rejected.metric.push_back(Sample({{"tenant", tenant}, {"reason", "limit"}},
                                     MetricType::Counter,
                                     double(stats.rejected_puts_limit)));
    rejected.metric.push_back(
        Sample({{"tenant", tenant}, {"reason", "invalid"}}, MetricType::Counter,
               double(stats.rejected_puts_invalid)));
  }
  families.push_back(std::move(rejected));

  families.push_back(Single(
      "zpaged_rejected_tenants_total",
      "Puts refused because they would create a tenant past --max_tenants",
      MetricType::Counter, double(store_->rejected_new_tenants())));
  families.push_back(Single("zpaged_tenants", "Tenants with a pool",
                            MetricType::Gauge, double(tenants.size())));
  families.push_back(Single("zpaged_memory_limit_bytes",
                            "Pool memory all tenants together may hold "
                            "(--max_memory_bytes)",
                            MetricType::Gauge,
                            double(store_->options().max_memory_bytes)));
  families.push_back(
      Single("zpaged_tenant_limit_bytes",
             "Pool memory one tenant may hold (--tenant_max_bytes)",
             MetricType::Gauge, double(store_->options().tenant_max_bytes)));
  return families;
}

}  // namespace zpaged
