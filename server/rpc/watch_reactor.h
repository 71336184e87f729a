// WatchReactor: one WatchEvictions stream, server side: the gRPC half of a
// watcher. Everything about deliveries, acks, deadlines and stalls is the
// EvictionBroker's; this class only moves messages.
//
// The client's first message subscribes it to a tenant (authorized like any
// call on that tenant: UNAUTHENTICATED, PERMISSION_DENIED); from then on the
// broker queues evicted pages on it (Send) and each ack the client sends goes
// to the broker. Writes go out one at a time: OnWriteDone starts the next.
// Rules a client must keep, each ending the stream with INVALID_ARGUMENT:
// every message parses (raw_message.h); the first names a valid tenant and
// no sequence; later ones carry a sequence this stream sent and has not had
// acked, and no tenant.
//
// gRPC never runs this reactor's callbacks inline from StartWrite or Finish,
// so those are issued under the reactor's lock; the broker is never called
// with it held.

#ifndef ZPAGED_SERVER_RPC_WATCH_REACTOR_H_
#define ZPAGED_SERVER_RPC_WATCH_REACTOR_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/auth/authorizer.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_broker.h"
#include "server/evict/watcher_channel.h"
#include "server/rpc/call_observer.h"
#include "zpaged/v1/page_store.pb.h"

namespace zpaged {

class WatchReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public WatcherChannel {
 public:
  // Pages queued for the client and not yet written, at most. A client that
  // does not read (its flow-control window full) holds no more of the
  // server's memory than this; further pages are refused, and the broker
  // tries another watcher or leaves them stored. The queued pages are
  // charged to `buffer_budget`, shared by every stream: past its limit,
  // pages are refused the same way.
  static constexpr size_t kMaxOutboxPages = 64;

  // Starts reading the subscription. Deletes itself in OnDone. `observer`
  // may be null; every pointer must outlive the stream.
  WatchReactor(grpc::CallbackServerContext* context, EvictionBroker* broker,
               const Authorizer* authorizer, CallObserver* observer,
               MemoryBudget* buffer_budget);

  // WatcherChannel, for the broker.
  bool Send(const OutgoingPage& page) override;
  void Close(const absl::Status& status) override;

  // Checks the stream's token against the authorizer's tokens now (after a
  // reload) and ends the stream with PERMISSION_DENIED or UNAUTHENTICATED
  // if it no longer grants `tenant`. Only while attached: the broker calls
  // it, with its lock held, through VisitChannels.
  void Reauthorize(absl::string_view tenant);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  // Subscribes to the tenant the first message names.
  void Subscribe();
  // Leaves the broker, then FinishOnce.
  void End(const grpc::Status& status);
  // Ends the stream with `status` unless it is already ending.
  void FinishOnce(const grpc::Status& status);
  // The broker's name for this watcher, once subscribed.
  std::optional<EvictionBroker::WatcherId> id();
  // Drops the oldest page of the outbox and its charge.
  void PopOutbox() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  EvictionBroker* const broker_;
  const Authorizer* const authorizer_;
  CallObserver* const observer_;
  MemoryBudget* const buffer_budget_;
  const absl::Time start_;
  grpc::ByteBuffer raw_incoming_;  // the read in flight
  v1::EvictionAck incoming_;       // parsed; only the read path uses it

  Mutex mu_;
  std::optional<EvictionBroker::WatcherId> id_ ABSL_GUARDED_BY(mu_);
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;  // told the client so
  // The encodings the subscription takes pages in as stored; others are
  // expanded here and sent whole.
  PageEncodingSet accept_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Pages not yet written, serialized and charged to buffer_budget_; the
  // front one is being written while writing_.
  std::deque<grpc::ByteBuffer> outbox_ ABSL_GUARDED_BY(mu_);
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_WATCH_REACTOR_H_
