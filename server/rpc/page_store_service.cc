#include "server/rpc/page_store_service.h"

#include <chrono>
#include <string>

#include "contract/batch.h"
#include "contract/grpc_status.h"
#include "contract/page.h"
#include "contract/wire_encoding.h"
#include "server/rpc/authorization_metadata.h"
#include "server/rpc/item_stream_reactor.h"
#include "server/rpc/stats_response.h"
#include "server/rpc/watch_reactor.h"

namespace zpaged {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// Fills a PutResponse or PutStreamResponse from a stored page.
template <typename Response>
void SetPutResult(const PutResult& result, Response* response) {
  response->set_encoding(ToWireEncoding(result.encoding));
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

// The call's deadline and cancellation as the store's PutOptions take them:
// a Put waiting for room stores nothing once its caller has given up.
PutOptions PutOptionsOf(grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  return PutOptions{
      .deadline = deadline == std::chrono::system_clock::time_point::max()
                      ? absl::InfiniteFuture()
                      : absl::FromChrono(deadline),
      .cancelled = [context] { return context->IsCancelled(); }};
}

// The page a request carries in `data`: whole, or as its client encoded it
// when it names an encoding (`encoding`, a v1::Encoding number).
absl::StatusOr<IncomingPage> IncomingPageOf(int encoding,
                                            absl::Span<const uint8_t> data) {
  if (encoding == v1::ENCODING_UNSPECIFIED) return IncomingPage(data);
  absl::StatusOr<PageEncoding> named =
      FromWireEncoding(static_cast<v1::Encoding>(encoding));
  if (!named.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("page encoding ", encoding, " is not one zpaged knows"));
  }
  return IncomingPage::Encoded(*named, data);
}

// Reads a page straight into a response's data field, as stored if its
// encoding is in `accept`, and names its encoding in the response when the
// client asked for any; leaves the data empty on error.
template <typename Response>
absl::Status GetInto(const PageStore& store, const std::string& tenant,
                     uint64_t key,
                     const google::protobuf::RepeatedField<int>& accept,
                     Response* response) {
  std::string* data = response->mutable_data();
  data->resize(kPageSize);
  const PageEncodingSet accepted = FromWireAccept(accept);
  absl::StatusOr<StoredPage> read = store.Get(
      tenant, key,
      absl::MakeSpan(reinterpret_cast<uint8_t*>(data->data()), data->size()),
      accepted);
  if (!read.ok()) {
    data->clear();
    return read.status();
  }
  data->resize(read->bytes);
  if (!accept.empty()) response->set_encoding(ToWireEncoding(read->encoding));
  return absl::OkStatus();
}

}  // namespace

// Arena first blocks: a PutBatch's results (256 x ~48 bytes) and keys, a
// GetBatch's keys and codes; every other call is a few fields.
constexpr size_t kSmallCallArena = 1024;
constexpr size_t kPutBatchArena = 32 * 1024;
constexpr size_t kGetBatchArena = 8 * 1024;

PageStoreService::PageStoreService(PageStore* store, EvictionBroker* broker,
                                   const Authorizer* authorizer,
                                   CallObserver* observer,
                                   const ServiceBounds& bounds,
                                   std::string node_name)
    : store_(store),
      broker_(broker),
      authorizer_(authorizer),
      observer_(observer),
      stream_buffers_(bounds.stream_buffer_bytes, "stream buffer limit"),
      admission_(bounds.requests),
      node_name_(std::move(node_name)) {}

template <typename Call>
grpc::ServerUnaryReactor* PageStoreService::Serve(
    grpc::CallbackServerContext* context, RpcMethod method, RawRequest request,
    RawResponse response, size_t first_block_bytes,
    void (PageStoreService::*serve)(grpc::CallbackServerContext*, Call*)) {
  // Taken first: the call is gone once it replies.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Call* call =
      Call::Create(*context, method, observer_, response, first_block_bytes);
  call->ParseThen(*context, *request, [this, context, call, serve] {
    (this->*serve)(context, call);
  });
  return reactor;
}

absl::Status PageStoreService::Authorize(grpc::CallbackServerContext* context,
                                         absl::string_view tenant) const {
  return authorizer_->Check(AuthorizationOf(*context), tenant);
}

