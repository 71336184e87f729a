// PageStats: the counters of one tenant, or their sum over tenants; and
// kPageStatFields, the one table that says how each counter is shown: as a
// Prometheus series (metrics/store_collector.cc) and as a StatsResponse field
// (rpc/stats_response.cc). A new counter is one member and one row.

#ifndef ZPAGED_SERVER_STORE_PAGE_STATS_H_
#define ZPAGED_SERVER_STORE_PAGE_STATS_H_

#include <cstdint>

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
  uint64_t tenants = 0;

  uint64_t rejected_puts() const {
    return rejected_puts_limit + rejected_puts_invalid;
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
    "Puts refused, by reason: limit (no room could be made), invalid (bad "
    "page)";

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
    // Per tenant it is always 1; zpaged_tenants counts them instead.
    {&PageStats::tenants, StatKind::kGauge, nullptr, nullptr, nullptr, nullptr,
     "tenants"},
};

// Every member has its row, so sums, metrics and responses miss none.
static_assert(sizeof(PageStats) == sizeof(kPageStatFields) /
                                       sizeof(PageStatField) *
                                       sizeof(uint64_t));

inline PageStats& PageStats::operator+=(const PageStats& other) {
  for (const PageStatField& field : kPageStatFields) {
    this->*field.member += other.*field.member;
  }
  return *this;
}

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PAGE_STATS_H_
