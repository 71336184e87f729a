// The kernel's synchronous reclaim loop (zbud_reclaim_page) over
// Zpool::StartReclaim/EndReclaim, for tests and benchmarks of the pool
// drivers that write back on the spot. The server never uses it: the
// store's one reclaim loop is its Reclaimer (server/store/reclaimer.h),
// which evicts over the network without waiting.

#ifndef ZPAGED_SERVER_CORE_TESTING_ZPOOL_SHRINK_H_
#define ZPAGED_SERVER_CORE_TESTING_ZPOOL_SHRINK_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "server/core/zpool.h"

namespace zpaged {

// Writes one allocation back for Shrink: to let its frame go, it must store
// the data somewhere safe, Free(handle) and return OK; any other status
// refuses, and the allocation stays stored. It is called with no pool lock
// held, and may be offered a handle freed meanwhile (Map and Free answer
// NOT_FOUND; it should decline).
using EvictFunction = absl::FunctionRef<absl::Status(ZpoolHandle)>;

// The kernel's zbud_reclaim_page on top of StartReclaim/EndReclaim: takes
// frames from the LRU tail, `evict`s their allocations in order and stops
// at a frame's first refusal, until one frame is released or `retries`
// frames were tried. OK once one is released; NOT_FOUND when no frame is on
// the LRU; ABORTED when every try was refused; INVALID_ARGUMENT for
// retries 0.
absl::Status ReclaimOneFrame(Zpool& pool, uint32_t retries,
                             EvictFunction evict);

// ReclaimOneFrame until `frames` are released or one fails; returns how many
// were released.
uint32_t Shrink(Zpool& pool, uint32_t frames, EvictFunction evict,
                uint32_t retries = 8);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_TESTING_ZPOOL_SHRINK_H_
