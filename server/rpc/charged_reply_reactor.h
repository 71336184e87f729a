// ChargedReplyReactor: the reactor of a unary call whose reply is large
// (GetBatch: up to 1 MiB). A reply stays with gRPC until the client reads
// it, and a client that never reads (an HTTP/2 window of 0) would make the
// server hold one per call without bound; so the reply is charged to a
// budget, and the charge is released when the call is done (OnDone), read
// or abandoned.
//
// Unlike the default reactor, gRPC runs OnDone on another thread (about
// 4 us of server CPU a call): worth it for batches, not for single pages.

#ifndef ZPAGED_SERVER_RPC_CHARGED_REPLY_REACTOR_H_
#define ZPAGED_SERVER_RPC_CHARGED_REPLY_REACTOR_H_

#include <cstdint>

#include "absl/status/status.h"
#include "grpcpp/support/server_callback.h"
#include "server/core/memory_budget.h"

namespace zpaged {

class ChargedReplyReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit ChargedReplyReactor(MemoryBudget* budget) : budget_(budget) {}

  // Charges a reply of `bytes`, once; RESOURCE_EXHAUSTED naming the limit
  // if the budget cannot take it.
  absl::Status Charge(uint64_t bytes) {
    absl::Status charged = budget_->Charge(bytes);
    if (charged.ok()) charged_ = bytes;
    return charged;
  }

  void OnDone() override {
    budget_->Release(charged_);
    delete this;
  }

 private:
  MemoryBudget* const budget_;
  uint64_t charged_ = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_CHARGED_REPLY_REACTOR_H_
