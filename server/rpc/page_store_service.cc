#include "server/rpc/page_store_service.h"

#include <chrono>
#include <string>

#include "contract/batch.h"
#include "contract/grpc_status.h"
#include "contract/page.h"
#include "server/rpc/authorization_metadata.h"
#include "server/rpc/item_stream_reactor.h"
#include "server/rpc/stats_response.h"
#include "server/rpc/watch_reactor.h"

namespace zpaged {
namespace {

v1::Encoding ToProto(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kSameFilled:
      return v1::SAME_FILLED;
    case PageEncoding::kLz4:
      return v1::LZ4;
    case PageEncoding::kRaw:
      return v1::RAW;
  }
  return v1::ENCODING_UNSPECIFIED;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// Fills a PutResponse or PutStreamResponse from a stored page.
template <typename Response>
void SetPutResult(const PutResult& result, Response* response) {
  response->set_encoding(ToProto(result.encoding));
  response->set_stored_bytes(result.stored_bytes);
}

grpc::Status Respond(const absl::StatusOr<PutResult>& result,
                     v1::PutResponse* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  SetPutResult(*result, response);
  return grpc::Status::OK;
}

void Respond(uint64_t key, const absl::StatusOr<PutResult>& result,
             v1::PutStreamResponse* response) {
  response->set_key(key);
  response->set_code(static_cast<int32_t>(result.status().code()));
  if (!result.ok()) {
    response->set_message(std::string(result.status().message()));
    return;
  }
  SetPutResult(*result, response);
}

void Respond(const absl::StatusOr<PutResult>& result, v1::PutItemResult* item) {
  item->set_code(static_cast<int32_t>(result.status().code()));
  if (!result.ok()) {
    item->set_message(std::string(result.status().message()));
    return;
  }
  SetPutResult(*result, item);
}

// The call's deadline as the store's PutOptions take it.
absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  return deadline == std::chrono::system_clock::time_point::max()
             ? absl::InfiniteFuture()
             : absl::FromChrono(deadline);
}

// Reads a page straight into a response's data field; leaves the field
// empty on error.
absl::Status GetInto(const PageStore& store, const std::string& tenant,
                     uint64_t key, std::string* data) {
  data->resize(kPageSize);
  const absl::Status status = store.Get(
      tenant, key,
      absl::MakeSpan(reinterpret_cast<uint8_t*>(data->data()), data->size()));
  if (!status.ok()) data->clear();
  return status;
}

}  // namespace

PageStoreService::PageStoreService(PageStore* store, EvictionBroker* broker,
                                   const Authorizer* authorizer,
                                   CallObserver* observer)
    : store_(store),
      broker_(broker),
      authorizer_(authorizer),
      observer_(observer) {
  SetMessageAllocatorFor_PutBatch(&put_batch_allocator_);
  SetMessageAllocatorFor_GetBatch(&get_batch_allocator_);
}

absl::Status PageStoreService::Authorize(grpc::CallbackServerContext* context,
                                         absl::string_view tenant) const {
  return authorizer_->Check(AuthorizationOf(*context), tenant);
}

bool PageStoreService::Refused(grpc::CallbackServerContext* context,
                               grpc::ServerUnaryReactor* reactor,
                               RpcMethod method, absl::Time start,
                               absl::string_view tenant) {
  absl::Status allowed = Authorize(context, tenant);
  if (allowed.ok()) return false;
  Finish(reactor, method, start, ToGrpcStatus(allowed));
  return true;
}

void PageStoreService::Finish(grpc::ServerUnaryReactor* reactor,
                              RpcMethod method, absl::Time start,
                              const grpc::Status& status) {
  if (observer_ != nullptr) {
    observer_->OnCallFinished(method, status.error_code(), absl::Now() - start);
  }
  reactor->Finish(status);
}

std::optional<absl::StatusOr<PutResult>> PageStoreService::StorePage(
    grpc::CallbackServerContext* context, const v1::PutRequest& request,
    absl::FunctionRef<PutDone()> later) {
  if (absl::Status allowed = Authorize(context, request.tenant());
      !allowed.ok()) {
    return allowed;
  }
  return store_->Put(request.tenant(), request.key(), Bytes(request.data()),
                     PutOptions{.deadline = DeadlineOf(*context)}, later);
}

