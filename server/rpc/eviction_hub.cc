#include "server/rpc/eviction_hub.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/rpc/watch_reactor.h"

namespace zpaged {

void PendingAck::Resolve(State to, absl::string_view why) {
  MutexLock lock(&mu);
  if (state != State::kWaiting) return;
  state = to;
  failure = std::string(why);
  changed.SignalAll();
}

EvictionHub::EvictionHub(absl::Duration ack_deadline,
                         size_t max_watchers_per_tenant)
    : ack_deadline_(ack_deadline),
      max_watchers_per_tenant_(max_watchers_per_tenant) {}

bool EvictionHub::CanAccept(absl::string_view tenant) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(tenant);
  if (it == watchers_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [](WatchReactor* w) { return w->Ready(); });
}

absl::Status EvictionHub::Deliver(absl::string_view tenant, uint64_t key,
                                  absl::Span<const uint8_t> page) {
  WatchReactor* chosen = nullptr;
  uint64_t sequence = 0;
  std::shared_ptr<PendingAck> pending;
  {
    MutexLock lock(&mu_);
    auto it = watchers_.find(tenant);
    if (it != watchers_.end()) {
      const std::vector<WatchReactor*>& list = it->second;
      if (std::any_of(list.begin(), list.end(), [key](WatchReactor* w) {
            return w->HoldsOverdueCopyOf(key);
          })) {
        return absl::UnavailableError(
            absl::StrCat("a watcher of tenant '", tenant,
                         "' still holds an older copy of key ", key,
                         " that it has not acked"));
      }
      for (size_t i = 0; i < list.size() && chosen == nullptr; ++i) {
        WatchReactor* w = list[(next_pick_ + i) % list.size()];
        if (w->Send(tenant, key, page, &sequence, &pending)) chosen = w;
      }
      ++next_pick_;
    }
  }
  if (chosen == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("no ready eviction watcher for tenant '", tenant, "'"));
  }

  PendingAck::State state;
  std::string failure;
  {
    MutexLock lock(&pending->mu);
    const absl::Time deadline = absl::Now() + ack_deadline_;
    while (pending->state == PendingAck::State::kWaiting &&
           absl::Now() < deadline) {
      pending->changed.WaitWithTimeout(&pending->mu, deadline - absl::Now());
    }
    state = pending->state;
    failure = pending->failure;
  }
  if (state == PendingAck::State::kWaiting) {
    // Stall the watcher, unless it went away meanwhile. ExpireAck matches
    // the pending ack itself, so a new stream that happens to reuse the
    // address is never touched.
    {
      MutexLock lock(&mu_);
      auto it = watchers_.find(tenant);
      if (it != watchers_.end() &&
          std::find(it->second.begin(), it->second.end(), chosen) !=
              it->second.end()) {
        chosen->ExpireAck(sequence, pending.get(), key);
      }
    }
    // The ack may have won the race; Resolve keeps whichever came first.
    pending->Resolve(PendingAck::State::kExpired);
    MutexLock lock(&pending->mu);
    state = pending->state;
    failure = pending->failure;
  }
  switch (state) {
    case PendingAck::State::kAcked:
      return absl::OkStatus();
    case PendingAck::State::kExpired:
      return absl::DeadlineExceededError(
          absl::StrCat("watcher of tenant '", tenant, "' did not ack key ", key,
                       " within ", absl::FormatDuration(ack_deadline_)));
    case PendingAck::State::kFailed:
    case PendingAck::State::kWaiting:
      break;
  }
  return absl::UnavailableError(absl::StrCat(
      "eviction of key ", key, " to tenant '", tenant, "': ", failure));
}

absl::Status EvictionHub::Register(const std::string& tenant,
                                   WatchReactor* watcher) {
  MutexLock lock(&mu_);
  if (shut_down_) return absl::UnavailableError("zpaged is shutting down");
  std::vector<WatchReactor*>& list = watchers_[tenant];
  if (list.size() >= max_watchers_per_tenant_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant '", tenant, "' already has ", max_watchers_per_tenant_,
        " eviction watchers (--max_watchers_per_tenant)"));
  }
  list.push_back(watcher);
  return absl::OkStatus();
}

void EvictionHub::Unregister(const std::string& tenant, WatchReactor* watcher) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(tenant);
  if (it == watchers_.end()) return;
  std::vector<WatchReactor*>& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), watcher), list.end());
  if (list.empty()) watchers_.erase(it);
}

void EvictionHub::Shutdown() {
  MutexLock lock(&mu_);
  shut_down_ = true;
  // Finishing a stream never runs its OnDone inline, so the reactors stay
  // alive while this loop holds the lock their OnDone must take.
  for (auto& [tenant, list] : watchers_) {
    for (WatchReactor* w : list) {
      w->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "zpaged is shutting down"));
    }
  }
  watchers_.clear();
}

size_t EvictionHub::WatcherCount(absl::string_view tenant) {
  MutexLock lock(&mu_);
  auto it = watchers_.find(tenant);
  return it == watchers_.end() ? 0 : it->second.size();
}

}  // namespace zpaged