template <typename Call>
bool PageStoreService::Refused(grpc::CallbackServerContext* context, Call* call,
                               absl::string_view tenant) {
  absl::Status allowed = Authorize(context, tenant);
  if (allowed.ok()) return false;
  call->Reply(ToGrpcStatus(allowed));
  return true;
}

std::optional<absl::StatusOr<PutResult>> PageStoreService::StorePage(
    grpc::CallbackServerContext* context, const v1::PutRequest& request,
    absl::FunctionRef<PutDone()> later) {
  if (absl::Status allowed = Authorize(context, request.tenant());
      !allowed.ok()) {
    return allowed;
  }
  absl::StatusOr<IncomingPage> page =
      IncomingPageOf(request.encoding(), Bytes(request.data()));
  if (!page.ok()) return page.status();
  return store_->Put(request.tenant(), request.key(), *page,
                     PutOptionsOf(context), later);
}

grpc::ServerUnaryReactor* PageStoreService::Put(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kPut, request, response, kSmallCallArena,
               &PageStoreService::ServePut);
}

template <typename Call>
bool PageStoreService::Admitted(Call* call, absl::string_view tenant,
                                uint64_t bytes) {
  absl::StatusOr<RequestAdmission::Ticket> ticket =
      admission_.Admit(tenant, bytes);
  if (!ticket.ok()) {
    call->Reply(ToGrpcStatus(ticket.status()));
    return false;
  }
  call->Hold(*std::move(ticket));
  return true;
}

void PageStoreService::ServePut(grpc::CallbackServerContext* context,
                                PutCall* call) {
  if (!Admitted(call, call->request().tenant(), kPageSize)) return;
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kPut, 1);
  auto finish = [call](const absl::StatusOr<PutResult>& result) {
    call->Reply(Respond(result, call->response()));
  };
  std::optional<absl::StatusOr<PutResult>> now =
      StorePage(context, call->request(), [&]() -> PutDone { return finish; });
  if (now.has_value()) finish(*now);
}

grpc::ServerUnaryReactor* PageStoreService::Get(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kGet, request, response, kSmallCallArena,
               &PageStoreService::ServeGet);
}

void PageStoreService::ServeGet(grpc::CallbackServerContext* context,
                                GetCall* call) {
  const v1::GetRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kGet, 1);
  call->Reply(ToGrpcStatus(GetInto(*store_, request.tenant(), request.key(),
                                   request.accept(), call->response())));
}

grpc::ServerUnaryReactor* PageStoreService::Delete(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kDelete, request, response, kSmallCallArena,
               &PageStoreService::ServeDelete);
}

void PageStoreService::ServeDelete(grpc::CallbackServerContext* context,
                                   DeleteCall* call) {
  const v1::DeleteRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  absl::StatusOr<bool> existed =
      store_->Delete(request.tenant(), request.key());
  if (existed.ok()) call->response()->set_existed(*existed);
  call->Reply(ToGrpcStatus(existed.status()));
}

grpc::ServerUnaryReactor* PageStoreService::Reclaim(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kReclaim, request, response, kSmallCallArena,
               &PageStoreService::ServeReclaim);
}

void PageStoreService::ServeReclaim(grpc::CallbackServerContext* context,
                                    ReclaimCall* call) {
  const v1::ReclaimRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  store_->Reclaim(
      request.tenant(), request.pages(),
      [call](absl::StatusOr<ReclaimResult> result) {
        if (result.ok()) {
          call->response()->set_reclaimed_pool_pages(
              result->reclaimed_pool_pages);
          call->response()->set_evicted_pages(result->evicted_pages);
        }
        call->Reply(ToGrpcStatus(result.status()));
      });
}

grpc::ServerUnaryReactor* PageStoreService::Stats(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kStats, request, response, kSmallCallArena,
               &PageStoreService::ServeStats);
}

void PageStoreService::ServeStats(grpc::CallbackServerContext* context,
                                  StatsCall* call) {
  const std::string& tenant = call->request().tenant();
  absl::StatusOr<PageStats> stats;
  if (!tenant.empty()) {
    absl::Status allowed = Authorize(context, tenant);
    stats = allowed.ok() ? store_->Stats(tenant)
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
  if (stats.ok()) {
    FillStatsResponse(*stats, call->response());
    call->response()->set_node_name(node_name_);
    call->response()->set_max_memory_bytes(store_->options().max_memory_bytes);
  }
  call->Reply(ToGrpcStatus(stats.status()));
}

PageStoreService::RawBidiReactor* PageStoreService::WatchEvictions(
    grpc::CallbackServerContext* context) {
  return new WatchReactor(context, broker_, authorizer_, observer_,
                          &stream_buffers_);
}

PageStoreService::RawBidiReactor* PageStoreService::PutStream(
    grpc::CallbackServerContext* context) {
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
      context, RpcMethod::kPutStream, handle, observer_, &stream_buffers_);
}

