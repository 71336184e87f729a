// EvictionReason: why pages were evicted, for counting each acked eviction
// under one reason (PageStats, zpaged_evictions_total).

#ifndef ZPAGED_SERVER_STORE_EVICTION_REASON_H_
#define ZPAGED_SERVER_STORE_EVICTION_REASON_H_

#include <array>

namespace zpaged {

// Why pages were evicted; each acked eviction is counted under one.
enum class EvictionReason {
  kTenantLimit,  // a Put found its own tenant at --tenant_max_bytes
  kServerLimit,  // a Put found the server at --max_memory_bytes
  kHeadroom,     // the background reclaimer keeping --reclaim_headroom free
  kDrain,        // a drain on shutdown
  kReclaimRpc,   // a client's Reclaim call
};
inline constexpr int kEvictionReasons = 5;
inline constexpr std::array<const char*, kEvictionReasons>
    kEvictionReasonNames = {"tenant_limit", "server_limit", "headroom", "drain",
                            "reclaim_rpc"};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_EVICTION_REASON_H_
