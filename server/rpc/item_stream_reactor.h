// ItemStreamReactor: a bidirectional stream of independent items, answered
// one response per request, in request order (PutStream, GetStream).
//
// Each request is handled as it is read; its response joins an outbox that
// one write at a time drains. Reading pauses while the outbox holds
// kMaxQueuedResponses, so a client that does not read its responses cannot
// make the server buffer without bound. An item whose handling may block
// (a Put that must wait for evictions) goes to the BlockingExecutor, and the
// next request is read only after it is done, which keeps the order.
//
// Handlers report each item's outcome in its response; nothing an item does
// ends the stream.

#ifndef ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_
#define ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_

#include <deque>
#include <functional>
#include <utility>

#include "absl/time/clock.h"
#include "grpcpp/support/server_callback.h"
#include "server/core/mutex.h"
#include "server/rpc/blocking_executor.h"
#include "server/rpc/call_observer.h"

namespace zpaged {

template <typename Request, typename Response>
class ItemStreamReactor final
    : public grpc::ServerBidiReactor<Request, Response> {
 public:
  // Fills the response for one request without blocking and returns true,
  // or returns false if the item must go to `blocking` instead.
  using Handler = std::function<bool(const Request&, Response*)>;
  // Fills the response for one request; may block.
  using BlockingHandler = std::function<void(const Request&, Response*)>;

  static constexpr size_t kMaxQueuedResponses = 64;

  // All pointers must outlive the stream; `observer` may be null. Deletes
  // itself in OnDone.
  ItemStreamReactor(RpcMethod method, Handler handler, BlockingHandler blocking,
                    BlockingExecutor* executor, CallObserver* observer)
      : method_(method),
        handler_(std::move(handler)),
        blocking_(std::move(blocking)),
        executor_(executor),
        observer_(observer),
        start_(absl::Now()) {
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      MutexLock lock(&mu_);
      reads_done_ = true;
      MaybeFinish();
      return;
    }
    Response response;
    if (handler_(request_, &response)) {
      Queue(std::move(response));
      return;
    }
    executor_->Submit([this] {
      Response response;
      blocking_(request_, &response);
      Queue(std::move(response));
    });
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    outbox_.pop_front();
    if (!ok) {
      // The client is gone: drop what is queued; the failed read that
      // follows finishes the call.
      outbox_.clear();
      broken_ = true;
    }
    writing_ = !outbox_.empty();
    if (writing_) this->StartWrite(&outbox_.front());
    if (read_paused_ && outbox_.size() < kMaxQueuedResponses) {
      read_paused_ = false;
      this->StartRead(&request_);
    }
    MaybeFinish();
  }

  void OnDone() override { delete this; }

 private:
  // Adds the response of the item just handled and reads the next request
  // unless the outbox is full.
  void Queue(Response response) {
    MutexLock lock(&mu_);
    if (!broken_) {
      outbox_.push_back(std::move(response));
      if (!writing_) {
        writing_ = true;
        this->StartWrite(&outbox_.front());
      }
    }
    if (outbox_.size() >= kMaxQueuedResponses) {
      read_paused_ = true;
    } else {
      this->StartRead(&request_);
    }
  }

  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!reads_done_ || writing_ || finished_) return;
    finished_ = true;
    if (observer_ != nullptr) {
      observer_->OnCallFinished(method_, grpc::StatusCode::OK,
                                absl::Now() - start_);
    }
    this->Finish(grpc::Status::OK);
  }

  const RpcMethod method_;
  const Handler handler_;
  const BlockingHandler blocking_;
  BlockingExecutor* const executor_;
  CallObserver* const observer_;
  const absl::Time start_;
  Request request_;  // the read in flight, or the item being handled

  Mutex mu_;
  std::deque<Response> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_ITEM_STREAM_REACTOR_H_
