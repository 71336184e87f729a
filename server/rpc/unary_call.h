// UnaryCall: one unary call of the service, from the raw request to the
// serialized response: its request and response (on one protobuf arena,
// whose first block holds a whole call apart from large byte fields), and
// what the metrics need at its end.
//
// The service creates one per call (Create), parses the request into it
// (Parse), and finishes it with Reply from whichever thread has the
// outcome. It lives in gRPC's arena for the call, and so does its own
// arena's first block: a call costs no heap allocation of its own. The call
// runs on gRPC's default reactor, whose completion gRPC runs inline; a
// reactor of our own would cost every call a hop to another thread for its
// OnDone (measured: about 4 us of server CPU per call).

#ifndef ZPAGED_SERVER_RPC_UNARY_CALL_H_
#define ZPAGED_SERVER_RPC_UNARY_CALL_H_

#include <cstddef>
#include <new>
#include <utility>

#include "absl/time/clock.h"
#include "google/protobuf/arena.h"
#include "grpc/grpc.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/raw_message.h"
#include "server/rpc/request_admission.h"

namespace zpaged {

template <typename Request, typename Response>
class UnaryCall final {
 public:
  // A call of `context`, whose response goes to `raw_response` (gRPC's,
  // for this call); `observer` may be null. `first_block_bytes`: the
  // message arena's first block, which should hold a whole call apart from
  // large byte fields.
  static UnaryCall* Create(grpc::CallbackServerContext& context,
                           RpcMethod method, CallObserver* observer,
                           grpc::ByteBuffer* raw_response,
                           size_t first_block_bytes) {
    return Create(context, context.DefaultReactor(), method, observer,
                  raw_response, first_block_bytes);
  }
  // The same, finished through `reactor` instead of gRPC's default one.
  static UnaryCall* Create(grpc::CallbackServerContext& context,
                           grpc::ServerUnaryReactor* reactor, RpcMethod method,
                           CallObserver* observer,
                           grpc::ByteBuffer* raw_response,
                           size_t first_block_bytes) {
    void* memory = grpc_call_arena_alloc(context.c_call(), sizeof(UnaryCall));
    google::protobuf::ArenaOptions options;
    options.initial_block = static_cast<char*>(
        grpc_call_arena_alloc(context.c_call(), first_block_bytes));
    options.initial_block_size = first_block_bytes;
    return new (memory)
        UnaryCall(reactor, method, observer, raw_response, options);
  }

  UnaryCall(const UnaryCall&) = delete;
  UnaryCall& operator=(const UnaryCall&) = delete;

  // Parses the request `context`'s call received. Returns false once the
  // call is finished (and this destroyed) with INVALID_ARGUMENT because it
  // does not parse.
  bool Parse(grpc::CallbackServerContext& context,
             const grpc::ByteBuffer& raw_request) {
    const grpc::Status parsed = ParseMessage(context, raw_request, request_);
    if (parsed.ok()) return true;
    Reply(parsed);
    return false;
  }

  const Request& request() const { return *request_; }
  Response* response() { return response_; }

  // Keeps `ticket` (the request's admission) until the call is finished.
  void Hold(RequestAdmission::Ticket ticket) { admission_ = std::move(ticket); }

  // Finishes the call: with the response if `status` is OK. Once; the call
  // is destroyed then.
  void Reply(const grpc::Status& status) {
    if (observer_ != nullptr) {
      observer_->OnCallFinished(method_, status.error_code(),
                                absl::Now() - start_);
    }
    if (status.ok()) SerializeMessage(*response_, raw_response_);
    // The response is gRPC's now; gRPC frees the memory of this after
    // Finish, so nothing of it may be touched from here on.
    grpc::ServerUnaryReactor* const reactor = reactor_;
    this->~UnaryCall();
    reactor->Finish(status);
  }

 private:
  UnaryCall(grpc::ServerUnaryReactor* reactor, RpcMethod method,
            CallObserver* observer, grpc::ByteBuffer* raw_response,
            const google::protobuf::ArenaOptions& options)
      : reactor_(reactor),
        method_(method),
        observer_(observer),
        raw_response_(raw_response),
        start_(absl::Now()),
        arena_(options),
        request_(google::protobuf::Arena::CreateMessage<Request>(&arena_)),
        response_(google::protobuf::Arena::CreateMessage<Response>(&arena_)) {}
  ~UnaryCall() = default;

  grpc::ServerUnaryReactor* const reactor_;
  const RpcMethod method_;
  CallObserver* const observer_;
  grpc::ByteBuffer* const raw_response_;
  const absl::Time start_;
  google::protobuf::Arena arena_;
  Request* const request_;
  Response* const response_;
  RequestAdmission::Ticket admission_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_UNARY_CALL_H_
