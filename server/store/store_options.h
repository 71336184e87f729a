// StoreOptions: the store's limits and choices, after leveldb's options.h:
// every field documented, with its default, in this one place.

#ifndef ZPAGED_SERVER_STORE_STORE_OPTIONS_H_
#define ZPAGED_SERVER_STORE_STORE_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "server/codec/page_codec.h"
#include "server/core/memory_budget.h"
#include "server/core/zpool.h"

namespace zpaged {

struct StoreOptions {
  // One tenant's pool: its own ceiling, whatever its share.
  uint64_t tenant_max_bytes = MemoryBudget::kUnlimited;
  // Everything the tenants hold: pools, index entries (Tenant::
  // kIndexEntryBytes a page) and each tenant's fixed cost (kTenantBytes).
  uint64_t max_memory_bytes = MemoryBudget::kUnlimited;
  // Free memory under max_memory_bytes that the reclaimer keeps in the
  // background by evicting from tenants above their share (reclaimer.h);
  // 0: none, Puts at the limit make their own room.
  uint64_t reclaim_headroom_bytes = 0;
  size_t max_tenants = 1024;
  // How pages are compressed; each page records its own encoding.
  CodecOptions codec = {};
  // The pool driver of every tenant: one of kZpoolDrivers (zpool.h).
  std::string pool_driver = std::string(kZpoolDrivers[0]);
  // Told how long each Put that had to wait for room waited, once it is
  // stored (for a histogram); may be empty.
  std::function<void(absl::Duration)> on_room_wait;
};

// The headroom --reclaim_headroom gives by default: this part of the
// server's limit (zswap's shrink worker keeps a similar margin).
inline constexpr double kDefaultReclaimHeadroom = 0.02;

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_STORE_OPTIONS_H_
