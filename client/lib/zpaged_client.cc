#include "client/lib/zpaged_client.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "contract/grpc_status.h"
#include "contract/metadata.h"
#include "contract/page.h"
#include "contract/wire_encoding.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace zpaged {
namespace {

// An item a batch response left out: never a silent OK.
absl::Status Missing(size_t asked, int answered) {
  return absl::InternalError(absl::StrCat("the server answered ", answered,
                                          " of ", asked, " items of a batch"));
}

// One item's outcome in a batch response: its google.rpc.Code and message.
absl::Status ItemStatus(int32_t code, absl::string_view message) {
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

// A page the server would refuse for its size, refused before it is sent,
// as the server would: a whole page is kPageSize bytes, and no encoded one
// is larger.
absl::Status CheckPageSize(const KeyedPage& page) {
  if (page.encoding.has_value() ? page.page.size() <= kPageSize
                                : page.page.size() == kPageSize) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "page data is ", page.page.size(), " bytes; it must be ",
      page.encoding.has_value() ? "at most " : "exactly ", kPageSize));
}

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// Appends `page` to `data` as the wire carries it: as given when it is
// encoded, encoded as `compression` says when that is not kNone, whole
// otherwise. Returns its encoding; none for a page sent whole.
std::optional<PageEncoding> AppendPage(const EdgeCompression& compression,
                                       const KeyedPage& page,
                                       std::string* data) {
  if (page.encoding.has_value()) {
    data->append(page.page.data(), page.page.size());
    return page.encoding;
  }
  if (compression.compressor == EdgeCompressor::kNone) {
    data->append(page.page.data(), page.page.size());
    return std::nullopt;
  }
  const size_t at = data->size();
  data->resize(at + kPageSize);
  const EdgeEncoded encoded = EncodeAtEdge(
      compression, Bytes(page.page),
      absl::MakeSpan(reinterpret_cast<uint8_t*>(data->data()) + at, kPageSize));
  data->resize(at + encoded.bytes);
  return encoded.encoding;
}

// Decodes a page a response carries in `data` into `out`: whole unless the
// response names an encoding (it answers a request that named `accept`).
absl::Status TakePage(v1::Encoding encoding, absl::string_view data,
                      uint8_t* out) {
  if (encoding == v1::ENCODING_UNSPECIFIED) {
    if (data.size() != kPageSize) {
      return absl::DataLossError(absl::StrCat(
          "the server returned ", data.size(), " bytes for a whole page"));
    }
    std::memcpy(out, data.data(), kPageSize);
    return absl::OkStatus();
  }
  absl::StatusOr<PageEncoding> named = FromWireEncoding(encoding);
  if (!named.ok()) return named.status();
  return ExpandAtEdge(*named, data, out);
}

// One WatchEvictions stream, run on its own thread until Stop or the end of
// the stream.
class StreamWatcher final : public EvictionWatcher {
 public:
  explicit StreamWatcher(std::unique_ptr<grpc::ClientContext> context)
      : context_(std::move(context)) {}
  ~StreamWatcher() override { Stop(); }

