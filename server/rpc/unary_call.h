// UnaryCall: one unary call of the service, from the raw request to the
// serialized response: its request and response (on one protobuf arena,
// whose first block holds a whole call apart from large byte fields), and
// what the metrics need at its end.
//
// The service creates one per call (Create), parses the request into it and
// waits for the client's end of stream (ParseThen), and finishes it with
// Reply from whichever thread has the outcome. It lives in gRPC's arena for the
// call, and so does its own arena's first block: a call costs no heap
// allocation of its own. The call runs on gRPC's default reactor, whose
// completion gRPC runs inline; a reactor of our own would cost every call a hop
// to another thread for its OnDone (measured: about 4 us of server CPU per
// call).

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

  // Makes sure the request `context`'s call received was its only message,
  // parses it, then calls `serve()`. Otherwise finishes the call (and this
  // is destroyed) with INVALID_ARGUMENT.
  //
  // gRPC 1.51 hands a unary handler the first message and never looks at
  // the rest: a unary call that carried two was answered OK, the second
  // message silently dropped. So the call asks gRPC for one more message,
  // which a well-behaved client's end of stream (sent with its message)
  // answers at once with none. The request is parsed only then: a call
  // whose client holds its stream open holds no more memory than gRPC's
  // own (its quota's) until it ends. `serve` runs on this thread after the
  // caller returns, or on the thread that sees the end of stream; nothing
  // of this may be touched after the call.
  template <typename Serve>
  void ParseThen(grpc::CallbackServerContext& context,
                 const grpc::ByteBuffer& raw_request, Serve serve) {
    // Asked before the next read, which may change what it reads.
    if (grpc::Status decompressed = CheckDecompressed(context);
        !decompressed.ok()) {
      Reply(decompressed);
      return;
    }
    using Check = EndOfRequestCheck<Serve>;
    auto* check = new (grpc_call_arena_alloc(context.c_call(), sizeof(Check)))
        Check(this, &raw_request, std::move(serve));
    grpc_op op{};
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &check->extra_message;
    if (grpc_call_start_batch(context.c_call(), &op, 1, check, nullptr) !=
        GRPC_CALL_OK) {
      check->~Check();
      Reply(grpc::Status(grpc::StatusCode::INTERNAL,
                         "could not read the request's end of stream"));
    }
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

  // The completion of ParseThen's read: in the call's arena, run by gRPC's
  // callback completion queue. Inlineable: it runs in the thread that
  // completes the read, as gRPC runs unary handlers, and no thread hop is
  // added to every call.
  template <typename Serve>
  struct EndOfRequestCheck : grpc_completion_queue_functor {
    EndOfRequestCheck(UnaryCall* call, const grpc::ByteBuffer* raw_request,
                      Serve serve)
        : call(call), raw_request(raw_request), serve(std::move(serve)) {
      functor_run = &Run;
      inlineable = 1;
    }
    static void Run(grpc_completion_queue_functor* functor, int ok) {
      auto* self = static_cast<EndOfRequestCheck*>(functor);
      UnaryCall* const call = self->call;
      const grpc::ByteBuffer* const raw_request = self->raw_request;
      Serve serve = std::move(self->serve);
      grpc_byte_buffer* const extra = self->extra_message;
      self->~EndOfRequestCheck();
      if (extra != nullptr) {
        grpc_byte_buffer_destroy(extra);
        call->Reply(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            "a unary call carries one request message; this one carried "
            "more (use PutStream or GetStream to send many)"));
        return;
      }
      if (!ok) {
        call->Reply(grpc::Status(grpc::StatusCode::CANCELLED,
                                 "the call ended before its request did"));
        return;
      }
      const grpc::Status parsed =
          ParseMessageBytes(*raw_request, call->request_);
      if (!parsed.ok()) {
        call->Reply(parsed);
        return;
      }
      serve();
    }
    UnaryCall* const call;
    const grpc::ByteBuffer* const raw_request;
    Serve serve;
    grpc_byte_buffer* extra_message = nullptr;
  };

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
