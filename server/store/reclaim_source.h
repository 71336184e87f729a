// ReclaimSource: what the store's Reclaimer needs of one tenant, and no
// more: its pool's reclaim steps, a way to hand one indexed copy of a page
// to the eviction sink, and the settling of that copy's outcome. Tenant is
// the one the server uses; the reclaimer's tests use fakes.
//
//   Reclaimer ──StartReclaim/EndReclaim──> ReclaimSource (a tenant)
//       │     ──OfferPooled(handle, hand_over)──>  reads the copy under its
//       │                                          index lock, calls hand_over
//       └──── Settle(copy, outcome, reason) ────>  drops an acked copy if it
//                                                  is still the indexed one

#ifndef ZPAGED_SERVER_STORE_RECLAIM_SOURCE_H_
#define ZPAGED_SERVER_STORE_RECLAIM_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/core/zpool.h"
#include "server/evict/eviction_sink.h"
#include "server/store/eviction_reason.h"

namespace zpaged {

// One copy of a page as a tenant's index holds it: in the pool (`value` is
// its handle) or same-filled (`value` is its word). A later Put or Delete of
// the key makes it a copy the index no longer holds.
struct PageCopy {
  uint64_t key = 0;
  uint64_t value = 0;
  bool same_filled = false;
};

// What became of a copy offered for eviction.
enum class OfferOutcome {
  kHandedOver,  // the sink took it; Settle will follow
  kStale,       // not the indexed copy any more (replaced, deleted)
  kRefused,     // the sink would not take it
};

class ReclaimSource {
 public:
  virtual ~ReclaimSource() = default;

  // Its name, as the sink knows the tenant.
  virtual const std::string& name() const = 0;

  // Bytes it holds against the server's memory limit.
  virtual uint64_t UsedBytes() const = 0;

  // True if it holds at least one page.
  virtual bool HoldsPages() const = 0;

  // Frames of its pool. For a drain, which reclaims them all.
  virtual uint64_t PoolFrames() const = 0;

  // The pool's reclaim steps (Zpool::StartReclaim, Zpool::EndReclaim);
  // EndReclaim counts a released frame.
  virtual absl::StatusOr<FrameReclaim> StartReclaim() = 0;
  virtual bool EndReclaim(const FrameReclaim& reclaim) = 0;

  // Hands the copy in pool allocation `handle` (listed by StartReclaim) to
  // `hand_over`, which returns whether the sink took it. The source holds
  // its index lock shared across the call, so the copy cannot be replaced
  // between being read and being handed over: the sink sees the copies of
  // a key in the order they were stored. Counts stale and refused copies.
  using HandOver = absl::FunctionRef<bool(const PageCopy&, PageBytes)>;
  virtual OfferOutcome OfferPooled(ZpoolHandle handle, HandOver hand_over) = 0;

  // The same for same-filled pages, which take no pool memory so that
  // reclaim never finds them: every one indexed now, then each by its copy.
  virtual std::vector<PageCopy> SameFilledCopies() const = 0;
  virtual OfferOutcome OfferSameFilled(const PageCopy& copy,
                                       HandOver hand_over) = 0;

  // The outcome of a copy that was handed over: counted (an ack under
  // `reason`); an acked copy is dropped from the index and freed if the
  // index still holds it.
  virtual void Settle(const PageCopy& copy, DeliveryOutcome outcome,
                      EvictionReason reason) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_RECLAIM_SOURCE_H_
