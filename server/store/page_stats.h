// PageStats: the counters of one tenant, or their sum over tenants; and
// kPageStatFields, the one table that says how each counter is shown: as a
// Prometheus series (metrics/store_collector.cc) and as a StatsResponse field
// (rpc/stats_response.cc). A new counter is one member and one row.

#ifndef ZPAGED_SERVER_STORE_PAGE_STATS_H_
#define ZPAGED_SERVER_STORE_PAGE_STATS_H_

#include <cstdint>

#include "server/store/eviction_reason.h"

namespace zpaged {

struct PageStats {
  uint64_t stored_pages = 0;  // every encoding
  uint64_t pool_pages = 0;    // frames held by the pool(s)
  uint64_t same_filled_pages = 0;
  uint64_t lz4_pages = 0;
  uint64_t zstd_pages = 0;
  uint64_t raw_pages = 0;
  uint64_t compressed_bytes = 0;  // LZ4 and zstd output held in the pool(s)
  uint64_t arena_mapped_bytes = 0;
  uint64_t evicted_pages = 0;            // delivered and acked, ever
  uint64_t deliveries_acked = 0;         // the same, as a delivery outcome
  uint64_t deliveries_timed_out = 0;     // no ack within the deadline
  uint64_t deliveries_disconnected = 0;  // the watcher left first
  uint64_t deliveries_refused = 0;     // no ready watcher, or the key was held
  uint64_t deliveries_stale = 0;       // replaced or deleted before handed over
  uint64_t reclaimed_pool_pages = 0;   // frames released by reclaim, ever
  uint64_t rejected_puts_limit = 0;    // refused: a memory limit
  uint64_t rejected_puts_invalid = 0;  // refused: bad request
  // Waited for room, then stored nothing: superseded by a later write of
  // the key, past the deadline, or cancelled.
  uint64_t rejected_puts_abandoned = 0;
  uint64_t room_waits = 0;  // Puts that had to wait for room, ever
  // Memory charged to the server's limit: pool frames, index entries and
  // the tenant's fixed cost; and the tenant's fair share of the limit.
  uint64_t used_bytes = 0;
  uint64_t share_bytes = 0;
  // Acked evictions by EvictionReason; they add up to evicted_pages.
  uint64_t evicted_tenant_limit = 0;
  uint64_t evicted_server_limit = 0;
  uint64_t evicted_headroom = 0;
  uint64_t evicted_drain = 0;
  uint64_t evicted_reclaim_rpc = 0;
  uint64_t tenants = 0;

  uint64_t rejected_puts() const {
    return rejected_puts_limit + rejected_puts_invalid +
           rejected_puts_abandoned;
  }
  // Pages in the pool per pool frame, whatever the driver: between 1 and 2
  // for zbud, 1 and kDenseMaxSlots for dense; 0 if empty.
  double density() const {
    return pool_pages == 0
               ? 0.0
               : static_cast<double>(lz4_pages + zstd_pages + raw_pages) /
                     static_cast<double>(pool_pages);
  }

