// TierClient: one PageClient over several zpaged servers (members), with
// each page copied to `replicas` of them, so that no page dies with one
// server and the tier grows by adding servers.
//
// Placement (rendezvous.h): keys that share key >> group_shift form a group,
// and each (tenant, group) ranks the members by name. A page's copies go to
// the first `replicas` members of its group's rank; a copy that a member
// cannot store (down, hung past its deadline, RESOURCE_EXHAUSTED) goes to
// the next member in rank. Members are tried no further than
// `replicas + kSpareCandidates` deep, by writes and reads alike, so a read
// always looks wherever a write may have put a copy.
//
// A member that does not answer a call (UNAVAILABLE: down or cut off;
// DEADLINE_EXCEEDED: hung) is suspect: it is tried after the others, with
// the same candidates, until a probe finds it serving again. So a dead or
// stopped server costs one call deadline, not one per call.
//
// Writes (Put, PutMany) go to the members of a round in parallel, one batch
// call per member; a page is stored (OK) once at least one copy is, and its
// PutReply says how many copies there are: fewer than `replicas` means the
// page is under-replicated, which the caller may make up for (the NBD
// bridge keeps it in its spill file as well). Reads (Get, GetMany) try the
// candidates in rank order: a member that has no copy (NOT_FOUND) or fails
// passes the read to the next. A page no candidate has is NOT_FOUND only if
// every candidate said so; if one could not answer, the read fails with its
// error, never a false NOT_FOUND. Deletes go to every candidate.
//
// Keys should be written once per value, as the bridge's keys carry the
// block's generation: a key rewritten in place while one of its members was
// unreachable may be read from that member's older copy once it is back.
//
// Repair brings keys back to their copies after members were lost, came
// back empty, joined or left: the caller (the bridge) calls it for the keys
// it holds when reachability_changes() moves. Members join and leave while
// calls run (AddMember, RemoveMember): each call works on the membership of
// its start.
//
// Evictions: Watch subscribes on every member; a member that cannot be
// subscribed to (down) is tried again every second until Stop. A copy that
// a member evicts while enough other members that answer hold the page to
// lose one of them (two; one at replicas = 1) is a spare: it is acked and
// forgotten, and the next Repair makes it again
// (counters().spare_copies_evicted tells the caller one is due). Any other
// evicted copy is the last that counts: it goes to the callback, one page
// at a time, from a member's watcher thread, and once the callback took it
// the copies other members still hold are deleted, so what the callback
// keeps (the bridge's spill file) is held nowhere else. Fewer than two
// copies on members is never a resting state: a page lives through the loss
// of any one member. Evictions and the last step of Repair (dropping extra
// copies) take one lock in turn, and the copies let go are remembered
// (dropped_copies.h), so no two decisions can each count on a copy the
// other is letting go. The callback must keep the newest version of a key
// (the bridge does, by generation).
//
// Thread-safe.

#ifndef ZPAGED_CLIENT_TIER_TIER_CLIENT_H_
#define ZPAGED_CLIENT_TIER_TIER_CLIENT_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/lib/page_client.h"
#include "client/lib/zpaged_client.h"
#include "client/tier/dropped_copies.h"
#include "client/tier/rendezvous.h"

namespace zpaged {

struct TierOptions {
  // Copies of each page, 1 to 3 (and at most the members).
  int replicas = 2;
  // Keys that share key >> group_shift share their members, so that a
  // batch of neighbouring keys goes to each member in one call. The NBD
  // bridge's keys are block << 24 | generation: 30 groups 64 blocks.
  int group_shift = 6;
  // How long a read waits for one member before it passes to the next:
  // Connect gives it to the members' clients unless ClientOptions has a
  // read_timeout of its own.
  absl::Duration member_read_timeout = absl::Seconds(1);
  // How often a member that did not answer (down, hung) is asked whether it
  // serves again; until it does, it is tried after the others.
  absl::Duration probe_every = absl::Milliseconds(200);
  // How pages are encoded before they go to members: once, here, for all of
  // a page's copies (members send what they are given). Connect takes it
  // from ClientOptions::compression; kNone leaves whole pages to the
  // members' own clients.
  EdgeCompression compression{EdgeCompressor::kNone};
};

// One server of the tier: its --node_name and a client connected to it.
struct TierMember {
  std::string name;
  std::unique_ptr<PageClient> client;
  double weight = 1.0;
};

// Members a read or write tries beyond the first `replicas`.
inline constexpr int kSpareCandidates = 2;

class TierClient final : public PageClient {
 public:
  // INVALID_ARGUMENT for no member, two members of one name, a name that
  // breaks the node-name rule, a weight not above 0, or replicas outside 1
  // to 3.
  static absl::StatusOr<std::unique_ptr<TierClient>> Create(
      std::vector<TierMember> members, const TierOptions& options);

  // Connects to `servers`, each as ConnectMember does.
  static absl::StatusOr<std::unique_ptr<TierClient>> Connect(
      absl::Span<const std::string> servers, const ClientOptions& client,
      const TierOptions& options);

  // A member for `server`, "NAME=HOST:PORT" or "HOST:PORT". A member given
  // by address alone is asked its name (Stats) now, and one that cannot be
  // asked is an error naming it; a member given by name whose server
  // reports another name is refused (FAILED_PRECONDITION): a new address
  // must never make a client write one server's pages to another. Its reads
  // get options.member_read_timeout unless `client` sets read_timeout.
  static absl::StatusOr<TierMember> ConnectMember(const std::string& server,
                                                  const ClientOptions& client,
                                                  const TierOptions& options);

