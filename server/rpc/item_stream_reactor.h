// ItemStreamReactor: a bidirectional stream of independent items, answered
// one response per request, in request order (PutStream, GetStream).
//
// Each request is handled as it is read, straight into a response slot; the
// slot is serialized and joins a queue that one write at a time drains.
// Reading pauses while kMaxQueuedResponses wait, so a client that does not
// read its responses cannot make the server buffer without bound; and the
// serialized responses of every stream are charged to one buffer budget
// (--stream_buffer_bytes): past it, a stream reads its next request only
// once its queue is empty, so thousands of streams that read nothing hold
// the budget and one response each, and well-behaved streams go on at depth
// one. A response's message is emptied once serialized, so what a slot holds
// is what is charged.
// A write with more responses queued behind it is marked as buffered: gRPC
// then sends the run in one system call instead of one per response, and
// the last write of every run is unbuffered, so nothing waits for a flush. An
// item whose outcome comes later (a Put that must wait for evictions) is
// deferred: the next request is read only after its handler calls
// ItemDone(), which keeps the order, and no thread waits meanwhile.
//
// Handlers report each item's outcome in its response; nothing an item does
// ends the stream. A message that does not parse does: the responses
// before it are written, and the call ends with INVALID_ARGUMENT saying
// which message it was (raw_message.h).

#ifndef ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_
#define ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/support/server_callback.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/raw_message.h"

namespace zpaged {

// The stream's side of a deferred item.
class DeferredItem {
 public:
  // The deferred item's response is filled: send it and go on. Once.
  virtual void ItemDone() = 0;

 protected:
  ~DeferredItem() = default;
};

template <typename Request, typename Response>
class ItemStreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public DeferredItem {
 public:
  // Fills the response for one request and returns true; or returns false
  // and calls `deferred->ItemDone()` once it has filled it, from any thread.
  // The request and response stay valid until then.
  using Handler =
      std::function<bool(const Request&, Response*, DeferredItem* deferred)>;

  static constexpr size_t kMaxQueuedResponses = 64;

  // All pointers must outlive the stream; `observer` may be null. Deletes
  // itself in OnDone.
  ItemStreamReactor(grpc::CallbackServerContext* context, RpcMethod method,
                    Handler handler, CallObserver* observer,
                    MemoryBudget* buffer_budget)
      : context_(context),
        method_(method),
        handler_(std::move(handler)),
        observer_(observer),
        buffer_budget_(buffer_budget),
        start_(absl::Now()) {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < kSlots; ++i) free_[i] = kSlots - 1 - i;
    free_count_ = kSlots;
    TakeSlotAndRead();
  }

  void OnReadDone(bool ok) override {
    ++messages_read_;
    grpc::Status parsed;
    if (ok) parsed = ParseMessage(*context_, raw_request_, &request_);
    if (!ok || !parsed.ok()) {
      MutexLock lock(&mu_);
      reads_done_ = true;
      if (!parsed.ok()) {
        status_ = grpc::Status(
            parsed.error_code(),
            absl::StrCat("message ", messages_read_,
                         " of the stream: ", parsed.error_message(),
                         "; the stream ends after answering the ",
                         messages_read_ - 1, " before it"));
      }
      MaybeFinish();
      return;
    }
    // The slot at filling_ belongs to this read path until Queue().
    if (observer_ != nullptr) observer_->OnPages(method_, 1);
    Response& response = slots_[filling_];
    response.Clear();
    if (handler_(request_, &response, this)) Queue();
  }

  void ItemDone() override { Queue(); }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    FreeOldest();
    if (!ok) {
      // The client is gone: drop what is queued; the failed read that
      // follows finishes the call.
      while (queued_ > 0) FreeOldest();
      broken_ = true;
    }
    writing_ = queued_ > 0;
    if (writing_) WriteOldest();
    if (read_paused_ && MayRead()) {
      read_paused_ = false;
      TakeSlotAndRead();
    }
    MaybeFinish();
  }

  void OnDone() override {
    {
      MutexLock lock(&mu_);
      while (queued_ > 0) FreeOldest();
    }
    delete this;
  }

 private:
  // One slot is being filled while up to kMaxQueuedResponses wait.
  static constexpr size_t kSlots = kMaxQueuedResponses + 1;

  // Queues the response of the item just handled, and reads the next
  // request unless kMaxQueuedResponses are waiting.
  void Queue() {
    SerializeMessage(slots_[filling_], &raw_slots_[filling_]);
    slots_[filling_] = Response();  // frees its bytes: raw_slots_ has them
    charged_[filling_] = raw_slots_[filling_].Length();
    buffer_budget_->ChargeAnyway(charged_[filling_]);
    MutexLock lock(&mu_);
    if (broken_) {
      Free(filling_);
    } else {
      queue_[(oldest_ + queued_) % kSlots] = filling_;
      ++queued_;
      if (!writing_) {
        writing_ = true;
        WriteOldest();
      }
    }
    if (MayRead()) {
      TakeSlotAndRead();
    } else {
      read_paused_ = true;
    }
  }

  // Whether the next request may be read now: fewer than
  // kMaxQueuedResponses wait, and the buffer budget has room or this
  // stream's queue is empty.
  bool MayRead() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queued_ >= kMaxQueuedResponses) return false;
    return queued_ == 0 ||
           buffer_budget_->used_bytes() < buffer_budget_->limit_bytes();
  }

  // Releases a slot's serialized response and its charge, and frees it.
  void Free(uint8_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    raw_slots_[slot].Clear();
    buffer_budget_->Release(charged_[slot]);
    free_[free_count_++] = slot;
  }

  // Takes the oldest queued response off the queue and frees its slot.
  void FreeOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Free(queue_[oldest_]);
    oldest_ = (oldest_ + 1) % kSlots;
    --queued_;
  }

  void TakeSlotAndRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    filling_ = free_[--free_count_];
    this->StartRead(&raw_request_);
  }

  void WriteOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    grpc::WriteOptions options;
    if (queued_ > 1) options.set_buffer_hint();
    this->StartWrite(&raw_slots_[queue_[oldest_]], options);
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!reads_done_ || writing_ || finished_) return;
    finished_ = true;
    if (observer_ != nullptr) {
      observer_->OnCallFinished(method_, status_.error_code(),
                                absl::Now() - start_);
    }
    this->Finish(status_);
  }

  grpc::CallbackServerContext* const context_;
  const RpcMethod method_;
  const Handler handler_;
  CallObserver* const observer_;
  MemoryBudget* const buffer_budget_;
  const absl::Time start_;
  grpc::ByteBuffer raw_request_;  // the read in flight
  Request request_;               // the item being handled
  uint64_t messages_read_ = 0;    // by the read path alone
  std::array<Response, kSlots> slots_;
  std::array<grpc::ByteBuffer, kSlots> raw_slots_;  // slots_, serialized
  std::array<size_t, kSlots> charged_{};  // raw_slots_' charge to the budget
  // The slot of the read in flight or the item being handled: set under
  // mu_ before StartRead, then used by the read path alone.
  uint8_t filling_ = 0;

  Mutex mu_;
  std::array<uint8_t, kSlots> queue_ ABSL_GUARDED_BY(mu_);  // a ring
  size_t oldest_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint8_t, kSlots> free_ ABSL_GUARDED_BY(mu_);  // a stack
  size_t free_count_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);  // the call's, once reads end
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_
