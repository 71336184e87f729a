// PageStoreService: zpaged.v1.PageStore on gRPC's callback API.
//
// Every call is authorized first (Authorizer; a no-op without a token
// file). Calls run on gRPC's callback threads and never block there: a Put
// that must wait for evictions, and every Reclaim, finish from the thread
// their last eviction outcome arrives on. WatchEvictions is a WatchReactor
// per stream. absl::Status becomes grpc::Status here and nowhere else.

#ifndef ZPAGED_SERVER_RPC_PAGE_STORE_SERVICE_H_
#define ZPAGED_SERVER_RPC_PAGE_STORE_SERVICE_H_

#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "server/auth/authorizer.h"
#include "server/evict/eviction_broker.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/charged_reply_reactor.h"
#include "server/rpc/request_admission.h"
#include "server/rpc/unary_call.h"
#include "server/store/page_store.h"
#include "zpaged/v1/page_store.grpc.pb.h"

namespace zpaged {

// Every method takes and gives raw bytes: the service parses its requests
// itself, so that one that does not parse is INVALID_ARGUMENT (raw_message.h).
using RawPageStoreService = v1::PageStore::WithRawCallbackMethod_Put<
    v1::PageStore::WithRawCallbackMethod_Get<
        v1::PageStore::WithRawCallbackMethod_Delete<
            v1::PageStore::WithRawCallbackMethod_Reclaim<
                v1::PageStore::WithRawCallbackMethod_WatchEvictions<
                    v1::PageStore::WithRawCallbackMethod_Stats<
                        v1::PageStore::WithRawCallbackMethod_PutStream<
                            v1::PageStore::WithRawCallbackMethod_GetStream<
                                v1::PageStore::WithRawCallbackMethod_PutBatch<
                                    v1::PageStore::WithRawCallbackMethod_GetBatch<
                                        v1::PageStore::
                                            WithRawCallbackMethod_DeleteBatch<
                                                v1::PageStore::
                                                    WithRawCallbackMethod_DeleteAll<
                                                        v1::PageStore::
                                                            Service>>>>>>>>>>>>;

// What the service holds for its callers, at most.
struct ServiceBounds {
  // Responses and evicted pages that streams hold serialized and unwritten,
  // and GetBatch replies until their call is done, all together
  // (ItemStreamReactor, WatchReactor, ChargedReplyReactor).
  uint64_t stream_buffer_bytes;
  // Write requests in flight, per tenant and in all (RequestAdmission).
  RequestAdmission::Limits requests;
};

class PageStoreService final : public RawPageStoreService {
 public:
  // All must outlive the service; `observer` may be null.
  // `node_name` is reported in every Stats answer.
  PageStoreService(PageStore* store, EvictionBroker* broker,
                   const Authorizer* authorizer, CallObserver* observer,
                   const ServiceBounds& bounds, std::string node_name);

