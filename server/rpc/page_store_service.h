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

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "server/auth/authorizer.h"
#include "server/evict/eviction_broker.h"
#include "server/rpc/arena_message_allocator.h"
#include "server/rpc/call_observer.h"
#include "server/store/page_store.h"
#include "zpaged/v1/page_store.grpc.pb.h"

namespace zpaged {

class PageStoreService final : public v1::PageStore::CallbackService {
 public:
  // All must outlive the service; `observer` may be null.
  PageStoreService(PageStore* store, EvictionBroker* broker,
                   const Authorizer* authorizer, CallObserver* observer);

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const v1::PutRequest* request,
                                v1::PutResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const v1::DeleteRequest* request,
                                   v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Reclaim(grpc::CallbackServerContext* context,
                                    const v1::ReclaimRequest* request,
                                    v1::ReclaimResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;
  grpc::ServerBidiReactor<v1::EvictionAck, v1::EvictedPage>* WatchEvictions(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::PutRequest, v1::PutStreamResponse>* PutStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::GetRequest, v1::GetStreamResponse>* GetStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* PutBatch(grpc::CallbackServerContext* context,
                                     const v1::PutBatchRequest* request,
                                     v1::PutBatchResponse* response) override;
  grpc::ServerUnaryReactor* GetBatch(grpc::CallbackServerContext* context,
                                     const v1::GetBatchRequest* request,
                                     v1::GetBatchResponse* response) override;

 private:
  // Finishes a unary call, telling the observer.
  void Finish(grpc::ServerUnaryReactor* reactor, RpcMethod method,
              absl::Time start, const grpc::Status& status);

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
  void RunPutBatch(grpc::CallbackServerContext* context,
                   const v1::PutBatchRequest* request,
                   v1::PutBatchResponse* response,
                   grpc::ServerUnaryReactor* reactor, absl::Time start,
                   int from);
  // Authorizes a unary call on `tenant`; if refused, finishes it with the
  // reason and returns true.
  bool Refused(grpc::CallbackServerContext* context,
               grpc::ServerUnaryReactor* reactor, RpcMethod method,
               absl::Time start, absl::string_view tenant);

  // A full batch's results (256 x ~48 bytes) and keys fit the first block.
  ArenaMessageAllocator<v1::PutBatchRequest, v1::PutBatchResponse>
      put_batch_allocator_{32 * 1024};
  ArenaMessageAllocator<v1::GetBatchRequest, v1::GetBatchResponse>
      get_batch_allocator_{8 * 1024};
  PageStore* const store_;
  EvictionBroker* const broker_;
  const Authorizer* const authorizer_;
  CallObserver* const observer_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_PAGE_STORE_SERVICE_H_
