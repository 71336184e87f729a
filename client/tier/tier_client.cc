#include "client/tier/tier_client.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "contract/names.h"
#include "contract/page.h"

namespace zpaged {
namespace {

// An error of the member (down, hung past its deadline, full, shutting
// down), after which another member may do better; not one of the request,
// which every member would give alike.
bool MemberFault(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kOutOfRange:
      return false;
    default:
      return true;
  }
}

// The items of one call to one member: indexes into the caller's arrays.
using Buckets = std::map<size_t, std::vector<size_t>>;

// Runs `call(member, items)` for every bucket at once, one thread per
// member beyond the first, and returns when all have.
void ForEachMember(
    const Buckets& buckets,
    const std::function<void(size_t member, const std::vector<size_t>& items)>&
        call) {
  std::vector<std::thread> threads;
  auto it = buckets.begin();
  if (it == buckets.end()) return;
  for (auto other = std::next(it); other != buckets.end(); ++other) {
    threads.emplace_back([&call, other] { call(other->first, other->second); });
  }
  call(it->first, it->second);
  for (std::thread& thread : threads) thread.join();
}

absl::Status WithMember(const absl::Status& status, absl::string_view name) {
  return absl::Status(status.code(),
                      absl::StrCat("zpaged '", name, "': ", status.message()));
}

}  // namespace

// The tier's subscription: one watcher per member of the membership, kept
// so by a thread that subscribes to members that join, were down or whose
// stream ended, and drops those that left.
class TierClient::Watcher final : public EvictionWatcher {
 public:
  Watcher(TierClient* tier, std::string tenant, EvictionCallback on_page)
      : tier_(tier), tenant_(std::move(tenant)), on_page_(std::move(on_page)) {}
  ~Watcher() override { Stop(); }

  // Subscribes on every member it can; OK if one took it, unless one
  // refused (FAILED_PRECONDITION: the tenant has another, exclusive
  // watcher there): then the tenant is not this watcher's.
  absl::Status Start() {
    absl::Status last = absl::UnavailableError("no member");
    bool any = false;
    for (const std::shared_ptr<Member>& member : tier_->Snapshot()->members) {
      absl::Status subscribed = Subscribe(member);
      if (absl::IsFailedPrecondition(subscribed)) return subscribed;
      any |= subscribed.ok();
      if (!subscribed.ok()) last = subscribed;
    }
    if (!any) return last;
    keeper_ = std::thread([this] { Keep(); });
    return absl::OkStatus();
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      changed_.notify_all();
    }
    if (keeper_.joinable()) keeper_.join();
    for (auto& [member, watcher] : watchers_) watcher->Stop();
  }

  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return stopped_; });
    return absl::CancelledError("the watcher was stopped");
  }

  bool WaitFor(absl::Duration timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [this] { return stopped_; });
  }

 private:
  static constexpr absl::Duration kKeepEvery = absl::Seconds(1);

  // Only the keeper thread (or Start, before it runs) touches watchers_.
  absl::Status Subscribe(const std::shared_ptr<Member>& member) {
    absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
        member->client->Watch(tenant_, [this, member](uint64_t key,
                                                      absl::string_view page) {
          OtherCopies others = tier_->FindOtherCopies(tenant_, key, *member);
          if (others.spare) return true;
          {
            // One page at a time, as one server's watcher delivers them.
            std::lock_guard<std::mutex> lock(deliver_mu_);
            if (!on_page_(key, page)) return false;
          }
          tier_->ForgetCopies(tenant_, key, *member, others.holders);
          return true;
        });
    if (!watcher.ok()) return WithMember(watcher.status(), member->name);
    watchers_[member] = *std::move(watcher);
    return absl::OkStatus();
  }

  void Keep() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!changed_.wait_for(lock, absl::ToChronoNanoseconds(kKeepEvery),
                              [this] { return stopped_; })) {
      lock.unlock();
      const std::shared_ptr<const Membership> now = tier_->Snapshot();
      for (auto it = watchers_.begin(); it != watchers_.end();) {
        const bool member = std::find(now->members.begin(), now->members.end(),
                                      it->first) != now->members.end();
        if (member && !it->second->WaitFor(absl::ZeroDuration())) {
          ++it;
          continue;
        }
        it->second->Stop();  // left the tier, or its stream ended
        it = watchers_.erase(it);
      }
      for (const std::shared_ptr<Member>& member : now->members) {
        if (!watchers_.count(member)) {
          Subscribe(member).IgnoreError();  // tried again next round
        }
      }
      lock.lock();
    }
  }

  TierClient* const tier_;
  const std::string tenant_;
  const EvictionCallback on_page_;
  std::map<std::shared_ptr<Member>, std::unique_ptr<EvictionWatcher>> watchers_;
  std::mutex deliver_mu_;
  std::thread keeper_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool stopped_ = false;  // guarded by mu_
};