PageStoreService::RawBidiReactor* PageStoreService::GetStream(
    grpc::CallbackServerContext* context) {
  auto handle = [this, context](const v1::GetRequest& request,
                                v1::GetStreamResponse* response,
                                DeferredItem*) {
    response->set_key(request.key());
    absl::Status status = Authorize(context, request.tenant());
    if (status.ok()) {
      status = GetInto(*store_, request.tenant(), request.key(),
                       request.accept(), response);
    }
    response->set_code(static_cast<int32_t>(status.code()));
    if (!status.ok()) response->set_message(std::string(status.message()));
    return true;  // a Get never waits
  };
  return new ItemStreamReactor<v1::GetRequest, v1::GetStreamResponse>(
      context, RpcMethod::kGetStream, handle, observer_, &stream_buffers_);
}

grpc::ServerUnaryReactor* PageStoreService::PutBatch(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kPutBatch, request, response, kPutBatchArena,
               &PageStoreService::ServePutBatch);
}

void PageStoreService::ServePutBatch(grpc::CallbackServerContext* context,
                                     PutBatchCall* call) {
  const v1::PutBatchRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  const bool encoded = request.encodings_size() > 0 || request.sizes_size() > 0;
  absl::Status valid = ValidateBatch(
      request.tenant(), request.keys_size(),
      encoded ? std::nullopt : std::optional<size_t>(request.pages().size()));
  if (valid.ok() && encoded) {
    valid = ValidateEncodedBatch(
        request.keys_size(), request.encodings_size(),
        absl::MakeConstSpan(request.sizes().data(), request.sizes_size()),
        request.pages().size());
  }
  if (!valid.ok()) {
    call->Reply(ToGrpcStatus(valid));
    return;
  }
  if (!Admitted(call, request.tenant(), request.pages().size())) return;
  if (observer_ != nullptr) {
    observer_->OnPages(RpcMethod::kPutBatch, request.keys_size());
  }
  // Every result exists before the first item runs, so an item that
  // finishes later fills its own in place.
  for (int i = 0; i < request.keys_size(); ++i) call->response()->add_results();
  RunPutBatch(context, call, 0);
}

void PageStoreService::RunPutBatch(grpc::CallbackServerContext* context,
                                   PutBatchCall* call, int from) {
  const v1::PutBatchRequest& request = call->request();
  const PutOptions options = PutOptionsOf(context);
  const absl::Span<const uint8_t> pages = Bytes(request.pages());
  // Whole pages, or (ServePutBatch checked the layout) encoded ones of the
  // sizes the request gives.
  const bool encoded = request.encodings_size() > 0;
  auto size_of = [&](int i) -> size_t {
    return encoded ? request.sizes(i) : kPageSize;
  };
  size_t offset = 0;
  for (int i = 0; i < from; ++i) offset += size_of(i);
  const bool finished = store_->PutMany(
      request.tenant(), from, request.keys_size(),
      [&](size_t i) {
        const absl::Span<const uint8_t> data =
            pages.subspan(offset, size_of(i));
        offset += data.size();
        return PageStore::BatchPage{
            request.keys(i), encoded
                                 ? IncomingPageOf(request.encodings(i), data)
                                 : IncomingPage(data)};
      },
      options,
      [call](size_t i, absl::StatusOr<PutResult> result) {
        Respond(result, call->response()->mutable_results(i));
      },
      [this, context, call](size_t i) -> PutDone {
        return [this, context, call, i](absl::StatusOr<PutResult> result) {
          Respond(result, call->response()->mutable_results(i));
          RunPutBatch(context, call, i + 1);
        };
      });
  if (finished) call->Reply(grpc::Status::OK);
}

grpc::ServerUnaryReactor* PageStoreService::GetBatch(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  auto* reactor = new ChargedReplyReactor(&stream_buffers_);
  GetBatchCall* call =
      GetBatchCall::Create(*context, reactor, RpcMethod::kGetBatch, observer_,
                           response, kGetBatchArena);
  call->ParseThen(*context, *request, [this, context, call, reactor] {
    ServeGetBatch(context, call, reactor);
  });
  return reactor;
}

