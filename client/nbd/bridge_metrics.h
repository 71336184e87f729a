// BridgeMetrics: the NBD bridge's own Prometheus endpoint (metrics=ADDR),
// what an operator of a VM host watches: where the blocks are, how the
// tier behind the bridge is doing (servers not answering, under-replicated
// writes, fail-overs, repair), the spill file's size, and requests failed
// back to the guest (EIO).
//
// Gauges and counters in one registry, brought up to date by Refresh,
// which the plugin calls every few seconds from a thread of its own.

#ifndef ZPAGED_CLIENT_NBD_BRIDGE_METRICS_H_
#define ZPAGED_CLIENT_NBD_BRIDGE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/nbd/block_store.h"
#include "client/nbd/spill_file.h"
#include "client/tier/tier_client.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace zpaged::nbd {

// What the repair has done since the bridge started.
struct RepairProgress {
  std::atomic<uint64_t> sweeps{0};
  std::atomic<uint64_t> checked{0};
  std::atomic<uint64_t> copied{0};
  std::atomic<uint64_t> lost{0};
  std::atomic<bool> running{false};
  // Blocks in zpaged that may have fewer copies than asked for: those a
  // due repair has not checked yet (all of them when the servers that
  // answer change), and those the last sweep left short of copies.
  std::atomic<uint64_t> unchecked{0};
  std::atomic<uint64_t> short_of_copies{0};
};

class BridgeMetrics {
 public:
  // Serves /metrics on `address` (HOST:PORT); UNAVAILABLE if it cannot.
  static absl::StatusOr<std::unique_ptr<BridgeMetrics>> Serve(
      const std::string& address);

  // Reads the store's census, the tier's counters (`tier` may be null: one
  // server), the repair's progress and the requests failed so far.
  void Refresh(BlockStore& store, const SpillFile& spill,
               const TierClient* tier, const RepairProgress& repair,
               uint64_t failed_requests);

 private:
  explicit BridgeMetrics(std::unique_ptr<prometheus::Exposer> exposer);

  // Sets a counter that mirrors a running total kept elsewhere.
  static void Mirror(prometheus::Counter& counter, uint64_t total);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* blocks_in_zpaged_;
  prometheus::Gauge* blocks_spilled_;
  prometheus::Gauge* blocks_same_filled_;
  prometheus::Gauge* spill_bytes_;
  prometheus::Gauge* servers_;
  prometheus::Gauge* servers_unreachable_;
  prometheus::Gauge* repair_running_;
  prometheus::Gauge* under_replicated_blocks_;
  prometheus::Counter* under_replicated_writes_;
  prometheus::Counter* read_failovers_;
  prometheus::Counter* write_failovers_;
  prometheus::Counter* failed_deletes_;
  prometheus::Counter* spare_copies_evicted_;
  prometheus::Counter* repair_sweeps_;
  prometheus::Counter* repair_checked_;
  prometheus::Counter* repair_copied_;
  prometheus::Counter* repair_lost_;
  prometheus::Counter* failed_requests_;
};

}  // namespace zpaged::nbd

#endif  // ZPAGED_CLIENT_NBD_BRIDGE_METRICS_H_