namespace {

absl::Status ValidateMember(const TierMember& member) {
  if (absl::Status valid = ValidateNodeName(member.name); !valid.ok()) {
    return valid;
  }
  if (member.client == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("server '", member.name, "' has no connection"));
  }
  if (!(member.weight > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("server '", member.name, "' has weight ", member.weight,
                     "; weights must be above 0"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TierClient>> TierClient::Create(
    std::vector<TierMember> members, const TierOptions& options) {
  if (members.empty()) {
    return absl::InvalidArgumentError("a tier needs at least one server");
  }
  if (options.replicas < 1 || options.replicas > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas must be 1 to 3, not ", options.replicas));
  }
  if (options.group_shift < 0 || options.group_shift > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_shift must be 0 to 63, not ", options.group_shift));
  }
  std::set<std::string> names;
  std::vector<std::shared_ptr<Member>> shared;
  for (TierMember& member : members) {
    if (absl::Status valid = ValidateMember(member); !valid.ok()) return valid;
    if (!names.insert(member.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two servers are named '", member.name, "'"));
    }
    auto one = std::make_shared<Member>();
    one->name = std::move(member.name);
    one->client = std::move(member.client);
    one->weight = member.weight;
    shared.push_back(std::move(one));
  }
  std::unique_ptr<TierClient> tier(
      new TierClient(options.replicas, options.group_shift, options.probe_every,
                     options.compression));
  {
    std::lock_guard<std::mutex> lock(tier->membership_mu_);
    tier->Install(std::move(shared));
  }
  return tier;
}

absl::StatusOr<TierMember> TierClient::ConnectMember(
    const std::string& server, const ClientOptions& client,
    const TierOptions& options) {
  std::vector<std::string> parts =
      absl::StrSplit(server, absl::MaxSplits('=', 1));
  const bool named = parts.size() == 2;
  const std::string& address = named ? parts[1] : parts[0];
  ClientOptions member_options = client;
  if (member_options.read_timeout == absl::ZeroDuration()) {
    member_options.read_timeout = options.member_read_timeout;
  }
  std::unique_ptr<Client> connection = Client::Connect(address, member_options);
  absl::StatusOr<v1::StatsResponse> stats = connection->Stats("");
  std::string name = named ? parts[0] : "";
  if (!named) {
    if (!stats.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot ask ", address, " its node name (", stats.status().message(),
          "); give the server as NAME=", address));
    }
    name = stats->node_name();
  } else if (stats.ok() && stats->node_name() != name) {
    return absl::FailedPreconditionError(
        absl::StrCat(address, " is zpaged '", stats->node_name(), "', not '",
                     name, "': refusing to place '", name, "''s pages on it"));
  }
  return TierMember{std::move(name), std::move(connection), 1.0};
}

absl::StatusOr<std::unique_ptr<TierClient>> TierClient::Connect(
    absl::Span<const std::string> servers, const ClientOptions& client,
    const TierOptions& options) {
  std::vector<TierMember> members;
  for (const std::string& server : servers) {
    absl::StatusOr<TierMember> member = ConnectMember(server, client, options);
    if (!member.ok()) return member.status();
    members.push_back(*std::move(member));
  }
  TierOptions encoded_once = options;
  encoded_once.compression = client.compression;
  return Create(std::move(members), encoded_once);
}

TierClient::TierClient(int replicas, int group_shift,
                       absl::Duration probe_every, EdgeCompression compression)
    : replicas_wanted_(replicas),
      group_shift_(group_shift),
      compression_(compression),
      probe_every_(probe_every),
      prober_([this] { Probe(); }) {}

TierClient::~TierClient() {
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    stopping_ = true;
    probe_wake_.notify_all();
  }
  prober_.join();
}

std::shared_ptr<const TierClient::Membership> TierClient::Snapshot() const {
  std::lock_guard<std::mutex> lock(membership_mu_);
  return membership_;
}

void TierClient::Install(std::vector<std::shared_ptr<Member>> members) {
  auto next = std::make_shared<Membership>();
  for (const std::shared_ptr<Member>& member : members) {
    next->ranked.push_back({member->name, member->weight});
  }
  next->replicas = std::min(replicas_wanted_, static_cast<int>(members.size()));
  next->depth = std::min(
      members.size(), static_cast<size_t>(next->replicas + kSpareCandidates));
  next->members = std::move(members);
  membership_ = std::move(next);
  reachability_changes_++;
}

absl::Status TierClient::AddMember(TierMember member) {
  if (absl::Status valid = ValidateMember(member); !valid.ok()) return valid;
  auto one = std::make_shared<Member>();
  one->name = std::move(member.name);
  one->client = std::move(member.client);
  one->weight = member.weight;
  std::lock_guard<std::mutex> lock(membership_mu_);
  std::vector<std::shared_ptr<Member>> members;
  for (const std::shared_ptr<Member>& old : membership_->members) {
    if (old->name != one->name) members.push_back(old);
  }
  members.push_back(std::move(one));
  Install(std::move(members));
  return absl::OkStatus();
}

absl::Status TierClient::RemoveMember(absl::string_view name) {
  std::lock_guard<std::mutex> lock(membership_mu_);
  std::vector<std::shared_ptr<Member>> members;
  for (const std::shared_ptr<Member>& old : membership_->members) {
    if (old->name != name) members.push_back(old);
  }
  if (members.size() == membership_->members.size()) {
    return absl::NotFoundError(absl::StrCat("no server named '", name, "'"));
  }
  if (members.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", name, "' is the tier's last server"));
  }
  Install(std::move(members));
  return absl::OkStatus();
}

void TierClient::NoteFault(Member& member, const absl::Status& status) {
  if ((absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) &&
      !member.suspect.exchange(true)) {
    reachability_changes_++;
  }
}

void TierClient::Probe() {
  std::unique_lock<std::mutex> lock(probe_mu_);
  while (!probe_wake_.wait_for(lock, absl::ToChronoNanoseconds(probe_every_),
                               [this] { return stopping_; })) {
    lock.unlock();
    const std::shared_ptr<const Membership> now = Snapshot();
    for (const std::shared_ptr<Member>& member : now->members) {
      if (!member->suspect) continue;
      absl::StatusOr<bool> serving = member->client->Serving();
      if (serving.ok() && *serving && member->suspect.exchange(false)) {
        reachability_changes_++;
      }
    }
    lock.lock();
  }
}

std::vector<std::string> TierClient::member_names() const {
  std::vector<std::string> names;
  for (const std::shared_ptr<Member>& member : Snapshot()->members) {
    names.push_back(member->name);
  }
  return names;
}

bool TierClient::suspect(absl::string_view name) const {
  for (const std::shared_ptr<Member>& member : Snapshot()->members) {
    if (member->name == name) return member->suspect;
  }
  return false;
}

std::vector<size_t> TierClient::Candidates(const Membership& now,
                                           absl::string_view tenant,
                                           uint64_t key) const {
  std::vector<size_t> rank =
      RankMembers(now.ranked, tenant, key >> group_shift_);
  rank.resize(now.depth);
  std::stable_partition(rank.begin(), rank.end(),
                        [&now](size_t m) { return !now.members[m]->suspect; });
  return rank;
}

absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> TierClient::PutMany(
    absl::string_view tenant, absl::Span<const KeyedPage> given) {
  const std::shared_ptr<const Membership> now = Snapshot();
  // Each page is encoded once, here, for all of its copies.
  std::string encoded_bytes;
  std::vector<KeyedPage> encoded;
  if (compression_.compressor != EdgeCompressor::kNone) {
    encoded_bytes.resize(given.size() * kPageSize);
    encoded.reserve(given.size());
    uint8_t* out = reinterpret_cast<uint8_t*>(encoded_bytes.data());
    for (size_t i = 0; i < given.size(); ++i) {
      const KeyedPage& page = given[i];
      if (page.encoding.has_value() || page.page.size() != kPageSize) {
        encoded.push_back(page);  // as given; a wrong size is the member's
        continue;
      }
      const EdgeEncoded e = EncodeAtEdge(
          compression_,
          absl::MakeConstSpan(
              reinterpret_cast<const uint8_t*>(page.page.data()), kPageSize),
          absl::MakeSpan(out + i * kPageSize, kPageSize));
      encoded.push_back(
          {page.key,
           absl::string_view(reinterpret_cast<const char*>(out) + i * kPageSize,
                             e.bytes),
           e.encoding});
    }
  }
  const absl::Span<const KeyedPage> pages =
      encoded.empty() ? given : absl::MakeConstSpan(encoded);
  const size_t n = pages.size();
  std::vector<std::vector<size_t>> candidates(n);
  std::vector<size_t> next(n, 0);
  std::vector<uint32_t> copies(n, 0);
  std::vector<PutReply> replies(n);
  std::vector<absl::Status> errors(n,
                                   absl::UnavailableError("no member tried"));
  std::vector<bool> refused(n, false);  // an error of the request itself
  for (size_t i = 0; i < n; ++i)
    candidates[i] = Candidates(*now, tenant, pages[i].key);
  absl::Status whole_call;
  std::mutex mu;
  for (;;) {
    // This round: each page short of copies goes to as many more
    // candidates as it lacks.
    Buckets buckets;
    for (size_t i = 0; i < n; ++i) {
      if (refused[i]) continue;
      for (uint32_t want = now->replicas - copies[i];
           want > 0 && next[i] < now->depth; --want) {
        buckets[candidates[i][next[i]++]].push_back(i);
      }
    }
    if (buckets.empty()) break;
    ForEachMember(buckets, [&](size_t m, const std::vector<size_t>& items) {
      std::vector<KeyedPage> mine;
      mine.reserve(items.size());
      for (size_t i : items) mine.push_back(pages[i]);
      absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> stored =
          now->members[m]->client->PutMany(tenant, mine);
      std::lock_guard<std::mutex> lock(mu);
      for (size_t k = 0; k < items.size(); ++k) {
        const size_t i = items[k];
        const absl::Status status =
            stored.ok() ? (*stored)[k].status() : stored.status();
        if (status.ok()) {
          if (copies[i]++ == 0) replies[i] = *(*stored)[k];
          continue;
        }
        errors[i] = WithMember(status, now->members[m]->name);
        if (MemberFault(status)) {
          NoteFault(*now->members[m], status);
          write_failovers_++;
        } else {
          refused[i] = true;
          if (!stored.ok()) whole_call = errors[i];
        }
      }
    });
  }
  if (!whole_call.ok()) return whole_call;
  std::vector<absl::StatusOr<PutReply>> results;
  results.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (copies[i] == 0) {
      results.push_back(errors[i]);
      continue;
    }
    if (copies[i] < static_cast<uint32_t>(now->replicas))
      under_replicated_writes_++;
    replies[i].copies = copies[i];
    results.push_back(replies[i]);
  }
  return results;
}

absl::StatusOr<std::vector<absl::Status>> TierClient::GetMany(
    absl::string_view tenant, absl::Span<const uint64_t> keys,
    absl::Span<uint8_t* const> outs) {
  const std::shared_ptr<const Membership> now = Snapshot();
  if (outs.size() != keys.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GetMany: ", keys.size(), " keys but ", outs.size(), " outputs"));
  }
  const size_t n = keys.size();
  std::vector<std::vector<size_t>> candidates(n);
  std::vector<size_t> next(n, 0);
  // Per key: OK once read; an error of the request; or, while unresolved,
  // NOT_FOUND or the last member's fault.
  std::vector<absl::Status> results(n, absl::NotFoundError("no such page"));
  std::vector<bool> resolved(n, false);
  std::vector<bool> member_failed(n, false);
  for (size_t i = 0; i < n; ++i)
    candidates[i] = Candidates(*now, tenant, keys[i]);
  absl::Status whole_call;
  std::mutex mu;
  for (;;) {
    Buckets buckets;
    for (size_t i = 0; i < n; ++i) {
      if (!resolved[i] && next[i] < now->depth) {
        buckets[candidates[i][next[i]++]].push_back(i);
      }
    }
    if (buckets.empty()) break;
    ForEachMember(buckets, [&](size_t m, const std::vector<size_t>& items) {
      std::vector<uint64_t> my_keys;
      std::vector<uint8_t*> my_outs;
      for (size_t i : items) {
        my_keys.push_back(keys[i]);
        my_outs.push_back(outs[i]);
      }
      absl::StatusOr<std::vector<absl::Status>> got =
          now->members[m]->client->GetMany(tenant, my_keys, my_outs);
      std::lock_guard<std::mutex> lock(mu);
      for (size_t k = 0; k < items.size(); ++k) {
        const size_t i = items[k];
        const absl::Status status = got.ok() ? (*got)[k] : got.status();
        if (absl::IsNotFound(status)) continue;  // the next candidate may
        if (status.ok() || !MemberFault(status)) {
          results[i] =
              status.ok() ? status : WithMember(status, now->members[m]->name);
          resolved[i] = true;
          if (!got.ok()) whole_call = results[i];
          continue;
        }
        NoteFault(*now->members[m], status);
        read_failovers_++;
        member_failed[i] = true;
        results[i] = WithMember(status, now->members[m]->name);
      }
    });
  }
  if (!whole_call.ok()) return whole_call;
  // A page that no member had is NOT_FOUND only if every candidate could
  // say so; results[i] holds a failed member's error otherwise.
  for (size_t i = 0; i < n; ++i) {
    if (!resolved[i] && !member_failed[i]) {
      results[i] =
          absl::NotFoundError(absl::StrCat("no page under key ", keys[i]));
    }
  }
  return results;
}

absl::StatusOr<std::vector<bool>> TierClient::DeleteMany(
    absl::string_view tenant, absl::Span<const uint64_t> keys) {
  const std::shared_ptr<const Membership> now = Snapshot();
  Buckets buckets;
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t m : Candidates(*now, tenant, keys[i])) buckets[m].push_back(i);
  }
  std::vector<bool> existed(keys.size(), false);
  absl::Status whole_call;
  std::mutex mu;
  ForEachMember(buckets, [&](size_t m, const std::vector<size_t>& items) {
    std::vector<uint64_t> my_keys;
    for (size_t i : items) my_keys.push_back(keys[i]);
    absl::StatusOr<std::vector<bool>> deleted =
        now->members[m]->client->DeleteMany(tenant, my_keys);
    std::lock_guard<std::mutex> lock(mu);
    if (!deleted.ok()) {
      if (MemberFault(deleted.status())) {
        NoteFault(*now->members[m], deleted.status());
        failed_deletes_ += items.size();
      } else {
        whole_call = WithMember(deleted.status(), now->members[m]->name);
      }
      return;
    }
    for (size_t k = 0; k < items.size(); ++k) {
      if ((*deleted)[k]) existed[items[k]] = true;
    }
  });
  if (!whole_call.ok()) return whole_call;
  return existed;
}

