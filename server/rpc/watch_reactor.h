// WatchReactor: one WatchEvictions stream, server side.
//
// The client's first message subscribes it to a tenant; from then on the
// EvictionHub queues evicted pages on it (Send) and the client acks them by
// sequence. Writes go out one at a time: OnWriteDone starts the next.
//
// The subscription is authorized like any call on its tenant
// (UNAUTHENTICATED, PERMISSION_DENIED). Rules a client must keep, each
// ending the stream with INVALID_ARGUMENT:
// the first message names a valid tenant and no sequence; later messages
// carry a sequence this stream has sent, and no tenant.
//
// Every method takes the reactor's own lock; none calls into the hub while
// holding it. gRPC never runs this reactor's callbacks inline from
// StartWrite or Finish, so those are issued under the lock.

#ifndef ZPAGED_SERVER_RPC_WATCH_REACTOR_H_
#define ZPAGED_SERVER_RPC_WATCH_REACTOR_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/authorizer.h"
#include "server/core/mutex.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/eviction_hub.h"
#include "zpaged/v1/page_store.pb.h"

namespace zpaged {

class WatchReactor final
    : public grpc::ServerBidiReactor<v1::EvictionAck, v1::EvictedPage> {
 public:
  // Initial metadata key the server sends once a stream is subscribed and
  // ready for pages; its value is the tenant. Clients wait for it.
  static constexpr char kSubscribedMetadata[] = "zpaged-subscribed";

  // Starts reading the subscription. Deletes itself in OnDone. `observer`
  // may be null.
  WatchReactor(grpc::CallbackServerContext* context, EvictionHub* hub,
               const Authorizer* authorizer, CallObserver* observer);

  // For the hub, which holds its own lock across these calls.
  //
  // Queues a page and returns true with its sequence and the ack to wait on;
  // false if this stream cannot take it (stalled or ending).
  bool Send(absl::string_view tenant, uint64_t key,
            absl::Span<const uint8_t> page, uint64_t* sequence,
            std::shared_ptr<PendingAck>* pending);
  // The ack of `sequence` (waited on through `pending`), a copy of `key`,
  // did not come in time: stop waiting, stall the stream until the client
  // acks something, and hold the copy as overdue until its own ack comes.
  void ExpireAck(uint64_t sequence, const PendingAck* pending, uint64_t key);
  // True while a copy of `key` this stream sent is overdue: the client may
  // still write it.
  bool HoldsOverdueCopyOf(uint64_t key);
  // True if Send would take a page now.
  bool Ready();
  // Ends the stream with `status` unless it is already ending.
  void FinishOnce(const grpc::Status& status);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  // Leaves the hub, then FinishOnce.
  void End(const grpc::Status& status);
  std::string Tenant();
  void FailPending(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  EvictionHub* const hub_;
  const Authorizer* const authorizer_;
  CallObserver* const observer_;
  const absl::Time start_;
  v1::EvictionAck incoming_;  // the read in flight; only OnReadDone reads it

  Mutex mu_;
  std::string tenant_ ABSL_GUARDED_BY(mu_);       // set by the subscribing read
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;  // told the client so
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  // Pages not yet written; the front one is being written while writing_.
  std::deque<v1::EvictedPage> outbox_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<PendingAck>> pending_
      ABSL_GUARDED_BY(mu_);
  // Copies whose ack deadline passed: the key of each by sequence, and how
  // many are overdue of each key.
  absl::flat_hash_map<uint64_t, uint64_t> overdue_key_by_sequence_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint32_t> overdue_copies_of_key_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_WATCH_REACTOR_H_