void PageStoreService::ServeGetBatch(grpc::CallbackServerContext* context,
                                     GetBatchCall* call,
                                     ChargedReplyReactor* reactor) {
  const v1::GetBatchRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  const int keys = request.keys_size();
  if (absl::Status valid =
          ValidateBatch(request.tenant(), keys, /*pages_bytes=*/std::nullopt);
      !valid.ok()) {
    call->Reply(ToGrpcStatus(valid));
    return;
  }
  // Replies not yet read by their clients share the stream buffers' limit.
  if (absl::Status charged = reactor->Charge(uint64_t{kPageSize} * keys);
      !charged.ok()) {
    call->Reply(ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
        "replies not yet read by their clients fill zpaged's buffers (",
        charged.message(),
        ", --stream_buffer_bytes); read replies, or "
        "try again"))));
    return;
  }
  if (observer_ != nullptr) observer_->OnPages(RpcMethod::kGetBatch, keys);
  v1::GetBatchResponse* response = call->response();
  response->mutable_codes()->Resize(keys, 0);
  // As stored, pages lie back to back at their own sizes; whole, each at
  // i * kPageSize, zeros where there is none.
  const bool as_stored = !request.accept().empty();
  const PageEncodingSet accept = FromWireAccept(request.accept());
  if (as_stored) {
    response->mutable_encodings()->Resize(keys, v1::ENCODING_UNSPECIFIED);
    response->mutable_sizes()->Resize(keys, 0);
  }
  std::string* pages = response->mutable_pages();
  pages->resize(keys * kPageSize);
  uint8_t* out = reinterpret_cast<uint8_t*>(pages->data());
  size_t offset = 0;
  const absl::Status whole_call = store_->GetMany(
      request.tenant(),
      absl::MakeConstSpan(request.keys().data(), request.keys_size()), accept,
      [&](size_t) { return absl::MakeSpan(out + offset, kPageSize); },
      [&](size_t i, const absl::StatusOr<StoredPage>& read) {
        response->set_codes(i, static_cast<int32_t>(read.status().code()));
        if (!as_stored) {
          if (!read.ok()) std::fill(out + offset, out + offset + kPageSize, 0);
          offset += kPageSize;
        } else if (read.ok()) {
          response->set_encodings(i, ToWireEncoding(read->encoding));
          response->set_sizes(i, static_cast<uint32_t>(read->bytes));
          offset += read->bytes;
        }
      });
  pages->resize(offset);
  call->Reply(ToGrpcStatus(whole_call));
}

grpc::ServerUnaryReactor* PageStoreService::DeleteBatch(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kDeleteBatch, request, response,
               kGetBatchArena, &PageStoreService::ServeDeleteBatch);
}

void PageStoreService::ServeDeleteBatch(grpc::CallbackServerContext* context,
                                        DeleteBatchCall* call) {
  const v1::DeleteBatchRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  if (absl::Status valid = ValidateBatch(request.tenant(), request.keys_size(),
                                         /*pages_bytes=*/std::nullopt);
      !valid.ok()) {
    call->Reply(ToGrpcStatus(valid));
    return;
  }
  for (uint64_t key : request.keys()) {
    absl::StatusOr<bool> existed = store_->Delete(request.tenant(), key);
    // The name was valid for the batch, so it is for each key.
    call->response()->add_existed(existed.value_or(false));
  }
  call->Reply(grpc::Status::OK);
}

grpc::ServerUnaryReactor* PageStoreService::DeleteAll(
    grpc::CallbackServerContext* context, RawRequest request,
    RawResponse response) {
  return Serve(context, RpcMethod::kDeleteAll, request, response,
               kSmallCallArena, &PageStoreService::ServeDeleteAll);
}

void PageStoreService::ServeDeleteAll(grpc::CallbackServerContext* context,
                                      DeleteAllCall* call) {
  const v1::DeleteAllRequest& request = call->request();
  if (Refused(context, call, request.tenant())) return;
  absl::StatusOr<uint64_t> deleted = store_->DeleteAll(request.tenant());
  if (deleted.ok()) call->response()->set_deleted_pages(*deleted);
  call->Reply(ToGrpcStatus(deleted.status()));
}

}  // namespace zpaged
