// ZpagedServer: the whole server, assembled — authorization, store, eviction
// broker, gRPC service with health and reflection, and the metrics endpoint —
// so that main() and the tests run the same thing.
//
//   ConnectionListener ── accepted connections ─┐
//                                               v
//   ZpagedServer ── grpc::Server ── PageStoreService ── PageStore ── tenants
//                │                │                 └─ WatchReactor (one a
//                │                │                    stream) ─┐
//                │                └─ Health (SERVING until Shutdown)
//                ├─ EvictionBroker (the store's EvictionSink) <─┘
//                └─ prometheus::Exposer ── RequestMetrics, EvictionMetrics,
//                                          StoreCollector, ListenerCollector

#ifndef ZPAGED_SERVER_ZPAGED_SERVER_H_
#define ZPAGED_SERVER_ZPAGED_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/auth/authorizer.h"
#include "server/evict/eviction_broker.h"
#include "server/metrics/eviction_metrics.h"
#include "server/metrics/listener_collector.h"
#include "server/metrics/request_metrics.h"
#include "server/metrics/store_collector.h"
#include "server/net/connection_listener.h"
#include "server/net/stream_reset_guard.h"
#include "server/rpc/page_store_service.h"
#include "server/store/page_store.h"

namespace zpaged {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // port 0: the kernel picks
  // The server's stable name, reported in every Stats answer: clients of a
  // tier of servers place pages by it, so that a new address (a rescheduled
  // pod) moves no data. Empty: the host name. Must pass ValidateNodeName.
  std::string node_name;
  std::string metrics_listen;  // empty: no metrics endpoint
  // One line USER:PASSWORD; with it /metrics wants HTTP basic auth.
  std::string metrics_auth_file;
  // false: every store and watcher series is summed over tenants and has no
  // tenant label (no tenant names on /metrics, one series per family).
  bool metrics_per_tenant = true;
  // Bearer tokens and the tenants each may use; empty: no authentication.
  std::string auth_tokens_file;
  // Without a token file, listen beyond loopback only if this is set.
  bool allow_unauthenticated_remote = false;
  // TLS: PEM files of the server's certificate chain and key (both or
  // neither), and of the CA that client certificates must chain to (mutual
  // TLS; needs the other two).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  StoreOptions store;
  absl::Duration ack_deadline = absl::Seconds(5);
  size_t max_watchers_per_tenant = 16;
  // What one HTTP/2 connection may hold: calls (streams) open at once,
  // advertised as SETTINGS_MAX_CONCURRENT_STREAMS, beyond which a stream is
  // refused; how long it may stay with no call before the server closes it;
  // how old it may grow before the server sends GOAWAY, and how long calls
  // then have to finish.
  int max_streams_per_connection = 128;
  // Connections open at once; past it new ones are closed on arrival. Held
  // below the descriptor limit (RLIMIT_NOFILE) less a reserve for the rest
  // of the process.
  size_t max_connections = 10000;
  absl::Duration max_connection_idle = absl::Minutes(5);
  absl::Duration max_connection_age = absl::Hours(24);
  absl::Duration max_connection_age_grace = absl::Minutes(10);
  // Connections whose client resets streams faster than any real client
  // (HTTP/2 rapid reset) are closed, and their address refused for a while.
  StreamResetGuardOptions stream_resets;
  // Memory gRPC may use for its buffers across all connections; under
  // pressure it shrinks flow-control windows and refuses new streams.
  uint64_t grpc_memory_bytes = uint64_t{512} << 20;
  // zpaged's own stream buffers: responses and evicted pages serialized
  // and not yet written, all streams together. Past it, each stream reads
  // its next request only once its queue is empty, and watchers are
  // offered no more pages.
  uint64_t stream_buffer_bytes = uint64_t{128} << 20;
  // On Shutdown, evict every page of tenants with a watcher to it first,
  // for at most drain_deadline (pages still out then resolve as the
  // eviction streams end).
  bool drain_on_shutdown = false;
  absl::Duration drain_deadline = absl::Seconds(30);
};

class ZpagedServer {
 public:
  // Builds and starts everything. UNAVAILABLE when an address cannot be
  // listened on; FAILED_PRECONDITION when `listen` is not a loopback address
  // and there is neither a token file nor allow_unauthenticated_remote;
  // the token file's error when it cannot be loaded; INVALID_ARGUMENT or
  // NOT_FOUND for TLS files that do not go together or cannot be read.
  static absl::StatusOr<std::unique_ptr<ZpagedServer>> Start(
      const ServerOptions& options);

  // Shuts down with a short grace if Shutdown was not called.
  ~ZpagedServer();

  ZpagedServer(const ZpagedServer&) = delete;
  ZpagedServer& operator=(const ZpagedServer&) = delete;

  // The address the gRPC service listens on, with the real port.
  const std::string& address() const { return address_; }
  // --node_name, or the host name.
  const std::string& node_name() const { return node_name_; }

  // The port /metrics is served on (the real one when asked for port 0);
  // 0 without a metrics endpoint.
  int metrics_port() const;

  // Health goes NOT_SERVING and every Put from then on is UNAVAILABLE; with
  // drain_on_shutdown, every page of a tenant with a watcher is evicted to
  // it, for at most drain_deadline; eviction streams end with UNAVAILABLE,
  // new calls are refused, and calls in flight get `grace` to finish (then
  // they are cancelled). Returns once all are done, with what the drain did
  // (empty without drain_on_shutdown). Idempotent.
  PageStore::DrainReport Shutdown(absl::Duration grace);

  // Reads the token file again (SIGHUP); the old tokens stay in force if it
  // is bad. Every open eviction stream whose token no longer grants its
  // tenant then ends with PERMISSION_DENIED. Returns how many tokens are
  // loaded; FAILED_PRECONDITION when the server runs without authentication.
  absl::StatusOr<size_t> ReloadTokens();

  EvictionBroker& broker() { return broker_; }
  PageStore& store() { return store_; }

 private:
  ZpagedServer(const ServerOptions& options, std::string node_name,
               std::unique_ptr<Authorizer> authorizer);

  const std::string node_name_;
  const std::unique_ptr<Authorizer> authorizer_;
  std::shared_ptr<prometheus::Registry> registry_;
  EvictionMetrics eviction_metrics_;
  // Destroyed after the store: every delivery has its outcome by then.
  EvictionBroker broker_;
  PageStore store_;
  RequestMetrics request_metrics_;
  std::shared_ptr<StoreCollector> store_collector_;
  PageStoreService service_;
  std::unique_ptr<grpc::Server> server_;
  // Hands connections to gRPC through this; outlives the listener's thread.
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::unique_ptr<ConnectionListener> listener_;
  std::shared_ptr<ListenerCollector> listener_collector_;
  // Closes connections through the listener: stopped before it.
  std::unique_ptr<StreamResetGuard> reset_guard_;
  // Destroyed first: its scrapes read the store, the broker and the
  // listener.
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
  const bool drain_on_shutdown_;
  const absl::Duration drain_deadline_;
  bool shut_down_ = false;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_ZPAGED_SERVER_H_