  ~TierClient() override;

  // Changes the members while calls run: a server joined (or moved to a
  // new address: a member of the same name is replaced), or left. The
  // groups whose rank changed move when the caller repairs them (Repair).
  // RemoveMember: NOT_FOUND for no such member, FAILED_PRECONDITION for
  // the last one.
  absl::Status AddMember(TierMember member);
  absl::Status RemoveMember(absl::string_view name);

  absl::StatusOr<PutReply> Put(absl::string_view tenant, uint64_t key,
                               absl::string_view page) override;
  absl::StatusOr<std::string> Get(absl::string_view tenant,
                                  uint64_t key) override;
  absl::StatusOr<bool> Delete(absl::string_view tenant, uint64_t key) override;
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> PutMany(
      absl::string_view tenant, absl::Span<const KeyedPage> pages) override;
  absl::StatusOr<std::vector<absl::Status>> GetMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys,
      absl::Span<uint8_t* const> outs) override;
  absl::StatusOr<std::vector<bool>> DeleteMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys) override;
  // Every member must answer: a clean start leaves no copy anywhere.
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant) override;
  // Each key's targets are the first `replicas` members of its candidates
  // that are not suspect; a target without a copy gets one, read from
  // another target or any candidate. Once every target holds the key, a
  // copy on a member that is no longer a target (its group moved to a new
  // member) is deleted. A key no candidate has is lost; one that cannot be
  // read now (its holders unreachable) is left for later.
  absl::StatusOr<RepairResult> Repair(absl::string_view tenant,
                                      absl::Span<const uint64_t> keys) override;
  // Subscribes on every member, and on members that join later.
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> Watch(
      absl::string_view tenant, EvictionCallback on_page) override;
  // True when every member serves.
  absl::StatusOr<bool> Serving() override;

  // What the tier did, since it was made.
  struct Counters {
    uint64_t under_replicated_writes = 0;  // stored, with fewer copies
    uint64_t write_failovers = 0;          // copies that went past a member
    uint64_t read_failovers = 0;           // reads passed on after an error
    uint64_t failed_deletes = 0;           // copies a member could not delete
    // Copies evicted while two other members held the page: each leaves a
    // page short of a copy until Repair.
    uint64_t spare_copies_evicted = 0;
  };
  Counters counters() const;

  // The members now, and whether member `name` is suspect now.
  std::vector<std::string> member_names() const;
  bool suspect(absl::string_view name) const;
  // Counts each change of the members or of which of them answer (one
  // became suspect, or answered again): a repair is due after a change.
  uint64_t reachability_changes() const { return reachability_changes_; }

 private:
  class Watcher;

  // One server of the tier as this client sees it, shared by the
  // memberships that list it.
  struct Member {
    std::string name;
    std::unique_ptr<PageClient> client;
    double weight;
    std::atomic<bool> suspect{false};
  };
  // The members at one moment: each call takes one and indexes into it.
  struct Membership {
    std::vector<std::shared_ptr<Member>> members;
    std::vector<RankedMember> ranked;
    int replicas;  // the copies asked for, at most the members
    size_t depth;  // candidates tried: replicas + spares, at most all
  };

  TierClient(int replicas, int group_shift, absl::Duration probe_every,
             EdgeCompression compression);

  std::shared_ptr<const Membership> Snapshot() const;
  // Makes `members` the membership. Requires membership_mu_.
  void Install(std::vector<std::shared_ptr<Member>> members);
  // The members of `now` to try for `key` of `tenant`, best first: the
  // first replicas + spares in rank, suspects after the others.
  std::vector<size_t> Candidates(const Membership& now,
                                 absl::string_view tenant, uint64_t key) const;
  // Notes how `member` failed: a member that did not answer is suspect.
  void NoteFault(Member& member, const absl::Status& status);
  // Asks suspect members whether they serve again, every probe_every.
  void Probe();
  // The copies of `key` other than the one `from` evicts: those held by
  // candidates that answer now and whose own copy was not let go. The
  // evicted copy is a spare when the others are enough to lose a member
  // (two; one at replicas = 1): it is then recorded as dropped, to be acked.
  struct OtherCopies {
    bool spare = false;
    std::vector<std::shared_ptr<Member>> holders;
  };
  OtherCopies FindOtherCopies(absl::string_view tenant, uint64_t key,
                              const Member& from);
  // The caller took the last copy `from` evicted: it is recorded as let go,
  // and the copies `holders` still have are deleted.
  void ForgetCopies(absl::string_view tenant, uint64_t key, const Member& from,
                    const std::vector<std::shared_ptr<Member>>& holders);

  const int replicas_wanted_;
  const int group_shift_;
  const EdgeCompression compression_;

  mutable std::mutex membership_mu_;
  std::shared_ptr<const Membership> membership_;  // guarded by membership_mu_

  std::atomic<uint64_t> under_replicated_writes_{0};
  std::atomic<uint64_t> write_failovers_{0};
  std::atomic<uint64_t> read_failovers_{0};
  std::atomic<uint64_t> failed_deletes_{0};
  std::atomic<uint64_t> reachability_changes_{0};
  std::atomic<uint64_t> spare_copies_evicted_{0};

  // Orders eviction decisions and the dropping of extra copies by Repair.
  std::mutex copies_mu_;
  DroppedCopies dropped_;  // guarded by copies_mu_

  const absl::Duration probe_every_;
  std::mutex probe_mu_;
  std::condition_variable probe_wake_;
  bool stopping_ = false;  // guarded by probe_mu_
  std::thread prober_;
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_TIER_TIER_CLIENT_H_