grpc::ServerUnaryReactor* PageStoreService::Put(
    grpc::CallbackServerContext* context, const v1::PutRequest* request,
    v1::PutResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kPut, 1);
  auto finish = [this, reactor, response,
                 start](const absl::StatusOr<PutResult>& result) {
    Finish(reactor, RpcMethod::kPut, start, Respond(result, response));
  };
  std::optional<absl::StatusOr<PutResult>> now =
      StorePage(context, *request, [&]() -> PutDone { return finish; });
  if (now.has_value()) finish(*now);
  return reactor;
}

grpc::ServerUnaryReactor* PageStoreService::Get(
    grpc::CallbackServerContext* context, const v1::GetRequest* request,
    v1::GetResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(context, reactor, RpcMethod::kGet, start, request->tenant())) {
    return reactor;
  }
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kGet, 1);
  const absl::Status status = GetInto(*store_, request->tenant(),
                                      request->key(), response->mutable_data());
  Finish(reactor, RpcMethod::kGet, start, ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* PageStoreService::Delete(
    grpc::CallbackServerContext* context, const v1::DeleteRequest* request,
    v1::DeleteResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(context, reactor, RpcMethod::kDelete, start, request->tenant())) {
    return reactor;
  }
  absl::StatusOr<bool> existed =
      store_->Delete(request->tenant(), request->key());
  if (existed.ok()) response->set_existed(*existed);
  Finish(reactor, RpcMethod::kDelete, start, ToGrpcStatus(existed.status()));
  return reactor;
}

