// EvictionHub: the store's EvictionSink, made of the tenants' WatchEvictions
// streams.
//
//   Tenant::Evict ──Deliver(tenant, key, page)──> EvictionHub
//        (blocks until ack or deadline)            │ picks a ready watcher of
//                                                  │ that tenant, round robin
//                                                  v
//                                   WatchReactor ──EvictedPage──> client
//                                        ^                          │
//                                        └───────EvictionAck────────┘
//
// A page goes only to a watcher subscribed to the page's own tenant. A
// watcher that lets an ack deadline pass is stalled: it gets no more pages
// until it acks again, so one stuck client costs a reclaim one deadline, not
// one per page.
//
// The page whose deadline passed stays stored, but the watcher may still
// write it to its backing store and ack late. Until it does, or its stream
// ends, no other copy of that key goes to any watcher of the tenant: a newer
// copy written first would be overwritten by the older one. (Tenant already
// keeps to one eviction per key at a time; this carries that past the
// deadline.)
//
// Lock order: the hub's lock before any reactor's. Reactors never call into
// the hub while holding their own lock.

#ifndef ZPAGED_SERVER_RPC_EVICTION_HUB_H_
#define ZPAGED_SERVER_RPC_EVICTION_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/core/mutex.h"
#include "server/store/eviction_sink.h"

namespace zpaged {

class WatchReactor;

// One page on its way to a watcher, waiting for the ack.
struct PendingAck {
  // kExpired: the ack deadline passed; kFailed: the watcher went away.
  enum class State { kWaiting, kAcked, kExpired, kFailed };

  Mutex mu;
  CondVar changed;
  State state ABSL_GUARDED_BY(mu) = State::kWaiting;
  std::string failure ABSL_GUARDED_BY(mu);

  // Moves out of kWaiting, once, and wakes the waiter.
  void Resolve(State to, absl::string_view why = "");
};

class EvictionHub final : public EvictionSink {
 public:
  // At most `max_watchers_per_tenant` streams may watch one tenant.
  EvictionHub(absl::Duration ack_deadline, size_t max_watchers_per_tenant);

  // EvictionSink. Deliver: OK once acked; UNAVAILABLE when the tenant has no
  // ready watcher, the watcher went away, or a watcher holds an overdue copy
  // of the key; DEADLINE_EXCEEDED when the ack did not come in time (the
  // watcher is then stalled, and the copy overdue).
  bool CanAccept(absl::string_view tenant) override;
  absl::Status Deliver(absl::string_view tenant, uint64_t key,
                       absl::Span<const uint8_t> page) override;

  // For WatchReactor: adds or removes a subscribed stream. Register fails
  // with UNAVAILABLE once Shutdown has begun, RESOURCE_EXHAUSTED when the
  // tenant has its maximum of watchers. Unregister is idempotent.
  absl::Status Register(const std::string& tenant, WatchReactor* watcher);
  void Unregister(const std::string& tenant, WatchReactor* watcher);

  // Ends every stream with UNAVAILABLE and refuses new ones.
  void Shutdown();

  // Streams subscribed to `tenant` now.
  size_t WatcherCount(absl::string_view tenant);

 private:
  const absl::Duration ack_deadline_;
  const size_t max_watchers_per_tenant_;
  Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<WatchReactor*>> watchers_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_pick_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_EVICTION_HUB_H_
