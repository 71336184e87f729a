#include "server/zpaged_server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "contract/names.h"
#include "contract/page.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/rpc/watch_reactor.h"

namespace zpaged {

namespace {

// The name to report: `configured`, or the host name when it is empty.
absl::StatusOr<std::string> ResolveNodeName(const std::string& configured) {
  std::string name = configured;
  if (name.empty()) {
    char host[256] = {};  // Linux host names are at most 64 bytes
    if (gethostname(host, sizeof(host) - 1) != 0) {
      return absl::InternalError(absl::StrCat(
          "cannot read the host name for --node_name: ", std::strerror(errno)));
    }
    name = host;
  }
  if (absl::Status valid = ValidateNodeName(name); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--node_name '", name, "': ", valid.message(),
        configured.empty() ? " (it is the host name; give --node_name)" : ""));
  }
  return name;
}

// The largest legal request is a PutBatch of kMaxBatchPages pages with a
// tenant name at its longest: 1 MiB of pages, up to 10 bytes a key and
// protobuf's framing. The cap leaves a little room above that, so that a
// request that is bad in a small way (a tenant name a few hundred bytes too
// long, one key too many) gets its own INVALID_ARGUMENT rather than a size
// error.
constexpr int kMaxRequestBytes =
    static_cast<int>(kMaxBatchPages * kPageSize + 8192);
static_assert(kMaxRequestBytes >
              kMaxBatchPages * (kPageSize + 11) + kMaxTenantNameBytes + 64);

// True for addresses only this machine can reach: 127.0.0.0/8, ::1,
// localhost, and Unix sockets.
bool IsLoopback(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) return true;
  absl::string_view host = address.substr(0, address.rfind(':'));
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// A duration as a gRPC channel argument: whole milliseconds, capped at
// INT_MAX (gRPC's "never").
int Milliseconds(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d),
                                            std::numeric_limits<int>::max()));
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// The USER:PASSWORD on the first line of `path`, for /metrics.
absl::StatusOr<std::pair<std::string, std::string>> ReadBasicAuth(
    const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  // A file written on Windows ends its line in CR LF; the CR is not part of
  // the password (only the line ending goes: a password may end in a space).
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t colon = line.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == line.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the metrics auth file holds one line USER:PASSWORD"));
  }
  return std::make_pair(line.substr(0, colon), line.substr(colon + 1));
}

// Plaintext without TLS files; TLS with a certificate and key; mutual TLS
// when a client CA is given too.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together: give both or neither");
  }
  if (options.tls_cert_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// The connection cap, held below the descriptor limit: gRPC, the metrics
// endpoint and the token file need descriptors too.
size_t ConnectionCap(size_t requested) {
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 ||
      files.rlim_cur == RLIM_INFINITY) {
    return requested;
  }
  constexpr rlim_t kReserve = 64;
  const rlim_t room = files.rlim_cur > 2 * kReserve ? files.rlim_cur - kReserve
                                                    : files.rlim_cur / 2;
  if (requested <= room) return requested;
  std::fprintf(stderr,
               "zpaged: --max_connections lowered from %zu to %zu: the open "
               "files limit is %llu\n",
               requested, static_cast<size_t>(room),
               static_cast<unsigned long long>(files.rlim_cur));
  return room;
}

// The store's options, telling `metrics` how long Puts waited for room.
StoreOptions WithRoomWaitMetrics(StoreOptions options,
                                 EvictionMetrics* metrics) {
  options.on_room_wait = [metrics](absl::Duration waited) {
    metrics->OnRoomWait(waited);
  };
  return options;
}

}  // namespace

ZpagedServer::ZpagedServer(const ServerOptions& options, std::string node_name,
                           std::unique_ptr<Authorizer> authorizer)
    : node_name_(std::move(node_name)),
      authorizer_(std::move(authorizer)),
      registry_(std::make_shared<prometheus::Registry>()),
      eviction_metrics_(*registry_),
      broker_(BrokerOptions{
          .ack_deadline = options.ack_deadline,
          .max_watchers_per_tenant = options.max_watchers_per_tenant,
          .max_watched_tenants = options.store.max_tenants,
          .holds_pages =
              [this](absl::string_view tenant) {
                return store_.StatsOf({std::string(tenant)}).stored_pages > 0;
              },
          .on_ack = [this](absl::Duration d) { eviction_metrics_.OnAck(d); },
          .log = {}}),
      store_(WithRoomWaitMetrics(options.store, &eviction_metrics_), &broker_),
      request_metrics_(*registry_),
      store_collector_(std::make_shared<StoreCollector>(
          &store_, &broker_, options.metrics_per_tenant)),
      service_(&store_, &broker_, authorizer_.get(), &request_metrics_,
               ServiceBounds{.stream_buffer_bytes = options.stream_buffer_bytes,
                             .requests = RequestAdmission::WithinGrpcMemory(
                                 options.grpc_memory_bytes)},
               node_name_),
      drain_on_shutdown_(options.drain_on_shutdown),
      drain_deadline_(options.drain_deadline) {}