grpc::ServerUnaryReactor* PageStoreService::Reclaim(
    grpc::CallbackServerContext* context, const v1::ReclaimRequest* request,
    v1::ReclaimResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(context, reactor, RpcMethod::kReclaim, start,
              request->tenant())) {
    return reactor;
  }
  store_->Reclaim(
      request->tenant(), request->pages(),
      [this, response, reactor, start](absl::StatusOr<ReclaimResult> result) {
        if (result.ok()) {
          response->set_reclaimed_pool_pages(result->reclaimed_pool_pages);
          response->set_evicted_pages(result->evicted_pages);
        }
        Finish(reactor, RpcMethod::kReclaim, start,
               ToGrpcStatus(result.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* PageStoreService::Stats(
    grpc::CallbackServerContext* context, const v1::StatsRequest* request,
    v1::StatsResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<PageStats> stats;
  if (!request->tenant().empty()) {
    absl::Status allowed = Authorize(context, request->tenant());
    stats = allowed.ok() ? store_->Stats(request->tenant())
                         : absl::StatusOr<PageStats>(allowed);
  } else {
    // Totals: over every tenant without authentication, over the token's
    // own tenants with it.
    absl::StatusOr<std::optional<std::vector<std::string>>> mine =
        authorizer_->TenantsOf(AuthorizationOf(*context));
    if (!mine.ok()) {
      stats = mine.status();
    } else if (mine->has_value()) {
      stats = store_->StatsOf(**mine);
    } else {
      stats = store_->Stats("");
    }
  }
  if (stats.ok()) FillStatsResponse(*stats, response);
  Finish(reactor, RpcMethod::kStats, start, ToGrpcStatus(stats.status()));
  return reactor;
}

grpc::ServerBidiReactor<v1::EvictionAck, v1::EvictedPage>*
PageStoreService::WatchEvictions(grpc::CallbackServerContext* context) {
  return new WatchReactor(context, broker_, authorizer_, observer_);
}

grpc::ServerBidiReactor<v1::PutRequest, v1::PutStreamResponse>*
PageStoreService::PutStream(grpc::CallbackServerContext* context) {
  auto handle = [this, context](const v1::PutRequest& request,
                                v1::PutStreamResponse* response,
                                DeferredItem* deferred) {
    const uint64_t key = request.key();
    std::optional<absl::StatusOr<PutResult>> now =
        StorePage(context, request, [&]() -> PutDone {
          return [key, response, deferred](absl::StatusOr<PutResult> result) {
            Respond(key, result, response);
            deferred->ItemDone();
          };
        });
    if (!now.has_value()) return false;
    Respond(key, *now, response);
    return true;
  };
  return new ItemStreamReactor<v1::PutRequest, v1::PutStreamResponse>(
      RpcMethod::kPutStream, handle, observer_);
}

grpc::ServerBidiReactor<v1::GetRequest, v1::GetStreamResponse>*
PageStoreService::GetStream(grpc::CallbackServerContext* context) {
  auto handle = [this, context](const v1::GetRequest& request,
                                v1::GetStreamResponse* response,
                                DeferredItem*) {
    response->set_key(request.key());
    absl::Status status = Authorize(context, request.tenant());
    if (status.ok()) {
      status = GetInto(*store_, request.tenant(), request.key(),
                       response->mutable_data());
    }
    response->set_code(static_cast<int32_t>(status.code()));
    if (!status.ok()) response->set_message(std::string(status.message()));
    return true;  // a Get never waits
  };
  return new ItemStreamReactor<v1::GetRequest, v1::GetStreamResponse>(
      RpcMethod::kGetStream, handle, observer_);
}

grpc::ServerUnaryReactor* PageStoreService::PutBatch(
    grpc::CallbackServerContext* context, const v1::PutBatchRequest* request,
    v1::PutBatchResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(context, reactor, RpcMethod::kPutBatch, start,
              request->tenant())) {
    return reactor;
  }
  if (absl::Status valid = ValidateBatch(
          request->tenant(), request->keys_size(), request->pages().size());
      !valid.ok()) {
    Finish(reactor, RpcMethod::kPutBatch, start, ToGrpcStatus(valid));
    return reactor;
  }
  if (observer_ != nullptr) {
    observer_->OnPages(RpcMethod::kPutBatch, request->keys_size());
  }
  // Every result exists before the first item runs, so an item that
  // finishes later fills its own in place.
  for (int i = 0; i < request->keys_size(); ++i) response->add_results();
  RunPutBatch(context, request, response, reactor, start, 0);
  return reactor;
}

void PageStoreService::RunPutBatch(grpc::CallbackServerContext* context,
                                   const v1::PutBatchRequest* request,
                                   v1::PutBatchResponse* response,
                                   grpc::ServerUnaryReactor* reactor,
                                   absl::Time start, int from) {
  const PutOptions options{.deadline = DeadlineOf(*context)};
  const absl::Span<const uint8_t> pages = Bytes(request->pages());
  for (int i = from; i < request->keys_size(); ++i) {
    std::optional<absl::StatusOr<PutResult>> now = store_->Put(
        request->tenant(), request->keys(i),
        pages.subspan(i * kPageSize, kPageSize), options, [&]() -> PutDone {
          return [this, context, request, response, reactor, start,
                  i](absl::StatusOr<PutResult> result) {
            Respond(result, response->mutable_results(i));
            RunPutBatch(context, request, response, reactor, start, i + 1);
          };
        });
    if (!now.has_value()) return;
    Respond(*now, response->mutable_results(i));
  }
  Finish(reactor, RpcMethod::kPutBatch, start, grpc::Status::OK);
}

grpc::ServerUnaryReactor* PageStoreService::GetBatch(
    grpc::CallbackServerContext* context, const v1::GetBatchRequest* request,
    v1::GetBatchResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(context, reactor, RpcMethod::kGetBatch, start,
              request->tenant())) {
    return reactor;
  }
  const int keys = request->keys_size();
  if (absl::Status valid =
          ValidateBatch(request->tenant(), keys, /*pages_bytes=*/std::nullopt);
      !valid.ok()) {
    Finish(reactor, RpcMethod::kGetBatch, start, ToGrpcStatus(valid));
    return reactor;
  }
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kGetBatch, keys);
  response->mutable_codes()->Resize(keys, 0);
  std::string* pages = response->mutable_pages();
  pages->resize(keys * kPageSize);
  uint8_t* out = reinterpret_cast<uint8_t*>(pages->data());
  for (int i = 0; i < keys; ++i) {
    const absl::Span<uint8_t> page =
        absl::MakeSpan(out + i * kPageSize, kPageSize);
    const absl::Status status =
        store_->Get(request->tenant(), request->keys(i), page);
    if (!status.ok()) std::fill(page.begin(), page.end(), 0);
    response->set_codes(i, static_cast<int32_t>(status.code()));
  }
  Finish(reactor, RpcMethod::kGetBatch, start, grpc::Status::OK);
  return reactor;
}

}  // namespace zpaged