  void Stop() override {
    if (!thread_.joinable()) return;
    context_->TryCancel();
    thread_.join();
  }

  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    ended_changed_.wait(lock, [this] { return ended_; });
    return final_status_;
  }

  bool WaitFor(absl::Duration timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return ended_changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                   [this] { return ended_; });
  }

  // Runs the stream on the watcher's thread: subscribes to `tenant`, says
  // through `subscribed` whether the server took the subscription, then
  // hands each page to `on_page` and acks it when that returns true.
  void Start(v1::PageStore::Stub* stub, std::string tenant, bool exclusive,
             PageEncodingSet accept, EvictionCallback on_page,
             std::promise<bool> subscribed) {
    thread_ = std::thread([this, stub, tenant = std::move(tenant), exclusive,
                           accept, on_page = std::move(on_page),
                           subscribed = std::move(subscribed)]() mutable {
      auto stream = stub->WatchEvictions(context_.get());
      v1::EvictionAck subscribe;
      subscribe.set_tenant(tenant);
      subscribe.set_exclusive(exclusive);
      ToWireAccept(accept, subscribe.mutable_accept());
      stream->Write(subscribe);
      stream->WaitForInitialMetadata();
      const auto& metadata = context_->GetServerInitialMetadata();
      const bool ok = metadata.find(kSubscribedMetadata) != metadata.end();
      subscribed.set_value(ok);
      absl::Status refused;
      if (ok) {
        v1::EvictedPage page;
        std::string whole(kPageSize, '\0');
        while (stream->Read(&page)) {
          // A page that does not decode is not acked: the server keeps it.
          refused = TakePage(page.encoding(), page.data(),
                             reinterpret_cast<uint8_t*>(whole.data()));
          if (refused.ok() && !on_page(page.key(), whole)) {
            // Unacked, the page would stall this subscription for good.
            refused = absl::FailedPreconditionError(absl::StrCat(
                "the callback could not keep evicted page ", page.key(),
                "; the server keeps it for the next subscription"));
          }
          if (!refused.ok()) {
            context_->TryCancel();
            break;
          }
          v1::EvictionAck ack;
          ack.set_sequence(page.sequence());
          if (!stream->Write(ack)) break;
        }
      }
      stream->WritesDone();
      const absl::Status finished = FromGrpcStatus(stream->Finish());
      SetEnded(refused.ok() ? finished : refused);
    });
  }

 private:
  void SetEnded(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    final_status_ = std::move(status);
    ended_changed_.notify_all();
  }

  const std::unique_ptr<grpc::ClientContext> context_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable ended_changed_;
  bool ended_ = false;         // guarded by mu_
  absl::Status final_status_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Client> Client::Connect(const std::string& target,
                                        const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (!options.tls_root_certs.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_certs;
    ssl.pem_cert_chain = options.tls_cert_chain;
    ssl.pem_private_key = options.tls_private_key;
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments arguments;
  const int max_backoff_ms = static_cast<int>(std::max<int64_t>(
      absl::ToInt64Milliseconds(options.max_reconnect_backoff), 1));
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                   std::min(100, max_backoff_ms));
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  return std::make_unique<Client>(
      grpc::CreateCustomChannel(target, credentials, arguments), options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel,
               const ClientOptions& options)
    : options_(options),
      stub_(v1::PageStore::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)) {}

