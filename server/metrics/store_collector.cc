#include "server/metrics/store_collector.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace zpaged {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

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

// The family named `name` in `families`, made from `field` if new.
MetricFamily& FamilyFor(std::vector<MetricFamily>& families,
                        const PageStatField& field) {
  for (MetricFamily& family : families) {
    if (family.name == field.metric) return family;
  }
  return families.emplace_back(Family(field.metric, field.help,
                                      field.kind == StatKind::kCounter
                                          ? MetricType::Counter
                                          : MetricType::Gauge));
}

}  // namespace

std::vector<MetricFamily> StoreCollector::Collect() const {
  const auto by_tenant = store_->StatsByTenant();
  // Per tenant, or one row of sums whose name is left out of the labels.
  std::vector<std::pair<std::string, PageStats>> tenants;
  if (per_tenant_) {
    tenants = by_tenant;
  } else {
    PageStats total;
    for (const auto& [name, stats] : by_tenant) total += stats;
    tenants.emplace_back("", total);
  }
  auto tenant_label = [this](const std::string& tenant) {
    return per_tenant_ ? std::vector<ClientMetric::Label>{{"tenant", tenant}}
                       : std::vector<ClientMetric::Label>{};
  };
  std::vector<MetricFamily> families;
  for (const PageStatField& field : kPageStatFields) {
    if (field.metric == nullptr) continue;
    MetricFamily& family = FamilyFor(families, field);
    const MetricType type = family.type;
    for (const auto& [tenant, stats] : tenants) {
      std::vector<ClientMetric::Label> labels = tenant_label(tenant);
      if (field.label_name != nullptr) {
        labels.push_back({field.label_name, field.label_value});
      }
      family.metric.push_back(Sample(std::move(labels), type,
                                     static_cast<double>(stats.*field.member)));
    }
  }
  MetricFamily density = Family(
      "zpaged_density",
      "Pages held in the pool (LZ4 + RAW) per pool frame, as in the Stats RPC",
      MetricType::Gauge);
  for (const auto& [tenant, stats] : tenants) {
    density.metric.push_back(
        Sample(tenant_label(tenant), MetricType::Gauge, stats.density()));
  }
  families.push_back(std::move(density));

  MetricFamily watchers =
      Family("zpaged_watchers", "Eviction streams subscribed to the tenant",
             MetricType::Gauge);
  MetricFamily stalled = Family(
      "zpaged_stalled_watchers",
      "Eviction streams that missed an ack deadline and get no pages until "
      "they ack again",
      MetricType::Gauge);
  MetricFamily in_flight =
      Family("zpaged_evictions_in_flight",
             "Evicted pages sent to watchers and awaiting their ack within "
             "the deadline",
             MetricType::Gauge);
  std::vector<std::pair<std::string, WatcherCounts>> counts =
      broker_->CountsByTenant();
  // A tenant that holds pages and has no watcher shows zeros, not nothing:
  // that is the case an alert is for.
  absl::flat_hash_set<std::string> watched;
  for (const auto& [name, c] : counts) watched.insert(name);
  for (const auto& [name, stats] : by_tenant) {
    if (!watched.contains(name)) counts.emplace_back(name, WatcherCounts{});
  }
  if (!per_tenant_) {
    WatcherCounts total;
    for (const auto& [name, c] : counts) {
      total.watchers += c.watchers;
      total.stalled += c.stalled;
      total.in_flight += c.in_flight;
    }
    counts = {{"", total}};
  }
  for (const auto& [tenant, c] : counts) {
    watchers.metric.push_back(Sample(tenant_label(tenant), MetricType::Gauge,
                                     static_cast<double>(c.watchers)));
    stalled.metric.push_back(Sample(tenant_label(tenant), MetricType::Gauge,
                                    static_cast<double>(c.stalled)));
    in_flight.metric.push_back(Sample(tenant_label(tenant), MetricType::Gauge,
                                      static_cast<double>(c.in_flight)));
  }
  families.push_back(std::move(watchers));
  families.push_back(std::move(stalled));
  families.push_back(std::move(in_flight));

  families.push_back(Single(
      "zpaged_rejected_tenants_total",
      "Puts refused because they would create a tenant past --max_tenants "
      "or --max_memory_bytes, with no empty tenant to retire",
      MetricType::Counter, double(store_->rejected_new_tenants())));
  families.push_back(Single("zpaged_retired_tenants_total",
                            "Empty tenants retired to make room for new ones",
                            MetricType::Counter,
                            double(store_->retired_tenants())));
  families.push_back(Single("zpaged_tenants", "Tenants with a pool",
                            MetricType::Gauge, double(by_tenant.size())));
  families.push_back(Single("zpaged_memory_limit_bytes",
                            "Memory all tenants together may hold: pools, "
                            "index entries, tenants (--max_memory_bytes)",
                            MetricType::Gauge,
                            double(store_->options().max_memory_bytes)));
  families.push_back(
      Single("zpaged_tenant_limit_bytes",
             "Pool memory one tenant may hold (--tenant_max_bytes)",
             MetricType::Gauge, double(store_->options().tenant_max_bytes)));
  return families;
}

}  // namespace zpaged
