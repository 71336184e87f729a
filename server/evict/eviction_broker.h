// EvictionBroker: the store's EvictionSink, made of the tenants' watchers.
// Everything that guarantees an evicted page is never lost, and that a
// backing store never goes back to an older copy, is in this one unit.
//
//   Tenant ──Deliver(tenant, key, page, done)──> EvictionBroker
//     ^                                            │ a ready watcher of that
//     │                                            │ tenant, round robin
//     │                                            v
//     │                    WatcherChannel ──page, sequence──> client
//     │                                            ^             │
//     └──done(acked | timed out | disconnected)── Ack(sequence) ─┘
//
// Nothing waits: Deliver queues the page on a channel and returns; the ack
// (from the channel's owner), the deadline (the broker's one timer thread)
// or the watcher leaving (Detach) resolves it, once, by calling `done` with
// no broker lock held.
//
// The rules:
// - A page goes only to a watcher of the page's own tenant.
// - One copy of a key awaits an ack at a time, across all of a tenant's
//   watchers. A backing store keeps the copy of a key that was acked last,
//   so copies must be acked in the order they were stored: were a newer copy
//   delivered while an older one is out, the older one's ack could land last
//   and replace it. A key is held from Deliver until its copy is acked or its
//   watcher leaves, even past the deadline: a watcher that missed the
//   deadline may still write the page and ack late. Deliver refuses a held
//   key, and reclaim moves on along the LRU.
// - A watcher that lets a deadline pass is stalled: it gets no pages until
//   it acks again, so one stuck client costs a reclaim one deadline, not one
//   per page.
// - An ack names a sequence this watcher sent and has not had acked;
//   anything else is INVALID_ARGUMENT.
//
// Lock order: callers' locks (a tenant's index) before the broker's; the
// broker's before a channel's. Channels never call the broker under their
// own lock, and the broker never calls `done` under its own.

#ifndef ZPAGED_SERVER_EVICT_EVICTION_BROKER_H_
#define ZPAGED_SERVER_EVICT_EVICTION_BROKER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_sink.h"
#include "server/evict/watcher_channel.h"

namespace zpaged {

struct BrokerOptions {
  // How long a delivered page waits for its ack before the delivery counts
  // as timed out and the watcher as stalled.
  absl::Duration ack_deadline = absl::Seconds(5);
  // Watchers one tenant may have at once; Attach refuses more.
  size_t max_watchers_per_tenant = 16;
  // Tenants that may have watchers at once, whether or not they store
  // pages: past it, a watcher on a new tenant name that holds pages
  // displaces the watchers of one that holds none (their streams end with
  // RESOURCE_EXHAUSTED), and any other is refused. The server sets it to
  // --max_tenants.
  size_t max_watched_tenants = 1024;
  // Whether a tenant holds pages; asked without the broker's lock. Empty:
  // every tenant is taken to hold some, and none is displaced.
  std::function<bool(absl::string_view tenant)> holds_pages;
  // Told how long each ack took (for a histogram); may be empty.
  std::function<void(absl::Duration)> on_ack;
  // Receives one line, without a newline, for each watcher that connects,
  // disconnects, stalls or recovers. Empty: the lines go to stderr.
  std::function<void(const std::string&)> log;
};

// A tenant's watchers, as metrics see them.
struct WatcherCounts {
  uint64_t watchers = 0;
  uint64_t stalled = 0;
  uint64_t in_flight = 0;  // pages delivered and awaiting their ack in time
};

class EvictionBroker final : public EvictionSink {
 public:
  using WatcherId = uint64_t;

  explicit EvictionBroker(BrokerOptions options);
  // Stop()s. Deliveries still unresolved are dropped uncalled, so every
  // watcher should be detached first (Shutdown, then wait for the channels'
  // owners to Detach).
  ~EvictionBroker() override;

  EvictionBroker(const EvictionBroker&) = delete;
  EvictionBroker& operator=(const EvictionBroker&) = delete;

  // EvictionSink; see the rules above.
  bool CanAccept(absl::string_view tenant) override;
  absl::Status Deliver(absl::string_view tenant, uint64_t key, PageBytes page,
                       DeliveryDone done) override;