absl::StatusOr<RepairResult> TierClient::Repair(
    absl::string_view tenant, absl::Span<const uint64_t> keys) {
  const std::shared_ptr<const Membership> now = Snapshot();
  const size_t n = keys.size();
  std::vector<std::vector<size_t>> targets(n);
  Buckets asked;
  for (size_t i = 0; i < n; ++i) {
    for (size_t m : Candidates(*now, tenant, keys[i])) {
      if (targets[i].size() == static_cast<size_t>(now->replicas)) break;
      if (now->members[m]->suspect) continue;
      targets[i].push_back(m);
      asked[m].push_back(i);
    }
  }
  // 1. Which targets hold each key, and one good copy of it.
  std::vector<std::string> copy(n);
  std::vector<std::set<size_t>> holders(n);
  std::mutex mu;
  ForEachMember(asked, [&](size_t m, const std::vector<size_t>& items) {
    std::vector<uint64_t> my_keys;
    for (size_t i : items) my_keys.push_back(keys[i]);
    std::string pages(items.size() * kPageSize, '\0');
    std::vector<uint8_t*> outs;
    for (size_t k = 0; k < items.size(); ++k) {
      outs.push_back(reinterpret_cast<uint8_t*>(pages.data()) + k * kPageSize);
    }
    absl::StatusOr<std::vector<absl::Status>> got =
        now->members[m]->client->GetMany(tenant, my_keys, outs);
    std::lock_guard<std::mutex> lock(mu);
    if (!got.ok()) {
      NoteFault(*now->members[m], got.status());
      return;
    }
    for (size_t k = 0; k < items.size(); ++k) {
      if (!(*got)[k].ok()) continue;
      holders[items[k]].insert(m);
      if (copy[items[k]].empty())
        copy[items[k]] = pages.substr(k * kPageSize, kPageSize);
    }
  });
  // 2. Keys no target holds: any candidate may (a write that failed over).
  std::vector<uint64_t> elsewhere_keys;
  std::vector<size_t> elsewhere;
  for (size_t i = 0; i < n; ++i) {
    if (copy[i].empty()) {
      elsewhere.push_back(i);
      elsewhere_keys.push_back(keys[i]);
    }
  }
  RepairResult result{.checked = n};
  std::set<size_t> lost_keys;
  if (!elsewhere.empty()) {
    std::vector<std::string> pages(elsewhere.size(),
                                   std::string(kPageSize, '\0'));
    std::vector<uint8_t*> outs;
    for (std::string& page : pages)
      outs.push_back(reinterpret_cast<uint8_t*>(page.data()));
    absl::StatusOr<std::vector<absl::Status>> got =
        GetMany(tenant, elsewhere_keys, outs);
    if (!got.ok()) return got.status();
    for (size_t k = 0; k < elsewhere.size(); ++k) {
      if ((*got)[k].ok()) {
        copy[elsewhere[k]] = std::move(pages[k]);
      } else if (absl::IsNotFound((*got)[k])) {
        result.lost++;
        lost_keys.insert(elsewhere[k]);
      }  // else its holders are unreachable now: left for a later repair
    }
  }
  // 3. A copy to every target without one.
  std::vector<std::pair<size_t, size_t>> made;  // (key, member) stored here
  Buckets missing;
  for (size_t i = 0; i < n; ++i) {
    if (copy[i].empty()) continue;
    for (size_t m : targets[i]) {
      if (!holders[i].count(m)) missing[m].push_back(i);
    }
  }
  ForEachMember(missing, [&](size_t m, const std::vector<size_t>& items) {
    std::vector<KeyedPage> pages;
    for (size_t i : items) pages.push_back({keys[i], copy[i]});
    absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> stored =
        now->members[m]->client->PutMany(tenant, pages);
    std::lock_guard<std::mutex> lock(mu);
    if (!stored.ok()) {
      NoteFault(*now->members[m], stored.status());
      return;
    }
    for (size_t k = 0; k < items.size(); ++k) {
      if (!(*stored)[k].ok()) continue;
      holders[items[k]].insert(m);
      made.emplace_back(items[k], m);
      result.copied++;
    }
  });
  for (size_t i = 0; i < n; ++i) {
    if (holders[i].size() < static_cast<size_t>(now->replicas) &&
        !lost_keys.count(i)) {
      result.short_of_copies++;
    }
  }
  // 4. Once every target holds a key, its copies on reachable candidates
  // that are no longer targets (its group moved to a member that joined,
  // or a write failed over while a target was away) go. A target whose copy
  // was evicted since step 1 no longer holds it, whatever it said then.
  std::lock_guard<std::mutex> copies_lock(copies_mu_);
  for (const auto& [i, m] : made) {  // held again, whatever was dropped
    dropped_.Remove(tenant, keys[i], now->members[m]->name);
  }
  const absl::Time at = absl::Now();
  Buckets extra;
  for (size_t i = 0; i < n; ++i) {
    for (auto it = holders[i].begin(); it != holders[i].end();) {
      it = dropped_.Contains(tenant, keys[i], now->members[*it]->name, at)
               ? holders[i].erase(it)
               : std::next(it);
    }
    if (targets[i].size() != static_cast<size_t>(now->replicas) ||
        holders[i].size() != targets[i].size()) {
      continue;
    }
    for (size_t m : Candidates(*now, tenant, keys[i])) {
      if (!holders[i].count(m) && !now->members[m]->suspect) {
        extra[m].push_back(i);
      }
    }
  }
  ForEachMember(extra, [&](size_t m, const std::vector<size_t>& items) {
    std::vector<uint64_t> my_keys;
    for (size_t i : items) my_keys.push_back(keys[i]);
    absl::StatusOr<std::vector<bool>> deleted =
        now->members[m]->client->DeleteMany(tenant, my_keys);
    std::lock_guard<std::mutex> lock(mu);
    if (!deleted.ok()) {
      NoteFault(*now->members[m], deleted.status());
      return;
    }
    for (bool existed : *deleted) result.dropped += existed;
  });
  return result;
}