absl::StatusOr<std::unique_ptr<ZpagedServer>> ZpagedServer::Start(
    const ServerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options);
  if (!credentials.ok()) return credentials.status();
  if (absl::Status codec = ValidateCodecOptions(options.store.codec);
      !codec.ok()) {
    return codec;
  }
  if (absl::Status pool = ValidateZpoolDriver(options.store.pool_driver);
      !pool.ok()) {
    return pool;
  }
  absl::StatusOr<std::string> node_name = ResolveNodeName(options.node_name);
  if (!node_name.ok()) return node_name.status();
  std::unique_ptr<Authorizer> authorizer = std::make_unique<Authorizer>();
  if (!options.auth_tokens_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authorizer>> loaded =
        Authorizer::FromFile(options.auth_tokens_file);
    if (!loaded.ok()) return loaded.status();
    authorizer = *std::move(loaded);
  } else if (!options.allow_unauthenticated_remote &&
             !IsLoopback(options.listen)) {
    // As Redis' protected mode: other machines' memory is not served to
    // anyone who can reach the port unless the operator says so.
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", options.listen,
        " without authentication: give --auth_tokens_file, listen on "
        "loopback, or pass --allow_unauthenticated_remote"));
  }
  std::unique_ptr<ZpagedServer> server(
      new ZpagedServer(options, *std::move(node_name), std::move(authorizer)));

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
    if (!options.metrics_auth_file.empty()) {
      absl::StatusOr<std::pair<std::string, std::string>> credentials =
          ReadBasicAuth(options.metrics_auth_file);
      if (!credentials.ok()) return credentials.status();
      server->exposer_->RegisterAuth(
          [credentials = *std::move(credentials)](const std::string& user,
                                                  const std::string& password) {
            return user == credentials.first && password == credentials.second;
          },
          "zpaged metrics");
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  absl::StatusOr<std::unique_ptr<ConnectionListener>> listener =
      ConnectionListener::Open(ListenerOptions{
          .address = options.listen,
          .max_connections = ConnectionCap(options.max_connections)});
  if (!listener.ok()) return listener.status();
  server->listener_ = *std::move(listener);
  if (server->exposer_ != nullptr) {
    server->listener_collector_ =
        std::make_shared<ListenerCollector>(server->listener_.get());
    server->exposer_->RegisterCollectable(server->listener_collector_);
  }
  grpc::ServerBuilder builder;
  server->acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      *credentials);
  builder.RegisterService(&server->service_);
  // Anything larger than a Put can be is refused with RESOURCE_EXHAUSTED
  // before it is parsed (gRPC's default would take 4 MiB).
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  // Ping idle connections so that a watcher whose host died is noticed in
  // about a minute and a half rather than at TCP's timeout, and let clients
  // keep their own idle connections alive at a modest rate.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  // What one connection may hold, however its client behaves: a bound on
  // its open calls, and an end to connections that carry no call (clients
  // that only answer pings) or that live forever.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             Milliseconds(options.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             Milliseconds(options.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Milliseconds(options.max_connection_age_grace));
  grpc::ResourceQuota quota("zpaged");
  quota.Resize(static_cast<size_t>(options.grpc_memory_bytes));
  builder.SetResourceQuota(quota);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::InternalError("gRPC could not start the server");
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  grpc::experimental::ExternalConnectionAcceptor* acceptor =
      server->acceptor_.get();
  server->listener_->Start([acceptor](int listener_fd, int fd) {
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters
        connection;
    connection.listener_fd = listener_fd;
    connection.fd = fd;
    acceptor->HandleNewConnection(&connection);
  });
  server->reset_guard_ = std::make_unique<StreamResetGuard>(
      options.stream_resets, server->listener_.get());
  if (absl::StartsWith(options.listen, "unix:")) {
    server->address_ = options.listen;
  } else {
    const absl::string_view host =
        absl::string_view(options.listen).substr(0, options.listen.rfind(':'));
    server->address_ = absl::StrCat(host, ":", server->listener_->port());
  }
  return server;
}

int ZpagedServer::metrics_port() const {
  if (exposer_ == nullptr) return 0;
  const std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

absl::StatusOr<size_t> ZpagedServer::ReloadTokens() {
  if (!authorizer_->enabled()) {
    return absl::FailedPreconditionError(
        "no --auth_tokens_file: authentication is off");
  }
  absl::StatusOr<size_t> loaded = authorizer_->Reload();
  if (!loaded.ok()) return loaded;
  // Calls check their token as they come; an eviction stream stays open,
  // so each is checked again now. Every channel is a WatchReactor.
  broker_.VisitChannels([](absl::string_view tenant, WatcherChannel& channel) {
    static_cast<WatchReactor&>(channel).Reauthorize(tenant);
  });
  return loaded;
}

PageStore::DrainReport ZpagedServer::Shutdown(absl::Duration grace) {
  PageStore::DrainReport report;
  if (shut_down_) return report;
  shut_down_ = true;
  // No new pages, so a drain has an end, and health with it, so that load
  // balancers stop sending work while calls drain; then the pages, while
  // the watchers are still connected, until the drain deadline; then the
  // eviction streams, whose pages still out resolve as the streams end, so
  // that no call waits on an ack past the grace.
  store_.StopWrites();
  server_->GetHealthCheckService()->Shutdown();
  // No new connections; those open stay for the drain and the grace.
  reset_guard_.reset();
  listener_->Stop();
  if (drain_on_shutdown_) {
    report = store_.DrainToWatchers(absl::Now() + drain_deadline_);
  }
  broker_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoNanoseconds(grace));
  // Every stream has ended and detached from the broker by now, so every
  // delivery has its outcome and no Put or Reclaim is left waiting; the
  // timer may still be handing a timed-out one to the store, which is
  // destroyed before the broker: wait for it.
  server_->Wait();
  broker_.Stop();
  return report;
}

ZpagedServer::~ZpagedServer() {
  if (server_ != nullptr) Shutdown(absl::Seconds(5));
}

}  // namespace zpaged
