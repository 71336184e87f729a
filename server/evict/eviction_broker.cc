#include "server/evict/eviction_broker.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace zpaged {

EvictionBroker::EvictionBroker(BrokerOptions options)
    : options_(std::move(options)), timer_([this] { ExpireLoop(); }) {}

EvictionBroker::~EvictionBroker() { Stop(); }

void EvictionBroker::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    expiry_added_.SignalAll();
  }
  if (timer_.joinable()) timer_.join();
}

void EvictionBroker::Log(const std::string& line) {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "zpaged: %s\n", line.c_str());
  }
}

EvictionBroker::Watcher* EvictionBroker::FindWatcher(WatcherId id) {
  auto it = watchers_.find(id);
  return it == watchers_.end() ? nullptr : it->second.get();
}

bool EvictionBroker::CanAccept(absl::string_view tenant) {
  MutexLock lock(&mu_);
  if (shut_down_) return false;
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return false;
  return std::any_of(it->second.watchers.begin(), it->second.watchers.end(),
                     [](const Watcher* w) { return !w->stalled; });
}

absl::Status EvictionBroker::Deliver(absl::string_view tenant, uint64_t key,
                                     PageBytes page, DeliveryDone done) {
  MutexLock lock(&mu_);
  auto it = shut_down_ ? tenants_.end() : tenants_.find(tenant);
  if (it == tenants_.end()) {
    return absl::UnavailableError(
        absl::StrCat("tenant '", tenant, "' has no eviction watcher"));
  }
  TenantWatchers& group = it->second;
  if (group.held_keys.contains(key)) {
    return absl::UnavailableError(absl::StrCat("an older copy of key ", key,
                                               " of tenant '", tenant,
                                               "' still awaits its ack"));
  }
  const size_t count = group.watchers.size();
  for (size_t i = 0; i < count; ++i) {
    Watcher* w = group.watchers[(group.next_pick + i) % count];
    if (w->stalled) continue;
    const uint64_t sequence = w->next_sequence;
    if (!w->channel->Send(OutgoingPage{tenant, key, sequence, page})) continue;
    group.next_pick = (group.next_pick + i + 1) % count;
    ++w->next_sequence;
    const absl::Time now = absl::Now();
    w->awaiting.emplace(sequence, Delivery{key, now, std::move(done)});
    group.held_keys.emplace(key, w->id);
    if (expiries_.empty()) expiry_added_.SignalAll();
    expiries_.push_back(Expiry{now + options_.ack_deadline, w->id, sequence});
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("no ready eviction watcher for tenant '", tenant, "'"));
}

absl::StatusOr<EvictionBroker::WatcherId> EvictionBroker::Attach(
    absl::string_view tenant, WatcherChannel* channel, bool exclusive) {
  bool at_tenant_limit = false;
  absl::StatusOr<WatcherId> attached =
      TryAttach(tenant, channel, exclusive, &at_tenant_limit);
  // Made-up tenant names must not crowd out tenants that hold pages.
  if (at_tenant_limit && options_.holds_pages && options_.holds_pages(tenant) &&
      DisplaceIdleTenant()) {
    attached = TryAttach(tenant, channel, exclusive, &at_tenant_limit);
  }
  return attached;
}

bool EvictionBroker::DisplaceIdleTenant() {
  std::vector<std::string> watched;
  {
    MutexLock lock(&mu_);
    for (const auto& [name, group] : tenants_) {
      if (!group.displaced) watched.push_back(name);
    }
  }
  // The store's locks come before the broker's: asked with none held.
  for (const std::string& name : watched) {
    if (options_.holds_pages(name)) continue;
    size_t closed = 0;
    {
      MutexLock lock(&mu_);
      auto it = tenants_.find(name);
      if (it == tenants_.end() || it->second.displaced) continue;
      it->second.displaced = true;
      displaced_groups_++;
      for (Watcher* w : it->second.watchers) {
        w->channel->Close(absl::ResourceExhaustedError(absl::StrCat(
            "tenant '", name,
            "' holds no pages, and a tenant that does needed its watcher "
            "slot (--max_tenants)")));
        closed++;
      }
    }
    Log(absl::StrCat("eviction watchers of tenant '", name,
                     "', which holds no pages, closed to make room for a "
                     "tenant that does (",
                     closed, " watchers)"));
    return true;
  }
  return false;
}

