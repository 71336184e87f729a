#include "server/store/reclaimer.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/time/clock.h"
#include "contract/page.h"
#include "server/core/notification.h"

namespace zpaged {
namespace {

// Same-filled pages a drain has out to watchers at once.
constexpr int kDrainInFlight = 64;

// Frames the headroom thread asks of one tenant in one round, at most.
constexpr uint32_t kHeadroomFramesPerRound = 64;

// One reclaim of one source: chains of frame evictions, each trying up to
// kTriesPerFrame frames along the LRU until one is released. It touches
// only its source and the sink, so that it may finish on any thread.
class ReclaimJob : public std::enable_shared_from_this<ReclaimJob> {
 public:
  ReclaimJob(EvictionSink* sink, std::shared_ptr<ReclaimSource> source,
             EvictionReason reason, uint32_t frames, ReclaimDone done)
      : sink_(sink),
        source_(std::move(source)),
        reason_(reason),
        to_start_(frames),
        done_(std::move(done)) {}

  // Starts chains while the job allows.
  void StartChains() {
    for (;;) {
      {
        MutexLock lock(&mu_);
        if (stop_ || to_start_ == 0 || running_ >= Reclaimer::kFramesInFlight) {
          return;
        }
        --to_start_;
        ++running_;
      }
      TryFrames(Reclaimer::kTriesPerFrame);
    }
  }

 private:
  // One frame under reclaim, shared by its pages' outcomes.
  struct Frame {
    FrameReclaim reclaim;
    uint32_t tries_left;
    // Pages still out, plus one while TryFrames is handing them over.
    std::atomic<int> outstanding{1};
  };

  // Takes frames off the LRU, up to `tries`, until one has pages out (its
  // last outcome goes on in FrameSettled) or the chain ends.
  void TryFrames(uint32_t tries) {
    for (; tries > 0; --tries) {
      absl::StatusOr<FrameReclaim> reclaim = source_->StartReclaim();
      if (!reclaim.ok()) break;  // nothing on the LRU
      auto frame = std::make_shared<Frame>();
      frame->reclaim = *std::move(reclaim);
      frame->tries_left = tries - 1;
      for (ZpoolHandle handle : frame->reclaim.handles) {
        // Counted before it is handed over: its outcome may come at once.
        frame->outstanding.fetch_add(1);
        const OfferOutcome offered = source_->OfferPooled(
            handle, [&](const PageCopy& copy, PageBytes page) {
              return Deliver(copy, page, frame);
            });
        if (offered != OfferOutcome::kHandedOver) {
          frame->outstanding.fetch_sub(1);
        }
      }
      // Outcomes may already have come on other threads; whoever settles
      // the last one ends the frame.
      if (frame->outstanding.fetch_sub(1) != 1) return;
      if (source_->EndReclaim(frame->reclaim)) {
        EndChain(/*released=*/true);
        return;
      }
    }
    EndChain(/*released=*/false);
  }

  bool Deliver(const PageCopy& copy, PageBytes page,
               const std::shared_ptr<Frame>& frame) {
    return sink_
        ->Deliver(
            source_->name(), copy.key, page,
            [self = shared_from_this(), frame, copy](DeliveryOutcome outcome) {
              self->PageSettled(frame, copy, outcome);
            })
        .ok();
  }

  void PageSettled(const std::shared_ptr<Frame>& frame, const PageCopy& copy,
                   DeliveryOutcome outcome) {
    source_->Settle(copy, outcome, reason_);
    if (outcome == DeliveryOutcome::kAcked) {
      MutexLock lock(&mu_);
      result_.evicted_pages++;
    }
    if (frame->outstanding.fetch_sub(1) != 1) return;
    if (source_->EndReclaim(frame->reclaim)) {
      EndChain(/*released=*/true);
    } else {
      TryFrames(frame->tries_left);
    }
    StartChains();
  }

  void EndChain(bool released) {
    ReclaimDone done;
    ReclaimResult result;
    {
      MutexLock lock(&mu_);
      --running_;
      if (released) {
        result_.reclaimed_pool_pages++;
      } else {
        stop_ = true;
      }
      if (running_ > 0 || (!stop_ && to_start_ > 0)) return;
      done = std::move(done_);
      result = result_;
    }
    if (done) std::move(done)(result);
  }

