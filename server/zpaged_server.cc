#include "server/zpaged_server.h"

#include <chrono>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace zpaged {

ZpagedServer::ZpagedServer(const ServerOptions& options)
    : hub_(options.ack_deadline),
      store_(options.store, &hub_),
      registry_(std::make_shared<prometheus::Registry>()),
      request_metrics_(*registry_),
      store_collector_(std::make_shared<StoreCollector>(&store_)),
      executor_(std::make_unique<BlockingExecutor>(options.reclaim_threads)),
      service_(&store_, &hub_, executor_.get(), &request_metrics_) {}

absl::StatusOr<std::unique_ptr<ZpagedServer>> ZpagedServer::Start(
    const ServerOptions& options) {
  std::unique_ptr<ZpagedServer> server(new ZpagedServer(options));

  if (!options.metrics_listen.empty()) {
    try {
      server->exposer_ =
          std::make_unique<prometheus::Exposer>(options.metrics_listen);
    } catch (const std::exception& e) {
      // prometheus-cpp reports an address it cannot bind by throwing.
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on ", options.metrics_listen, ": ", e.what()));
    }
    server->exposer_->RegisterCollectable(server->registry_);
    server->exposer_->RegisterCollectable(server->store_collector_);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&server->service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (address in use, or not an address?)"));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  const absl::string_view host =
      absl::string_view(options.listen).substr(0, options.listen.rfind(':'));
  server->address_ = absl::StrCat(host, ":", port);
  return server;
}

void ZpagedServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Health first, so that load balancers stop sending work while calls
  // drain; then the eviction streams, which would otherwise hold the server
  // open until the grace runs out.
  server_->GetHealthCheckService()->Shutdown();
  hub_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(grace));
  server_->Wait();
  // Runs the tasks still queued; their calls are already cancelled.
  executor_.reset();
}

ZpagedServer::~ZpagedServer() {
  if (server_ != nullptr) Shutdown(absl::Seconds(5));
}

}  // namespace zpaged