absl::StatusOr<EvictionBroker::WatcherId> EvictionBroker::TryAttach(
    absl::string_view tenant, WatcherChannel* channel, bool exclusive,
    bool* at_tenant_limit) {
  WatcherId id;
  size_t watching;
  {
    MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("zpaged is shutting down");
    if (!tenants_.contains(tenant) &&
        tenants_.size() - displaced_groups_ >= options_.max_watched_tenants) {
      *at_tenant_limit = true;
      return absl::ResourceExhaustedError(absl::StrCat(
          "eviction watchers already watch ", options_.max_watched_tenants,
          " tenants (--max_tenants); no watcher for another one"));
    }
    TenantWatchers& group = tenants_[tenant];
    if (group.displaced) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tenant '", tenant,
          "''s watchers were displaced for a tenant that holds pages; try "
          "again once its last watcher is gone"));
    }
    if (group.exclusive) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tenant '", tenant,
          "' has an exclusive eviction watcher (its NBD bridge); it takes "
          "no other"));
    }
    if (exclusive && !group.watchers.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tenant '", tenant, "' already has ", group.watchers.size(),
          " eviction watcher(s), perhaps another NBD bridge; an exclusive "
          "one must be its only one"));
    }
    if (group.watchers.size() >= options_.max_watchers_per_tenant) {
      if (group.watchers.empty()) tenants_.erase(tenant);
      return absl::ResourceExhaustedError(
          absl::StrCat("tenant '", tenant, "' already has ",
                       options_.max_watchers_per_tenant,
                       " eviction watchers (--max_watchers_per_tenant)"));
    }
    id = next_watcher_id_++;
    auto watcher = std::make_unique<Watcher>();
    watcher->id = id;
    watcher->tenant = std::string(tenant);
    watcher->channel = channel;
    group.watchers.push_back(watcher.get());
    group.exclusive = exclusive;
    watchers_.emplace(id, std::move(watcher));
    watching = group.watchers.size();
  }
  Log(absl::StrCat("eviction watcher ", id, " of tenant '", tenant,
                   "' connected", exclusive ? ", exclusive" : "", " (",
                   watching, " watching)"));
  return id;
}

void EvictionBroker::Detach(WatcherId id) {
  std::vector<DeliveryDone> disconnected;
  std::string tenant;
  size_t left;
  {
    MutexLock lock(&mu_);
    auto found = watchers_.find(id);
    if (found == watchers_.end()) return;
    std::unique_ptr<Watcher> watcher = std::move(found->second);
    watchers_.erase(found);
    tenant = watcher->tenant;
    auto group_it = tenants_.find(tenant);
    TenantWatchers& group = group_it->second;
    for (auto& [sequence, delivery] : watcher->awaiting) {
      group.held_keys.erase(delivery.key);
      disconnected.push_back(std::move(delivery.done));
    }
    for (const auto& [sequence, key] : watcher->overdue) {
      group.held_keys.erase(key);
    }
    std::vector<Watcher*>& list = group.watchers;
    list.erase(std::find(list.begin(), list.end(), watcher.get()));
    left = list.size();
    if (list.empty()) {
      if (group.displaced) displaced_groups_--;
      tenants_.erase(group_it);
    } else {
      group.next_pick %= list.size();
    }
  }
  Log(absl::StrCat("eviction watcher ", id, " of tenant '", tenant,
                   "' disconnected with ", disconnected.size(),
                   " pages unacked (", left, " watching)"));
  for (DeliveryDone& done : disconnected) {
    std::move(done)(DeliveryOutcome::kDisconnected);
  }
}

