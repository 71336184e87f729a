#include "client/nbd/bridge_metrics.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace zpaged::nbd {
namespace {

prometheus::Gauge* NewGauge(prometheus::Registry& registry, const char* name,
                            const char* help,
                            const prometheus::Labels& labels = {}) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      labels);
}

prometheus::Counter* NewCounter(prometheus::Registry& registry,
                                const char* name, const char* help,
                                const prometheus::Labels& labels = {}) {
  return &prometheus::BuildCounter()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add(labels);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BridgeMetrics>> BridgeMetrics::Serve(
    const std::string& address) {
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    // prometheus-cpp reports an address it cannot bind by throwing.
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  return std::unique_ptr<BridgeMetrics>(new BridgeMetrics(std::move(exposer)));
}

BridgeMetrics::BridgeMetrics(std::unique_ptr<prometheus::Exposer> exposer)
    : exposer_(std::move(exposer)),
      registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  auto& blocks = prometheus::BuildGauge()
                     .Name("zpaged_bridge_blocks")
                     .Help("Blocks of the device by where they are")
                     .Register(r);
  blocks_in_zpaged_ = &blocks.Add({{"where", "zpaged"}});
  blocks_spilled_ = &blocks.Add({{"where", "spilled"}});
  blocks_same_filled_ = &blocks.Add({{"where", "same_filled"}});
  spill_bytes_ = NewGauge(r, "zpaged_bridge_spill_file_bytes",
                          "Disk the spill file takes (allocated bytes)");
  servers_ = NewGauge(r, "zpaged_bridge_servers", "zpaged servers behind it");
  servers_unreachable_ =
      NewGauge(r, "zpaged_bridge_servers_unreachable",
               "Servers that did not answer their last call and have not "
               "answered a probe since");
  repair_running_ = NewGauge(r, "zpaged_bridge_repair_running",
                             "1 while a repair sweep runs");
  under_replicated_blocks_ = NewGauge(
      r, "zpaged_bridge_under_replicated_blocks",
      "Blocks in zpaged that may have fewer copies than replicas=: those a "
      "due repair has not checked yet, and those the last sweep could not "
      "bring back");
  under_replicated_writes_ =
      NewCounter(r, "zpaged_bridge_under_replicated_writes_total",
                 "Blocks written with fewer copies than replicas= (kept in "
                 "the spill file instead)");
  auto& failovers = prometheus::BuildCounter()
                        .Name("zpaged_bridge_failovers_total")
                        .Help(
                            "Calls passed on to the next server because "
                            "one failed")
                        .Register(r);
  read_failovers_ = &failovers.Add({{"op", "read"}});
  write_failovers_ = &failovers.Add({{"op", "write"}});
  failed_deletes_ = NewCounter(r, "zpaged_bridge_failed_deletes_total",
                               "Copies a server could not delete");
  spare_copies_evicted_ =
      NewCounter(r, "zpaged_bridge_spare_copies_evicted_total",
                 "Copies a server evicted while another server held the "
                 "block: acked, and made again by the next repair");
  repair_sweeps_ = NewCounter(r, "zpaged_bridge_repair_sweeps_total",
                              "Repair sweeps of the whole device finished");
  repair_checked_ = NewCounter(r, "zpaged_bridge_repair_checked_total",
                               "Blocks in zpaged a repair checked");
  repair_copied_ = NewCounter(r, "zpaged_bridge_repair_copied_total",
                              "Copies a repair made again");
  repair_lost_ = NewCounter(r, "zpaged_bridge_repair_lost_total",
                            "Blocks a repair found no server holding");
  failed_requests_ =
      NewCounter(r, "zpaged_bridge_failed_requests_total",
                 "NBD requests failed back to the client (EIO, ENOSPC)");
  exposer_->RegisterCollectable(registry_);
}

void BridgeMetrics::Mirror(prometheus::Counter& counter, uint64_t total) {
  const double value = static_cast<double>(total);
  if (value > counter.Value()) counter.Increment(value - counter.Value());
}

void BridgeMetrics::Refresh(BlockStore& store, const SpillFile& spill,
                            const TierClient* tier,
                            const RepairProgress& repair,
                            uint64_t failed_requests) {
  const BlockCensus census = store.Census();
  blocks_in_zpaged_->Set(static_cast<double>(census.in_zpaged));
  blocks_spilled_->Set(static_cast<double>(census.spilled));
  blocks_same_filled_->Set(static_cast<double>(census.same_filled));
  spill_bytes_->Set(static_cast<double>(spill.AllocatedBytes()));
  repair_running_->Set(repair.running ? 1 : 0);
  under_replicated_blocks_->Set(
      static_cast<double>(repair.unchecked + repair.short_of_copies));
  Mirror(*repair_sweeps_, repair.sweeps);
  Mirror(*repair_checked_, repair.checked);
  Mirror(*repair_copied_, repair.copied);
  Mirror(*repair_lost_, repair.lost);
  Mirror(*failed_requests_, failed_requests);
  if (tier == nullptr) {
    servers_->Set(1);
    return;
  }
  servers_->Set(static_cast<double>(tier->member_names().size()));
  int unreachable = 0;
  for (const std::string& name : tier->member_names()) {
    unreachable += tier->suspect(name);
  }
  servers_unreachable_->Set(unreachable);
  const TierClient::Counters counters = tier->counters();
  Mirror(*under_replicated_writes_, counters.under_replicated_writes);
  Mirror(*read_failovers_, counters.read_failovers);
  Mirror(*write_failovers_, counters.write_failovers);
  Mirror(*failed_deletes_, counters.failed_deletes);
  Mirror(*spare_copies_evicted_, counters.spare_copies_evicted);
}

}  // namespace zpaged::nbd