absl::StatusOr<PutReply> TierClient::Put(absl::string_view tenant, uint64_t key,
                                         absl::string_view page) {
  const KeyedPage one{key, page};
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
      PutMany(tenant, absl::MakeConstSpan(&one, 1));
  if (!put.ok()) return put.status();
  return std::move((*put)[0]);
}

absl::StatusOr<std::string> TierClient::Get(absl::string_view tenant,
                                            uint64_t key) {
  std::string page(kPageSize, '\0');
  uint8_t* out = reinterpret_cast<uint8_t*>(page.data());
  absl::StatusOr<std::vector<absl::Status>> got = GetMany(
      tenant, absl::MakeConstSpan(&key, 1), absl::MakeConstSpan(&out, 1));
  if (!got.ok()) return got.status();
  if (!(*got)[0].ok()) return (*got)[0];
  return page;
}

absl::StatusOr<bool> TierClient::Delete(absl::string_view tenant,
                                        uint64_t key) {
  absl::StatusOr<std::vector<bool>> deleted =
      DeleteMany(tenant, absl::MakeConstSpan(&key, 1));
  if (!deleted.ok()) return deleted.status();
  return (*deleted)[0];
}

absl::StatusOr<uint64_t> TierClient::DeleteAll(absl::string_view tenant) {
  const std::shared_ptr<const Membership> now = Snapshot();
  Buckets everyone;
  for (size_t m = 0; m < now->members.size(); ++m) everyone[m];
  uint64_t total = 0;
  absl::Status failed;
  std::mutex mu;
  ForEachMember(everyone, [&](size_t m, const std::vector<size_t>&) {
    absl::StatusOr<uint64_t> deleted =
        now->members[m]->client->DeleteAll(tenant);
    std::lock_guard<std::mutex> lock(mu);
    if (deleted.ok()) {
      total += *deleted;
    } else if (failed.ok()) {
      failed = WithMember(deleted.status(), now->members[m]->name);
    }
  });
  if (!failed.ok()) return failed;
  return total;
}