  using RawRequest = const grpc::ByteBuffer*;
  using RawResponse = grpc::ByteBuffer*;
  using RawBidiReactor =
      grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                RawRequest request,
                                RawResponse response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                RawRequest request,
                                RawResponse response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   RawRequest request,
                                   RawResponse response) override;
  grpc::ServerUnaryReactor* Reclaim(grpc::CallbackServerContext* context,
                                    RawRequest request,
                                    RawResponse response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  RawRequest request,
                                  RawResponse response) override;
  RawBidiReactor* WatchEvictions(grpc::CallbackServerContext* context) override;
  RawBidiReactor* PutStream(grpc::CallbackServerContext* context) override;
  RawBidiReactor* GetStream(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* PutBatch(grpc::CallbackServerContext* context,
                                     RawRequest request,
                                     RawResponse response) override;
  grpc::ServerUnaryReactor* GetBatch(grpc::CallbackServerContext* context,
                                     RawRequest request,
                                     RawResponse response) override;
  grpc::ServerUnaryReactor* DeleteBatch(grpc::CallbackServerContext* context,
                                        RawRequest request,
                                        RawResponse response) override;
  grpc::ServerUnaryReactor* DeleteAll(grpc::CallbackServerContext* context,
                                      RawRequest request,
                                      RawResponse response) override;

 private:
  using PutCall = UnaryCall<v1::PutRequest, v1::PutResponse>;
  using GetCall = UnaryCall<v1::GetRequest, v1::GetResponse>;
  using DeleteCall = UnaryCall<v1::DeleteRequest, v1::DeleteResponse>;
  using ReclaimCall = UnaryCall<v1::ReclaimRequest, v1::ReclaimResponse>;
  using StatsCall = UnaryCall<v1::StatsRequest, v1::StatsResponse>;
  using PutBatchCall = UnaryCall<v1::PutBatchRequest, v1::PutBatchResponse>;
  using GetBatchCall = UnaryCall<v1::GetBatchRequest, v1::GetBatchResponse>;
  using DeleteBatchCall =
      UnaryCall<v1::DeleteBatchRequest, v1::DeleteBatchResponse>;
  using DeleteAllCall = UnaryCall<v1::DeleteAllRequest, v1::DeleteAllResponse>;

  // Creates the call, parses its request and, if it parses, serves it with
  // `serve`. `first_block_bytes` is the call's arena block.
  template <typename Call>
  grpc::ServerUnaryReactor* Serve(
      grpc::CallbackServerContext* context, RpcMethod method,
      RawRequest request, RawResponse response, size_t first_block_bytes,
      void (PageStoreService::*serve)(grpc::CallbackServerContext*, Call*));

  void ServePut(grpc::CallbackServerContext* context, PutCall* call);
  void ServeGet(grpc::CallbackServerContext* context, GetCall* call);
  void ServeDelete(grpc::CallbackServerContext* context, DeleteCall* call);
  void ServeReclaim(grpc::CallbackServerContext* context, ReclaimCall* call);
  void ServeStats(grpc::CallbackServerContext* context, StatsCall* call);
  void ServePutBatch(grpc::CallbackServerContext* context, PutBatchCall* call);
  void ServeGetBatch(grpc::CallbackServerContext* context, GetBatchCall* call,
                     ChargedReplyReactor* reactor);
  void ServeDeleteBatch(grpc::CallbackServerContext* context,
                        DeleteBatchCall* call);
  void ServeDeleteAll(grpc::CallbackServerContext* context,
                      DeleteAllCall* call);

  // The authorization check every call makes first.
  absl::Status Authorize(grpc::CallbackServerContext* context,
                         absl::string_view tenant) const;
  // The one Put path of the RPC layer, for unary Puts and stream items:
  // authorizes and stores one page. Returns the outcome now, or nullopt
  // when the Put waits for evictions; the function `later` returns then
  // gets the outcome.
  std::optional<absl::StatusOr<PutResult>> StorePage(
      grpc::CallbackServerContext* context, const v1::PutRequest& request,
      absl::FunctionRef<PutDone()> later);
  // Stores the pages of a PutBatch from item `from` on, each through the
  // store's one Put path; an item that waits for room goes on from its
  // callback. Finishes the call after the last item.
  void RunPutBatch(grpc::CallbackServerContext* context, PutBatchCall* call,
                   int from);
  // Authorizes a unary call on `tenant`; if refused, finishes it with the
  // reason and returns true.
  template <typename Call>
  bool Refused(grpc::CallbackServerContext* context, Call* call,
               absl::string_view tenant);
  // Admits a write request of `bytes` for `tenant`, its ticket held by the
  // call; if refused, finishes the call with the reason and returns false.
  template <typename Call>
  bool Admitted(Call* call, absl::string_view tenant, uint64_t bytes);

  PageStore* const store_;
  EvictionBroker* const broker_;
  const Authorizer* const authorizer_;
  CallObserver* const observer_;
  MemoryBudget stream_buffers_;
  RequestAdmission admission_;
  const std::string node_name_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_PAGE_STORE_SERVICE_H_