  // Subscribes `channel` to `tenant`'s evictions; it must stay valid until
  // Detach returns. RESOURCE_EXHAUSTED when the tenant has its maximum of
  // watchers, or it has none and max_watched_tenants have some;
  // UNAVAILABLE once Shutdown has begun. An `exclusive` watcher is the
  // tenant's only one, the mark of its one writer (the NBD bridge): it is
  // refused while the tenant has another, and while it stays any other is
  // (FAILED_PRECONDITION both ways).
  absl::StatusOr<WatcherId> Attach(absl::string_view tenant,
                                   WatcherChannel* channel,
                                   bool exclusive = false);

  // The watcher is gone: deliveries awaiting its ack end as kDisconnected
  // (the pages stay stored), and the keys it held are let go. After it
  // returns the broker never touches the channel again. Idempotent.
  void Detach(WatcherId watcher);

  // The watcher acked `sequence`: the page is safe in its backing store.
  // Recovers a stalled watcher. INVALID_ARGUMENT if this watcher never sent
  // that sequence, or it was acked already; NOT_FOUND for a detached one.
  absl::Status Ack(WatcherId watcher, uint64_t sequence);

  // Refuses new watchers and deliveries and Closes every channel with
  // UNAVAILABLE. Their owners still Detach them.
  void Shutdown();

  // Stops the deadline timer and waits for it: when Stop returns, every
  // outcome the timer resolved has been delivered, and it resolves no more.
  // A deadline passes unnoticed afterwards. Call it once every watcher is
  // detached and before destroying what the `done` callbacks touch (the
  // timer calls them without the broker's lock, so one may still be running
  // after the last Detach). Idempotent.
  void Stop();

  // Watchers attached to `tenant` now.
  size_t WatcherCount(absl::string_view tenant);

  // Calls `visit` for every attached channel and its tenant, with the
  // broker's lock held: `visit` may Close a channel but must not call the
  // broker.
  void VisitChannels(
      absl::FunctionRef<void(absl::string_view tenant, WatcherChannel&)> visit);

  // Every tenant with a watcher, for metrics.
  std::vector<std::pair<std::string, WatcherCounts>> CountsByTenant();

 private:
  struct Delivery {
    uint64_t key;
    absl::Time sent;
    DeliveryDone done;
  };
  struct Watcher {
    WatcherId id;
    std::string tenant;
    WatcherChannel* channel;
    bool stalled = false;
    uint64_t next_sequence = 1;
    // Delivered, within the deadline; by sequence.
    absl::flat_hash_map<uint64_t, Delivery> awaiting;
    // Past the deadline but not acked: the key of each, by sequence.
    absl::flat_hash_map<uint64_t, uint64_t> overdue;
  };
  struct TenantWatchers {
    std::vector<Watcher*> watchers;  // in attach order, for round robin
    size_t next_pick = 0;
    // The one watcher is exclusive. The group goes when it detaches.
    bool exclusive = false;
    // Its watchers were closed for a tenant that holds pages; the group
    // no longer counts against max_watched_tenants, and takes no watcher.
    bool displaced = false;
    // Every key with a copy out (awaiting or overdue), and who holds it.
    absl::flat_hash_map<uint64_t, WatcherId> held_keys;
  };
  struct Expiry {
    absl::Time deadline;
    WatcherId watcher;
    uint64_t sequence;
  };

  // Attach, once: `at_tenant_limit` says whether it was refused for the
  // watched-tenant limit.
  absl::StatusOr<WatcherId> TryAttach(absl::string_view tenant,
                                      WatcherChannel* channel, bool exclusive,
                                      bool* at_tenant_limit);
  // Closes the watchers of one watched tenant that holds no pages, to make
  // room for one that does; false if there is none.
  bool DisplaceIdleTenant();

  // Runs on timer_: moves deliveries past their deadline to overdue.
  void ExpireLoop();
  // Drops the front expiries whose deliveries were already resolved.
  void TrimExpiries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Watcher* FindWatcher(WatcherId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(const std::string& line);

  const BrokerOptions options_;

  Mutex mu_;
  CondVar expiry_added_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  WatcherId next_watcher_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<WatcherId, std::unique_ptr<Watcher>> watchers_
      ABSL_GUARDED_BY(mu_);
  size_t displaced_groups_ = 0;  // in tenants_; guarded by mu_
  absl::flat_hash_map<std::string, TenantWatchers> tenants_
      ABSL_GUARDED_BY(mu_);
  // Every delivery has the same deadline after its send, so sending order
  // is deadline order and a FIFO is the timer's whole schedule.
  std::deque<Expiry> expiries_ ABSL_GUARDED_BY(mu_);

  std::thread timer_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_EVICT_EVICTION_BROKER_H_