  EvictionSink* const sink_;
  const std::shared_ptr<ReclaimSource> source_;
  const EvictionReason reason_;
  Mutex mu_;
  uint32_t to_start_ ABSL_GUARDED_BY(mu_);  // chains not started yet
  uint32_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;  // a chain released nothing
  ReclaimResult result_ ABSL_GUARDED_BY(mu_);
  ReclaimDone done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

Reclaimer::Reclaimer(EvictionSink* sink, const MemoryBudget* budget,
                     SourceList sources, const ReclaimerOptions& options)
    : sink_(sink),
      budget_(budget),
      sources_(std::move(sources)),
      headroom_bytes_(
          budget->limit_bytes() == MemoryBudget::kUnlimited
              ? 0
              : std::min(options.headroom_bytes, budget->limit_bytes())),
      headroom_retry_(options.headroom_retry) {
  if (headroom_bytes_ > 0)
    headroom_thread_ = std::thread([this] { HeadroomLoop(); });
}

Reclaimer::~Reclaimer() { Stop(); }

void Reclaimer::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
  }
  if (headroom_thread_.joinable()) headroom_thread_.join();
}

void Reclaimer::Reclaim(std::shared_ptr<ReclaimSource> source, uint32_t frames,
                        EvictionReason reason, ReclaimDone done) {
  if (frames == 0) {
    std::move(done)(ReclaimResult{});
    return;
  }
  std::make_shared<ReclaimJob>(sink_, std::move(source), reason, frames,
                               std::move(done))
      ->StartChains();
}

std::vector<std::shared_ptr<ReclaimSource>> Reclaimer::Victims(
    uint64_t target_bytes, const ReclaimSource* requester, bool newcomer) {
  std::vector<std::shared_ptr<ReclaimSource>> sources = sources_();
  std::vector<ShareClaim> claims;
  claims.reserve(sources.size() + 1);
  for (const std::shared_ptr<ReclaimSource>& s : sources) {
    claims.push_back({s->UsedBytes(), s->HoldsPages() || s.get() == requester});
  }
  if (newcomer) claims.push_back({0, true});
  std::vector<std::shared_ptr<ReclaimSource>> victims;
  for (size_t i : AboveShare(target_bytes, claims)) {
    if (i < sources.size() && sink_->CanAccept(sources[i]->name())) {
      victims.push_back(sources[i]);
    }
  }
  return victims;
}

bool Reclaimer::CanMakeRoom(const ReclaimSource& requester, bool at_own_limit) {
  return sink_->CanAccept(requester.name()) ||
         (!at_own_limit &&
          !Victims(budget_->limit_bytes(), &requester).empty());
}

void Reclaimer::MakeRoom(std::shared_ptr<ReclaimSource> requester,
                         bool at_own_limit, ReclaimDone done) {
  auto victims =
      std::make_shared<std::vector<std::shared_ptr<ReclaimSource>>>();
  if (!at_own_limit)
    *victims = Victims(budget_->limit_bytes(), requester.get());
  // A tenant may always make room for itself from its own LRU: last, when
  // others are above their share.
  if (std::find(victims->begin(), victims->end(), requester) ==
          victims->end() &&
      sink_->CanAccept(requester->name())) {
    victims->push_back(std::move(requester));
  }
  // At the server limit, as many frames as the limit is passed by (a
  // newcomer may be let in a tenant's cost past it), and one more page.
  uint64_t frames = 1;
  if (!at_own_limit) {
    const uint64_t wanted = budget_->used_bytes() + kPageSize;
    const uint64_t limit = budget_->limit_bytes();
    if (wanted > limit) {
      frames = std::min<uint64_t>((wanted - limit + kPageSize - 1) / kPageSize,
                                  kMaxRoomFrames);
    }
  }
  TryVictims(std::move(victims), 0, static_cast<uint32_t>(frames),
             at_own_limit ? EvictionReason::kTenantLimit
                          : EvictionReason::kServerLimit,
             std::move(done));
}

void Reclaimer::TryVictims(
    std::shared_ptr<std::vector<std::shared_ptr<ReclaimSource>>> victims,
    size_t next, uint32_t frames, EvictionReason reason, ReclaimDone done) {
  if (next == victims->size()) {
    std::move(done)(ReclaimResult{});
    return;
  }
  std::shared_ptr<ReclaimSource> victim = (*victims)[next];
  Reclaim(std::move(victim), frames, reason,
          [this, victims, next, frames, reason,
           done = std::move(done)](ReclaimResult result) mutable {
            if (result.reclaimed_pool_pages > 0) {
              std::move(done)(result);
              return;
            }
            TryVictims(std::move(victims), next + 1, frames, reason,
                       std::move(done));
          });
}

std::optional<ReclaimResult> Reclaimer::ReclaimAndWait(
    std::shared_ptr<ReclaimSource> source, uint32_t frames,
    EvictionReason reason, absl::Time deadline) {
  // Shared with the callback, which may come after this gave up.
  struct Wait {
    Notification finished;
    ReclaimResult result;
  };
  auto wait = std::make_shared<Wait>();
  Reclaim(std::move(source), frames, reason, [wait](ReclaimResult result) {
    wait->result = result;
    wait->finished.Notify();
  });
  if (!wait->finished.WaitForNotificationWithDeadline(deadline)) {
    return std::nullopt;
  }
  return wait->result;
}

uint64_t Reclaimer::Drain(const std::shared_ptr<ReclaimSource>& source,
                          absl::Time deadline) {
  uint64_t acked = 0;
  for (;;) {
    const uint64_t frames = source->PoolFrames();
    if (frames == 0) break;
    std::optional<ReclaimResult> reclaimed =
        ReclaimAndWait(source, static_cast<uint32_t>(frames),
                       EvictionReason::kDrain, deadline);
    if (!reclaimed.has_value()) break;
    acked += reclaimed->evicted_pages;
    if (reclaimed->reclaimed_pool_pages == 0) break;
  }
  return acked + DrainSameFilled(source, deadline);
}

uint64_t Reclaimer::DrainSameFilled(
    const std::shared_ptr<ReclaimSource>& source, absl::Time deadline) {
  // Shared with the deliveries' callbacks, which may come after this gave
  // up at the deadline.
  struct Out {
    Mutex mu;
    CondVar settled;
    int pages ABSL_GUARDED_BY(mu) = 0;
    uint64_t acked ABSL_GUARDED_BY(mu) = 0;
  };
  auto out = std::make_shared<Out>();
  // Waits until at most `most` pages are out, or the deadline; false then.
  auto wait_until = [&out, deadline](int most) {
    MutexLock lock(&out->mu);
    while (out->pages > most) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      out->settled.WaitWithTimeout(&out->mu, left);
    }
    return true;
  };
  for (const PageCopy& listed : source->SameFilledCopies()) {
    if (!wait_until(kDrainInFlight - 1)) break;
    {
      MutexLock count(&out->mu);
      ++out->pages;
    }
    const OfferOutcome offered = source->OfferSameFilled(
        listed, [&](const PageCopy& copy, PageBytes page) {
          return sink_
              ->Deliver(source->name(), copy.key, page,
                        [source, out, copy](DeliveryOutcome outcome) {
                          source->Settle(copy, outcome, EvictionReason::kDrain);
                          MutexLock count(&out->mu);
                          if (outcome == DeliveryOutcome::kAcked) ++out->acked;
                          --out->pages;
                          out->settled.SignalAll();
                        })
              .ok();
        });
    if (offered != OfferOutcome::kHandedOver) {
      MutexLock count(&out->mu);
      --out->pages;
    }
  }
  wait_until(0);
  MutexLock lock(&out->mu);
  return out->acked;
}