absl::StatusOr<std::unique_ptr<EvictionWatcher>> TierClient::Watch(
    absl::string_view tenant, EvictionCallback on_page) {
  auto watcher =
      std::make_unique<Watcher>(this, std::string(tenant), std::move(on_page));
  if (absl::Status started = watcher->Start(); !started.ok()) return started;
  return watcher;
}

absl::StatusOr<bool> TierClient::Serving() {
  bool all = true;
  for (const std::shared_ptr<Member>& member : Snapshot()->members) {
    absl::StatusOr<bool> serving = member->client->Serving();
    if (!serving.ok()) return WithMember(serving.status(), member->name);
    all &= *serving;
  }
  return all;
}

TierClient::Counters TierClient::counters() const {
  return Counters{under_replicated_writes_.load(), write_failovers_.load(),
                  read_failovers_.load(), failed_deletes_.load(),
                  spare_copies_evicted_.load()};
}

TierClient::OtherCopies TierClient::FindOtherCopies(absl::string_view tenant,
                                                    uint64_t key,
                                                    const Member& from) {
  const std::shared_ptr<const Membership> now = Snapshot();
  // Copies left that keep the page through the loss of one member: two, or
  // one where the caller asked for no more.
  const size_t enough = std::min(now->replicas, 2);
  std::lock_guard<std::mutex> lock(copies_mu_);
  const absl::Time at = absl::Now();
  std::string page(kPageSize, '\0');
  uint8_t* out = reinterpret_cast<uint8_t*>(page.data());
  OtherCopies others;
  for (size_t m : Candidates(*now, tenant, key)) {
    const std::shared_ptr<Member>& other = now->members[m];
    if (other.get() == &from || other->suspect ||
        dropped_.Contains(tenant, key, other->name, at)) {
      continue;
    }
    absl::StatusOr<std::vector<absl::Status>> held = other->client->GetMany(
        tenant, absl::MakeConstSpan(&key, 1), absl::MakeConstSpan(&out, 1));
    if (!held.ok()) {
      NoteFault(*other, held.status());
      continue;
    }
    if (!(*held)[0].ok()) continue;
    others.holders.push_back(other);
    if (others.holders.size() == enough) {
      dropped_.Add(tenant, key, from.name, at);
      spare_copies_evicted_++;
      others.spare = true;
      return others;
    }
  }
  return others;
}

void TierClient::ForgetCopies(
    absl::string_view tenant, uint64_t key, const Member& from,
    const std::vector<std::shared_ptr<Member>>& holders) {
  {
    std::lock_guard<std::mutex> lock(copies_mu_);
    dropped_.Add(tenant, key, from.name, absl::Now());
  }
  for (const std::shared_ptr<Member>& holder : holders) {
    absl::StatusOr<std::vector<bool>> deleted =
        holder->client->DeleteMany(tenant, absl::MakeConstSpan(&key, 1));
    if (!deleted.ok()) {
      NoteFault(*holder, deleted.status());
      failed_deletes_++;
    }
  }
}

}  // namespace zpaged