  PageStats& operator+=(const PageStats& other);
};

enum class StatKind { kGauge, kCounter };

// How one PageStats counter is shown.
struct PageStatField {
  uint64_t PageStats::*member;
  StatKind kind;
  // The Prometheus family of its per-tenant series, or nullptr for none.
  // Rows may share a family, told apart by one more label.
  const char* metric;
  const char* label_name;  // nullptr, or that label: "outcome", "reason"
  const char* label_value;
  const char* help;  // the family's; rows of one family repeat it
  // The StatsResponse field it adds to, or nullptr for none.
  const char* response_field;
};

inline constexpr char kDeliveriesHelp[] =
    "Evicted pages handed to watchers or offered to them, by outcome: acked, "
    "timed_out (no ack within --ack_deadline), disconnected (the watcher "
    "left), refused (no ready watcher, or a copy of the key awaits its ack), "
    "stale (replaced or deleted before it was handed over)";
inline constexpr char kRejectedHelp[] =
    "Puts refused, by reason: limit (no room could be made: no tenant above "
    "its share, nor the tenant itself, could give a frame), invalid (bad "
    "page), abandoned (waited for room, then superseded by a later write of "
    "the key, past its deadline or cancelled: nothing stored)";
inline constexpr char kEvictionsHelp[] =
    "Evicted pages acked, by reason: tenant_limit (the tenant's own Put at "
    "--tenant_max_bytes), server_limit (a Put at --max_memory_bytes), "
    "headroom (keeping --reclaim_headroom free), drain (shutdown), "
    "reclaim_rpc (a Reclaim call)";

inline constexpr PageStatField kPageStatFields[] = {
    {&PageStats::stored_pages, StatKind::kGauge, "zpaged_stored_pages", nullptr,
     nullptr, "Pages stored, every encoding", "stored_pages"},
    {&PageStats::pool_pages, StatKind::kGauge, "zpaged_pool_pages", nullptr,
     nullptr, "4 KiB frames held by the tenant's zbud pool", "pool_pages"},
    {&PageStats::same_filled_pages, StatKind::kGauge,
     "zpaged_same_filled_pages", nullptr, nullptr,
     "Pages kept as one repeated word", "same_filled_pages"},
    {&PageStats::lz4_pages, StatKind::kGauge, "zpaged_lz4_pages", nullptr,
     nullptr, "Pages kept LZ4-compressed in the pool", nullptr},
    {&PageStats::zstd_pages, StatKind::kGauge, "zpaged_zstd_pages", nullptr,
     nullptr, "Pages kept zstd-compressed in the pool", nullptr},
    {&PageStats::raw_pages, StatKind::kGauge, "zpaged_raw_pages", nullptr,
     nullptr, "Incompressible pages kept whole", "raw_pages"},
    {&PageStats::compressed_bytes, StatKind::kGauge, "zpaged_compressed_bytes",
     nullptr, nullptr, "Bytes of compressed data in the pool",
     "compressed_bytes"},
    {&PageStats::arena_mapped_bytes, StatKind::kGauge,
     "zpaged_arena_mapped_bytes", nullptr, nullptr,
     "Address space the tenant's arenas hold", nullptr},
    {&PageStats::evicted_pages, StatKind::kCounter,
     "zpaged_evicted_pages_total", nullptr, nullptr,
     "Pages handed to watchers and acked", "evicted_pages"},
    {&PageStats::deliveries_acked, StatKind::kCounter,
     "zpaged_eviction_deliveries_total", "outcome", "acked", kDeliveriesHelp,
     nullptr},
    {&PageStats::deliveries_timed_out, StatKind::kCounter,
     "zpaged_eviction_deliveries_total", "outcome", "timed_out",
     kDeliveriesHelp, nullptr},
    {&PageStats::deliveries_disconnected, StatKind::kCounter,
     "zpaged_eviction_deliveries_total", "outcome", "disconnected",
     kDeliveriesHelp, nullptr},
    {&PageStats::deliveries_refused, StatKind::kCounter,
     "zpaged_eviction_deliveries_total", "outcome", "refused", kDeliveriesHelp,
     nullptr},
    {&PageStats::deliveries_stale, StatKind::kCounter,
     "zpaged_eviction_deliveries_total", "outcome", "stale", kDeliveriesHelp,
     nullptr},
    {&PageStats::reclaimed_pool_pages, StatKind::kCounter,
     "zpaged_reclaimed_pool_pages_total", nullptr, nullptr,
     "Frames released by reclaim", "reclaimed_pool_pages"},
    {&PageStats::rejected_puts_limit, StatKind::kCounter,
     "zpaged_rejected_puts_total", "reason", "limit", kRejectedHelp,
     "rejected_puts"},
    {&PageStats::rejected_puts_invalid, StatKind::kCounter,
     "zpaged_rejected_puts_total", "reason", "invalid", kRejectedHelp,
     "rejected_puts"},
    {&PageStats::rejected_puts_abandoned, StatKind::kCounter,
     "zpaged_rejected_puts_total", "reason", "abandoned", kRejectedHelp,
     "rejected_puts"},
    {&PageStats::room_waits, StatKind::kCounter, "zpaged_put_room_waits_total",
     nullptr, nullptr, "Puts that found no room and waited for evictions",
     nullptr},
    {&PageStats::used_bytes, StatKind::kGauge, "zpaged_tenant_used_bytes",
     nullptr, nullptr,
     "Memory the tenant is charged against --max_memory_bytes: pool frames, "
     "index entries, its fixed cost",
     nullptr},
    {&PageStats::share_bytes, StatKind::kGauge, "zpaged_tenant_share_bytes",
     nullptr, nullptr,
     "The tenant's fair share of --max_memory_bytes: the limit divided among "
     "the tenants that hold pages; above it, it is evicted for others",
     nullptr},
    {&PageStats::evicted_tenant_limit, StatKind::kCounter,
     "zpaged_evictions_total", "reason", "tenant_limit", kEvictionsHelp,
     nullptr},
    {&PageStats::evicted_server_limit, StatKind::kCounter,
     "zpaged_evictions_total", "reason", "server_limit", kEvictionsHelp,
     nullptr},
    {&PageStats::evicted_headroom, StatKind::kCounter, "zpaged_evictions_total",
     "reason", "headroom", kEvictionsHelp, nullptr},
    {&PageStats::evicted_drain, StatKind::kCounter, "zpaged_evictions_total",
     "reason", "drain", kEvictionsHelp, nullptr},
    {&PageStats::evicted_reclaim_rpc, StatKind::kCounter,
     "zpaged_evictions_total", "reason", "reclaim_rpc", kEvictionsHelp,
     nullptr},
    // Per tenant it is always 1; zpaged_tenants counts them instead.
    {&PageStats::tenants, StatKind::kGauge, nullptr, nullptr, nullptr, nullptr,
     "tenants"},
};

// Every member has its row, so sums, metrics and responses miss none.
static_assert(sizeof(PageStats) == sizeof(kPageStatFields) /
                                       sizeof(PageStatField) *
                                       sizeof(uint64_t));

// The counter of each EvictionReason, in its order.
inline constexpr uint64_t PageStats::*kEvictedByReason[kEvictionReasons] = {
    &PageStats::evicted_tenant_limit, &PageStats::evicted_server_limit,
    &PageStats::evicted_headroom, &PageStats::evicted_drain,
    &PageStats::evicted_reclaim_rpc};

inline PageStats& PageStats::operator+=(const PageStats& other) {
  for (const PageStatField& field : kPageStatFields) {
    this->*field.member += other.*field.member;
  }
  return *this;
}

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PAGE_STATS_H_