void Reclaimer::Wake() {
  MutexLock lock(&mu_);
  wake_.Signal();
}

void Reclaimer::HeadroomLoop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      while (!stop_ && !BelowHeadroom()) {
        sleeping_.store(true);
        // Timed: a charge that raced with going to sleep is seen at the
        // next look, not never.
        wake_.WaitWithTimeout(&mu_, headroom_retry_);
        sleeping_.store(false);
      }
      if (stop_) return;
    }
    if (!RestoreHeadroom()) {
      MutexLock lock(&mu_);
      if (!stop_) wake_.WaitWithTimeout(&mu_, headroom_retry_);
    }
  }
}

bool Reclaimer::RestoreHeadroom() {
  const uint64_t limit = budget_->limit_bytes();
  const uint64_t used = budget_->used_bytes();
  if (used + headroom_bytes_ <= limit) return true;
  const uint64_t missing = used + headroom_bytes_ - limit;
  const uint32_t frames = static_cast<uint32_t>(
      std::min<uint64_t>(missing / kPageSize + 1, kHeadroomFramesPerRound));
  for (const std::shared_ptr<ReclaimSource>& victim :
       Victims(limit - headroom_bytes_, nullptr)) {
    // Every delivery has its outcome within the ack deadline, so the job
    // ends; the wait looks up now and then only so that Stop is not held up.
    auto wait = std::make_shared<Notification>();
    auto released = std::make_shared<std::atomic<uint32_t>>(0);
    Reclaim(victim, frames, EvictionReason::kHeadroom,
            [wait, released](ReclaimResult result) {
              released->store(result.reclaimed_pool_pages);
              wait->Notify();
            });
    while (
        !wait->WaitForNotificationWithDeadline(absl::Now() + headroom_retry_)) {
      MutexLock lock(&mu_);
      if (stop_) return false;
    }
    if (released->load() > 0) return true;
  }
  return false;
}

}  // namespace zpaged