absl::StatusOr<bool> Client::Serving() {
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status =
      health_->Check(ContextWithin(ReadTimeout()).get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

std::unique_ptr<grpc::ClientContext> Client::NewContext(bool streaming) const {
  if (!streaming) return ContextWithin(options_.timeout);
  auto context = std::make_unique<grpc::ClientContext>();
  if (!options_.token.empty()) {
    context->AddMetadata(kAuthorizationMetadata,
                         kBearerPrefix + options_.token);
  }
  return context;
}

std::unique_ptr<grpc::ClientContext> Client::ContextWithin(
    absl::Duration timeout) const {
  std::unique_ptr<grpc::ClientContext> context = NewContext(/*streaming=*/true);
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(timeout));
  return context;
}

template <typename Request, typename Response>
absl::StatusOr<Response> Client::Call(
    grpc::Status (v1::PageStore::Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
    const Request& request, absl::Duration timeout) {
  Response response;
  grpc::Status status =
      ((*stub_).*method)(ContextWithin(timeout).get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<PutReply> Client::Put(absl::string_view tenant, uint64_t key,
                                     absl::string_view page) {
  // Whole pages go as they are, for the server to judge; one to encode
  // must be a page.
  const KeyedPage whole{key, page};
  if (options_.compression.compressor != EdgeCompressor::kNone) {
    if (absl::Status size = CheckPageSize(whole); !size.ok()) return size;
  }
  v1::PutRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  if (std::optional<PageEncoding> encoding =
          AppendPage(options_.compression, whole, request.mutable_data())) {
    request.set_encoding(ToWireEncoding(*encoding));
  }
  absl::StatusOr<v1::PutResponse> response =
      Call(&v1::PageStore::Stub::Put, request, options_.timeout);
  if (!response.ok()) return response.status();
  absl::StatusOr<PageEncoding> encoding =
      FromWireEncoding(response->encoding());
  if (!encoding.ok()) return encoding.status();
  return PutReply{*encoding, response->stored_bytes()};
}

absl::StatusOr<std::string> Client::Get(absl::string_view tenant,
                                        uint64_t key) {
  v1::GetRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  ToWireAccept(AcceptedEncodings(options_.compression),
               request.mutable_accept());
  absl::StatusOr<v1::GetResponse> response =
      Call(&v1::PageStore::Stub::Get, request, ReadTimeout());
  if (!response.ok()) return response.status();
  if (response->encoding() == v1::ENCODING_UNSPECIFIED) {
    return std::move(*response->mutable_data());
  }
  std::string page(kPageSize, '\0');
  absl::Status taken = TakePage(response->encoding(), response->data(),
                                reinterpret_cast<uint8_t*>(page.data()));
  if (!taken.ok()) return taken;
  return page;
}

absl::StatusOr<bool> Client::Delete(absl::string_view tenant, uint64_t key) {
  v1::DeleteRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  absl::StatusOr<v1::DeleteResponse> response =
      Call(&v1::PageStore::Stub::Delete, request, options_.timeout);
  if (!response.ok()) return response.status();
  return response->existed();
}

absl::StatusOr<v1::ReclaimResponse> Client::Reclaim(absl::string_view tenant,
                                                    uint32_t pages) {
  v1::ReclaimRequest request;
  request.set_tenant(std::string(tenant));
  request.set_pages(pages);
  return Call(&v1::PageStore::Stub::Reclaim, request, options_.timeout);
}

absl::StatusOr<v1::StatsResponse> Client::Stats(absl::string_view tenant) {
  v1::StatsRequest request;
  request.set_tenant(std::string(tenant));
  return Call(&v1::PageStore::Stub::Stats, request, options_.timeout);
}

absl::StatusOr<v1::PutBatchResponse> Client::PutBatch(
    absl::string_view tenant, absl::Span<const uint64_t> keys,
    absl::string_view pages) {
  v1::PutBatchRequest request;
  request.set_tenant(std::string(tenant));
  request.mutable_keys()->Add(keys.begin(), keys.end());
  request.set_pages(std::string(pages));
  return Call(&v1::PageStore::Stub::PutBatch, request, options_.timeout);
}

absl::StatusOr<v1::GetBatchResponse> Client::GetBatch(
    absl::string_view tenant, absl::Span<const uint64_t> keys) {
  v1::GetBatchRequest request;
  request.set_tenant(std::string(tenant));
  request.mutable_keys()->Add(keys.begin(), keys.end());
  return Call(&v1::PageStore::Stub::GetBatch, request, ReadTimeout());
}

absl::StatusOr<v1::DeleteBatchResponse> Client::DeleteBatch(
    absl::string_view tenant, absl::Span<const uint64_t> keys) {
  v1::DeleteBatchRequest request;
  request.set_tenant(std::string(tenant));
  request.mutable_keys()->Add(keys.begin(), keys.end());
  return Call(&v1::PageStore::Stub::DeleteBatch, request, options_.timeout);
}

absl::StatusOr<uint64_t> Client::DeleteAll(absl::string_view tenant) {
  v1::DeleteAllRequest request;
  request.set_tenant(std::string(tenant));
  absl::StatusOr<v1::DeleteAllResponse> response =
      Call(&v1::PageStore::Stub::DeleteAll, request, options_.timeout);
  if (!response.ok()) return response.status();
  return response->deleted_pages();
}

template <typename Request, typename Response>
absl::Status Client::RunBatches(
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (
        v1::PageStore::Stub::*prepare)(grpc::ClientContext*, const Request&,
                                       grpc::CompletionQueue*),
    size_t count, absl::Duration timeout,
    absl::FunctionRef<Request(size_t first, size_t n)> make_request,
    absl::FunctionRef<void(size_t first, size_t n, const Response&)> take) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
    Response response;
    grpc::Status status;
    size_t first = 0;
    size_t n = 0;
  };
  const size_t per_call = static_cast<size_t>(
      std::clamp(options_.pages_per_call, 1, static_cast<int>(kMaxBatchPages)));
  const size_t window =
      static_cast<size_t>(std::clamp(options_.calls_in_flight, 1, 64));
  grpc::CompletionQueue queue;
  std::vector<Call> calls(window);
  size_t next = 0;
  size_t in_flight = 0;
  absl::Status failure;
  auto launch = [&](size_t slot) {
    Call& call = calls[slot];
    call.first = next;
    call.n = std::min(per_call, count - next);
    next += call.n;
    call.context = ContextWithin(timeout);
    call.response.Clear();
    call.reader = ((*stub_).*prepare)(call.context.get(),
                                      make_request(call.first, call.n), &queue);
    call.reader->StartCall();
    call.reader->Finish(&call.response, &call.status,
                        reinterpret_cast<void*>(slot));
    ++in_flight;
  };
  for (size_t slot = 0; slot < window && next < count; ++slot) launch(slot);
  void* tag;
  bool ok;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    --in_flight;
    const size_t slot = reinterpret_cast<size_t>(tag);
    Call& call = calls[slot];
    if (!call.status.ok()) {
      if (failure.ok()) failure = FromGrpcStatus(call.status);
    } else {
      take(call.first, call.n, call.response);
    }
    if (failure.ok() && next < count) launch(slot);
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  return failure;
}

absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> Client::PutMany(
    absl::string_view tenant, absl::Span<const KeyedPage> pages) {
  std::vector<absl::StatusOr<PutReply>> results(
      pages.size(), absl::InternalError("never answered"));
  // A page of the wrong size would make its whole batch invalid: it gets its
  // own INVALID_ARGUMENT, as the server would give it, and stays home.
  std::vector<size_t> sendable;
  sendable.reserve(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    if (absl::Status size = CheckPageSize(pages[i]); !size.ok()) {
      results[i] = size;
      continue;
    }
    sendable.push_back(i);
  }
  absl::Status status = RunBatches<v1::PutBatchRequest, v1::PutBatchResponse>(
      &v1::PageStore::Stub::PrepareAsyncPutBatch, sendable.size(),
      options_.timeout,
      [&](size_t first, size_t n) {
        v1::PutBatchRequest request;
        request.set_tenant(std::string(tenant));
        std::string* data = request.mutable_pages();
        data->reserve(n * kPageSize);
        // Encoded, every page names its encoding and size; a whole page
        // among encoded ones is RAW.
        bool encoded = false;
        for (size_t i = first; i < first + n; ++i) {
          const KeyedPage& page = pages[sendable[i]];
          const size_t at = data->size();
          const std::optional<PageEncoding> encoding =
              AppendPage(options_.compression, page, data);
          request.add_keys(page.key);
          if (encoding.has_value() && !encoded) {
            encoded = true;
            request.mutable_encodings()->Resize(i - first, v1::RAW);
            request.mutable_sizes()->Resize(i - first, kPageSize);
          }
          if (encoded) {
            request.add_encodings(
                ToWireEncoding(encoding.value_or(PageEncoding::kRaw)));
            request.add_sizes(static_cast<uint32_t>(data->size() - at));
          }
        }
        return request;
      },
      [&](size_t first, size_t n, const v1::PutBatchResponse& response) {
        for (size_t i = 0; i < n; ++i) {
          absl::StatusOr<PutReply>& out = results[sendable[first + i]];
          if (i >= size_t(response.results_size())) {
            out = Missing(n, response.results_size());
            continue;
          }
          const v1::PutItemResult& result = response.results(i);
          if (result.code() != 0) {
            out = ItemStatus(result.code(), result.message());
            continue;
          }
          absl::StatusOr<PageEncoding> encoding =
              FromWireEncoding(result.encoding());
          if (!encoding.ok()) {
            out = encoding.status();
            continue;
          }
          out = PutReply{*encoding, result.stored_bytes()};
        }
      });
  if (!status.ok()) return status;
  return results;
}

absl::StatusOr<std::vector<absl::Status>> Client::GetMany(
    absl::string_view tenant, absl::Span<const uint64_t> keys,
    absl::Span<uint8_t* const> outs) {
  if (outs.size() != keys.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GetMany: ", keys.size(), " keys but ", outs.size(), " outputs"));
  }
  std::vector<absl::Status> results(keys.size());
  const PageEncodingSet accept = AcceptedEncodings(options_.compression);
  absl::Status status = RunBatches<v1::GetBatchRequest, v1::GetBatchResponse>(
      &v1::PageStore::Stub::PrepareAsyncGetBatch, keys.size(), ReadTimeout(),
      [&](size_t first, size_t n) {
        v1::GetBatchRequest request;
        request.set_tenant(std::string(tenant));
        request.mutable_keys()->Add(keys.begin() + first,
                                    keys.begin() + first + n);
        ToWireAccept(accept, request.mutable_accept());
        return request;
      },
      [&](size_t first, size_t n, const v1::GetBatchResponse& response) {
        // Pages as stored come with an encoding and a size each; whole ones
        // (the request accepted none, or the server predates encodings)
        // without. Where each lies in `data` is checked before any is read.
        const bool as_stored =
            response.sizes_size() > 0 || response.encodings_size() > 0;
        const absl::string_view data = response.pages();
        std::vector<size_t> sizes(n, kPageSize);
        bool complete = size_t(response.codes_size()) == n;
        if (as_stored) {
          complete = complete && size_t(response.sizes_size()) == n &&
                     size_t(response.encodings_size()) == n;
          for (size_t i = 0; complete && i < n; ++i) {
            sizes[i] = response.sizes(i);
          }
        }
        size_t total = 0;
        for (size_t size : sizes) total += size;
        complete = complete && data.size() == total;
        size_t offset = 0;
        for (size_t i = 0; i < n; ++i) {
          absl::Status& out = results[first + i];
          const absl::string_view page = data.substr(offset, sizes[i]);
          offset += sizes[i];
          if (!complete) {
            out = Missing(n, response.codes_size());
            continue;
          }
          out = ItemStatus(response.codes(i), "");
          if (out.ok()) {
            out = TakePage(
                as_stored ? response.encodings(i) : v1::ENCODING_UNSPECIFIED,
                page, outs[first + i]);
          }
        }
      });
  if (!status.ok()) return status;
  return results;
}

absl::StatusOr<std::vector<bool>> Client::DeleteMany(
    absl::string_view tenant, absl::Span<const uint64_t> keys) {
  std::vector<bool> existed(keys.size());
  absl::Status missing;
  absl::Status status =
      RunBatches<v1::DeleteBatchRequest, v1::DeleteBatchResponse>(
          &v1::PageStore::Stub::PrepareAsyncDeleteBatch, keys.size(),
          options_.timeout,
          [&](size_t first, size_t n) {
            v1::DeleteBatchRequest request;
            request.set_tenant(std::string(tenant));
            request.mutable_keys()->Add(keys.begin() + first,
                                        keys.begin() + first + n);
            return request;
          },
          [&](size_t first, size_t n, const v1::DeleteBatchResponse& response) {
            if (size_t(response.existed_size()) != n) {
              missing = Missing(n, response.existed_size());
              return;
            }
            for (size_t i = 0; i < n; ++i) {
              existed[first + i] = response.existed(i);
            }
          });
  if (!status.ok()) return status;
  if (!missing.ok()) return missing;
  return existed;
}

absl::StatusOr<std::unique_ptr<EvictionWatcher>> Client::Watch(
    absl::string_view tenant, EvictionCallback on_page) {
  auto watcher =
      std::make_unique<StreamWatcher>(NewContext(/*streaming=*/true));
  std::promise<bool> subscribed;
  std::future<bool> subscribed_future = subscribed.get_future();
  watcher->Start(stub_.get(), std::string(tenant), options_.exclusive_watch,
                 AcceptedEncodings(options_.compression), std::move(on_page),
                 std::move(subscribed));
  // The stream has no deadline, but its subscription does: a hung server
  // must not hold the caller.
  if (subscribed_future.wait_for(absl::ToChronoNanoseconds(ReadTimeout())) !=
      std::future_status::ready) {
    watcher->Stop();
    return absl::DeadlineExceededError(
        absl::StrCat("the server did not take the subscription within ",
                     absl::FormatDuration(ReadTimeout())));
  }
  if (!subscribed_future.get()) {
    absl::Status refused = watcher->Wait();
    return refused.ok() ? absl::UnavailableError("the server did not subscribe")
                        : refused;
  }
  return watcher;
}

}  // namespace zpaged