absl::Status EvictionBroker::Ack(WatcherId id, uint64_t sequence) {
  DeliveryDone acked;
  absl::Duration latency;
  bool recovered = false;
  std::string tenant;
  {
    MutexLock lock(&mu_);
    Watcher* w = FindWatcher(id);
    if (w == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("eviction watcher ", id, " is not attached"));
    }
    TenantWatchers& group = tenants_.find(w->tenant)->second;
    if (auto it = w->awaiting.find(sequence); it != w->awaiting.end()) {
      group.held_keys.erase(it->second.key);
      latency = absl::Now() - it->second.sent;
      acked = std::move(it->second.done);
      w->awaiting.erase(it);
      TrimExpiries();
    } else if (auto late = w->overdue.find(sequence);
               late != w->overdue.end()) {
      // The page stayed stored; newer copies of its key may go out now.
      group.held_keys.erase(late->second);
      w->overdue.erase(late);
    } else if (sequence == 0 || sequence >= w->next_sequence) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ack for sequence ", sequence, ", which this stream never sent"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", sequence, " was acked already"));
    }
    // Any ack shows the client is alive again.
    recovered = std::exchange(w->stalled, false);
    tenant = w->tenant;
  }
  if (recovered) {
    Log(absl::StrCat("eviction watcher ", id, " of tenant '", tenant,
                     "' recovered: it acked again"));
  }
  if (acked) {
    if (options_.on_ack) options_.on_ack(latency);
    std::move(acked)(DeliveryOutcome::kAcked);
  }
  return absl::OkStatus();
}

void EvictionBroker::TrimExpiries() {
  while (!expiries_.empty()) {
    Watcher* w = FindWatcher(expiries_.front().watcher);
    if (w != nullptr && w->awaiting.contains(expiries_.front().sequence)) {
      return;
    }
    expiries_.pop_front();
  }
}

void EvictionBroker::ExpireLoop() {
  std::vector<DeliveryDone> timed_out;
  std::vector<std::string> stalls;
  MutexLock lock(&mu_);
  while (!stopping_) {
    TrimExpiries();
    if (expiries_.empty()) {
      expiry_added_.Wait(&mu_);
      continue;
    }
    const absl::Time now = absl::Now();
    if (expiries_.front().deadline > now) {
      expiry_added_.WaitWithTimeout(&mu_, expiries_.front().deadline - now);
      continue;
    }
    while (!expiries_.empty() && expiries_.front().deadline <= now) {
      const Expiry expiry = expiries_.front();
      expiries_.pop_front();
      Watcher* w = FindWatcher(expiry.watcher);
      if (w == nullptr) continue;
      auto it = w->awaiting.find(expiry.sequence);
      if (it == w->awaiting.end()) continue;
      // The key stays held: the watcher may still write this copy.
      w->overdue.emplace(expiry.sequence, it->second.key);
      timed_out.push_back(std::move(it->second.done));
      w->awaiting.erase(it);
      if (!std::exchange(w->stalled, true)) {
        stalls.push_back(absl::StrCat(
            "eviction watcher ", w->id, " of tenant '", w->tenant,
            "' stalled: no ack of sequence ", expiry.sequence, " within ",
            absl::FormatDuration(options_.ack_deadline)));
      }
    }
    mu_.Unlock();
    for (const std::string& line : stalls) Log(line);
    for (DeliveryDone& done : timed_out) {
      std::move(done)(DeliveryOutcome::kTimedOut);
    }
    stalls.clear();
    timed_out.clear();
    mu_.Lock();
  }
}

void EvictionBroker::Shutdown() {
  MutexLock lock(&mu_);
  shut_down_ = true;
  for (auto& [id, watcher] : watchers_) {
    watcher->channel->Close(absl::UnavailableError("zpaged is shutting down"));
  }
}

void EvictionBroker::VisitChannels(
    absl::FunctionRef<void(absl::string_view tenant, WatcherChannel&)> visit) {
  MutexLock lock(&mu_);
  for (auto& [id, watcher] : watchers_)
    visit(watcher->tenant, *watcher->channel);
}

size_t EvictionBroker::WatcherCount(absl::string_view tenant) {
  MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.watchers.size();
}

std::vector<std::pair<std::string, WatcherCounts>>
EvictionBroker::CountsByTenant() {
  MutexLock lock(&mu_);
  std::vector<std::pair<std::string, WatcherCounts>> out;
  out.reserve(tenants_.size());
  for (const auto& [tenant, group] : tenants_) {
    WatcherCounts counts;
    for (const Watcher* w : group.watchers) {
      ++counts.watchers;
      counts.stalled += w->stalled;
      counts.in_flight += w->awaiting.size();
    }
    out.emplace_back(tenant, counts);
  }
  return out;
}

}  // namespace zpaged
