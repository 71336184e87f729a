// Reclaimer: the store's one reclaim engine. It decides whose pages leave
// when memory must be found, evicts them to the sink, and keeps a headroom
// free in the background so that Puts near the limit seldom wait.
//
//   PageStore ── Reclaimer ─┬─ MakeRoom (a waiting Put): one frame, from
//                           │    the tenant itself at its own limit, else
//                           │    from the tenants furthest above their
//                           │    fair share (fair_share.h), else itself
//                           ├─ Reclaim (the Reclaim RPC), Drain (shutdown)
//                           ├─ headroom thread: below --reclaim_headroom
//                           │    free, evicts by the same rule
//                           └─ ReclaimJob: chains of frame evictions over
//                                one ReclaimSource ── EvictionSink
//
// Who is evicted. A tenant's share is the server's memory divided among
// the tenants that hold pages. At the server limit room is made from the
// tenants above their share, furthest above first; a tenant at or below its
// share gives room only to its own Puts. A tenant with no ready watcher
// cannot give room (its pages would be lost) and is passed over; a Put is
// refused only when nobody who may be evicted could free a frame. The
// headroom thread keeps (limit - headroom) as its target, so that somebody
// is always above a share while free memory is below the headroom.
//
// Nothing waits on the network: a job takes frames off a pool's LRU, hands
// their pages to the sink and returns; outcomes arrive on other threads,
// and the frame's last one ends its reclaim (released, or back on the LRU).
// A job holds its source, so a tenant outlives the evictions of its pages.
// Only Drain and the headroom thread wait, on their own threads.
//
// Every delivery must have its outcome before the reclaimer is destroyed
// (the server detaches every watcher first). Thread-safe.

#ifndef ZPAGED_SERVER_STORE_RECLAIMER_H_
#define ZPAGED_SERVER_STORE_RECLAIMER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_sink.h"
#include "server/store/fair_share.h"
#include "server/store/reclaim_source.h"

namespace zpaged {

struct ReclaimResult {
  uint32_t reclaimed_pool_pages = 0;
  uint64_t evicted_pages = 0;
};

// Receives the outcome of a reclaim, once.
using ReclaimDone = absl::AnyInvocable<void(ReclaimResult) &&>;

struct ReclaimerOptions {
  // Free memory under the server's limit the background reclaimer keeps;
  // 0 turns it off (Puts at the limit then make their own room).
  uint64_t headroom_bytes = 0;
  // How often the background reclaimer looks again when it could free
  // nothing (no watcher acked, nobody above a share).
  absl::Duration headroom_retry = absl::Milliseconds(100);
};

class Reclaimer {
 public:
  // Every tenant, for choosing whom to evict.
  using SourceList =
      std::function<std::vector<std::shared_ptr<ReclaimSource>>()>;

  // `sink` and `budget` (the server's limit) must outlive the reclaimer.
  // Starts the headroom thread when the options ask for a headroom and the
  // budget has a limit.
  Reclaimer(EvictionSink* sink, const MemoryBudget* budget, SourceList sources,
            const ReclaimerOptions& options);
  // Stop()s.
  ~Reclaimer();

  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Tries to release up to `frames` frames of `source` by evicting their
  // pages to the sink, each frame with up to kTriesPerFrame frames along
  // its LRU, and stops at the first that cannot be released. `done` gets
  // what was released and acked once every page handed over has its
  // outcome: maybe before Reclaim returns, else on the thread of the last
  // outcome.
  void Reclaim(std::shared_ptr<ReclaimSource> source, uint32_t frames,
               EvictionReason reason, ReclaimDone done);

  // Room for one page of `requester`: one frame released from the tenant
  // itself when it is at its own limit (`at_own_limit`), else, from the
  // first tenant in fair-share order whose frames could be released, as
  // many as the server is short of (up to kMaxRoomFrames).
  // `done` gets the frame released, or nothing released when nobody could.
  void MakeRoom(std::shared_ptr<ReclaimSource> requester, bool at_own_limit,
                ReclaimDone done);

  // True if MakeRoom for `requester` has anybody to evict: the tenant
  // itself, or (not at its own limit) a tenant above its share, with a
  // ready watcher.
  bool CanMakeRoom(const ReclaimSource& requester, bool at_own_limit);

  // True if a tenant not created yet could be given room at the limit: a
  // tenant is above its share counting the newcomer, with a ready watcher.
  bool CanMakeRoomForNewcomer() {
    return !Victims(budget_->limit_bytes(), nullptr, /*newcomer=*/true).empty();
  }

  // Evicts every page of `source` and waits for the outcomes: the pool by
  // reclaim until it is empty or stops shrinking, then the same-filled
  // pages. Starts nothing after `deadline` and waits no longer than it; a
  // delivery still out then resolves later, as any does. Returns how many
  // pages were acked.
  uint64_t Drain(const std::shared_ptr<ReclaimSource>& source,
                 absl::Time deadline);

  // Memory was charged: wakes the headroom thread if free memory fell
  // below the headroom. Cheap enough for every Put.
  void NoteCharged() {
    if (sleeping_.load(std::memory_order_relaxed) && BelowHeadroom()) Wake();
  }

  // Stops the headroom thread and waits for it. Idempotent.
  void Stop();

  static constexpr uint32_t kTriesPerFrame = 8;
  // Frames one job has under eviction at once.
  static constexpr uint32_t kFramesInFlight = 16;
  // Frames one MakeRoom asks of one tenant at most.
  static constexpr uint32_t kMaxRoomFrames = 64;

 private:
  // The tenants that may give room towards `target_bytes` with a ready
  // watcher, in fair-share order. `requester` (may be null), and with
  // `newcomer` one more tenant, count as holding pages: they are about to.
  std::vector<std::shared_ptr<ReclaimSource>> Victims(
      uint64_t target_bytes, const ReclaimSource* requester,
      bool newcomer = false);
  // Reclaims up to `frames` frames from victims[next], then the next, until
  // a frame is released or none is left.
  void TryVictims(
      std::shared_ptr<std::vector<std::shared_ptr<ReclaimSource>>> victims,
      size_t next, uint32_t frames, EvictionReason reason, ReclaimDone done);
  // Reclaim, waiting for the result until `deadline`; nullopt past it.
  std::optional<ReclaimResult> ReclaimAndWait(
      std::shared_ptr<ReclaimSource> source, uint32_t frames,
      EvictionReason reason, absl::Time deadline);
  // Hands every same-filled page to the sink and waits for the outcomes,
  // until `deadline`; returns how many were acked.
  uint64_t DrainSameFilled(const std::shared_ptr<ReclaimSource>& source,
                           absl::Time deadline);

  bool BelowHeadroom() const {
    const uint64_t used = budget_->used_bytes();
    return used + headroom_bytes_ > budget_->limit_bytes();
  }
  void Wake();
  void HeadroomLoop();
  // One round of the headroom thread; false if it freed nothing.
  bool RestoreHeadroom();

  EvictionSink* const sink_;
  const MemoryBudget* const budget_;
  const SourceList sources_;
  const uint64_t headroom_bytes_;
  const absl::Duration headroom_retry_;

  std::atomic<bool> sleeping_{false};
  Mutex mu_;
  CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread headroom_thread_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_RECLAIMER_H_
