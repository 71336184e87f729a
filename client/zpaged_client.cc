#include "client/zpaged_client.h"

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "contract/grpc_status.h"
#include "contract/metadata.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace zpaged {

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
  return std::make_unique<Client>(grpc::CreateChannel(target, credentials),
                                  options);
}

Client::Client(std::shared_ptr<grpc::Channel> channel,
               const ClientOptions& options)
    : options_(options),
      stub_(v1::PageStore::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)) {}

absl::StatusOr<bool> Client::Serving() {
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_->Check(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

std::unique_ptr<grpc::ClientContext> Client::NewContext(bool streaming) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!streaming) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(options_.timeout));
  }
  if (!options_.token.empty()) {
    context->AddMetadata(kAuthorizationMetadata,
                         kBearerPrefix + options_.token);
  }
  return context;
}

template <typename Request, typename Response>
absl::StatusOr<Response> Client::Call(
    grpc::Status (v1::PageStore::Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
    const Request& request) {
  Response response;
  grpc::Status status =
      ((*stub_).*method)(NewContext().get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<PutReply> Client::Put(absl::string_view tenant, uint64_t key,
                                     absl::string_view page) {
  v1::PutRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  request.set_data(std::string(page));
  absl::StatusOr<v1::PutResponse> response =
      Call(&v1::PageStore::Stub::Put, request);
  if (!response.ok()) return response.status();
  return PutReply{response->encoding(), response->stored_bytes()};
}

absl::StatusOr<std::string> Client::Get(absl::string_view tenant,
                                        uint64_t key) {
  v1::GetRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  absl::StatusOr<v1::GetResponse> response =
      Call(&v1::PageStore::Stub::Get, request);
  if (!response.ok()) return response.status();
  return std::move(*response->mutable_data());
}

absl::StatusOr<bool> Client::Delete(absl::string_view tenant, uint64_t key) {
  v1::DeleteRequest request;
  request.set_tenant(std::string(tenant));
  request.set_key(key);
  absl::StatusOr<v1::DeleteResponse> response =
      Call(&v1::PageStore::Stub::Delete, request);
  if (!response.ok()) return response.status();
  return response->existed();
}

absl::StatusOr<v1::ReclaimResponse> Client::Reclaim(absl::string_view tenant,
                                                    uint32_t pages) {
  v1::ReclaimRequest request;
  request.set_tenant(std::string(tenant));
  request.set_pages(pages);
  return Call(&v1::PageStore::Stub::Reclaim, request);
}

absl::StatusOr<v1::StatsResponse> Client::Stats(absl::string_view tenant) {
  v1::StatsRequest request;
  request.set_tenant(std::string(tenant));
  return Call(&v1::PageStore::Stub::Stats, request);
}

template <typename Request, typename Response, typename Open>
absl::StatusOr<std::vector<Response>> Client::Pipeline(
    Open open, size_t count, const std::function<Request(size_t)>& make_request,
    int max_in_flight) {
  // The server queues at most 64 responses before it stops reading.
  const size_t window = static_cast<size_t>(std::clamp(max_in_flight, 1, 64));
  std::unique_ptr<grpc::ClientContext> context = NewContext(/*streaming=*/true);
  auto stream = open(context.get());
  std::vector<Response> responses;
  responses.reserve(count);
  size_t sent = 0;
  Response response;
  while (responses.size() < count) {
    // Refill in bursts once half the window is answered: the burst is
    // buffered and leaves in one write instead of a system call per item.
    // The write that fills the window, or is the last, flushes it.
    if (sent < count && sent - responses.size() <= window / 2) {
      bool written = true;
      while (written && sent < count && sent - responses.size() < window) {
        grpc::WriteOptions options;
        if (sent + 1 < count && sent + 1 - responses.size() < window) {
          options.set_buffer_hint();
        }
        written = stream->Write(make_request(sent), options);
        if (written) ++sent;
      }
      if (!written) break;
    } else if (stream->Read(&response)) {
      responses.push_back(std::move(response));
    } else {
      break;
    }
  }
  stream->WritesDone();
  if (grpc::Status status = stream->Finish(); !status.ok()) {
    return FromGrpcStatus(status);
  }
  if (responses.size() != count) {
    return absl::UnavailableError(absl::StrCat("the stream ended after ",
                                               responses.size(), " of ", count,
                                               " responses"));
  }
  return responses;
}

absl::StatusOr<std::vector<v1::PutStreamResponse>> Client::PutMany(
    absl::string_view tenant,
    const std::vector<std::pair<uint64_t, std::string>>& pages,
    int max_in_flight) {
  return Pipeline<v1::PutRequest, v1::PutStreamResponse>(
      [this](grpc::ClientContext* context) {
        return stub_->PutStream(context);
      },
      pages.size(),
      [&](size_t i) {
        v1::PutRequest request;
        request.set_tenant(std::string(tenant));
        request.set_key(pages[i].first);
        request.set_data(pages[i].second);
        return request;
      },
      max_in_flight);
}

absl::StatusOr<std::vector<v1::GetStreamResponse>> Client::GetMany(
    absl::string_view tenant, const std::vector<uint64_t>& keys,
    int max_in_flight) {
  return Pipeline<v1::GetRequest, v1::GetStreamResponse>(
      [this](grpc::ClientContext* context) {
        return stub_->GetStream(context);
      },
      keys.size(),
      [&](size_t i) {
        v1::GetRequest request;
        request.set_tenant(std::string(tenant));
        request.set_key(keys[i]);
        return request;
      },
      max_in_flight);
}

absl::StatusOr<std::unique_ptr<EvictionWatcher>> Client::Watch(
    absl::string_view tenant, EvictionCallback on_page) {
  std::unique_ptr<EvictionWatcher> watcher(new EvictionWatcher);
  watcher->context_ = NewContext(/*streaming=*/true);
  std::promise<bool> subscribed;
  std::future<bool> subscribed_future = subscribed.get_future();

  watcher->thread_ =
      std::thread([this, w = watcher.get(), tenant = std::string(tenant),
                   on_page = std::move(on_page),
                   subscribed = std::move(subscribed)]() mutable {
        auto stream = stub_->WatchEvictions(w->context_.get());
        v1::EvictionAck subscribe;
        subscribe.set_tenant(tenant);
        stream->Write(subscribe);
        stream->WaitForInitialMetadata();
        const auto& metadata = w->context_->GetServerInitialMetadata();
        const bool ok = metadata.find(kSubscribedMetadata) != metadata.end();
        subscribed.set_value(ok);
        if (ok) {
          v1::EvictedPage page;
          while (stream->Read(&page)) {
            if (!on_page(page.key(), page.data())) continue;
            v1::EvictionAck ack;
            ack.set_sequence(page.sequence());
            if (!stream->Write(ack)) break;
          }
        }
        stream->WritesDone();
        w->SetEnded(FromGrpcStatus(stream->Finish()));
      });

  if (!subscribed_future.get()) {
    absl::Status refused = watcher->Wait();
    return refused.ok() ? absl::UnavailableError("the server did not subscribe")
                        : refused;
  }
  return watcher;
}

EvictionWatcher::~EvictionWatcher() { Stop(); }

void EvictionWatcher::Stop() {
  if (!thread_.joinable()) return;
  context_->TryCancel();
  thread_.join();
}

void EvictionWatcher::SetEnded(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  final_status_ = std::move(status);
  ended_changed_.notify_all();
}

absl::Status EvictionWatcher::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  ended_changed_.wait(lock, [this] { return ended_; });
  return final_status_;
}

bool EvictionWatcher::WaitFor(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return ended_changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                 [this] { return ended_; });
}

}  // namespace zpaged
