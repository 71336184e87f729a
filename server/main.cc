// zpaged: the server. Flags (each also settable as ZPAGED_<FLAG>), SIGHUP to
// reload the token file, and an orderly stop on SIGINT or SIGTERM: health
// NOT_SERVING, eviction streams ended, calls in flight finished, exit 0.

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/config/byte_size.h"
#include "server/config/env_flags.h"
#include "server/zpaged_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address for the gRPC service, host:port. Loopback by default; "
          "0.0.0.0:PORT to serve other machines.");
ABSL_FLAG(std::string, node_name, "",
          "This server's stable name, [A-Za-z0-9._-], reported to clients "
          "in every Stats answer: a tier's clients place pages by it, so it "
          "must stay the same across restarts and address changes (a "
          "StatefulSet pod name, zpaged-0). Empty: the host name.");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "File of 'TOKEN TENANT[,TENANT...]' lines. With it, every call needs "
          "'authorization: Bearer TOKEN' metadata and may use only the token's "
          "tenants. Read again on SIGHUP.");
ABSL_FLAG(bool, allow_unauthenticated_remote, false,
          "Without --auth_tokens_file the server refuses to listen on a "
          "non-loopback address unless this is set.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key, the service "
          "speaks TLS only.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; with it, clients must present a certificate that "
          "chains to it (mutual TLS).");
ABSL_FLAG(std::string, metrics_auth_file, "",
          "File whose first line is USER:PASSWORD: /metrics then wants HTTP "
          "basic auth (the scraper's basic_auth).");
ABSL_FLAG(bool, metrics_per_tenant, true,
          "Label the store and watcher series by tenant; false sums them "
          "over tenants, so /metrics names no tenant.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Address for Prometheus metrics (path /metrics), host:port; empty "
          "turns the endpoint off.");
ABSL_FLAG(zpaged::ByteSize, tenant_max_bytes, zpaged::ByteSize{1ull << 30},
          "Pool memory one tenant may hold (bytes, or with K/M/G/T). A Put "
          "past it evicts the tenant's least recently used pages to its "
          "watchers, or fails with RESOURCE_EXHAUSTED if none can take them.");
ABSL_FLAG(zpaged::ByteSize, max_memory_bytes, zpaged::ByteSize{4ull << 30},
          "Pool memory all tenants together may hold (bytes, or K/M/G/T).");
ABSL_FLAG(zpaged::SizeOrPercent, reclaim_headroom,
          zpaged::SizeOrPercent{.percent = zpaged::kDefaultReclaimHeadroom *
                                           100},
          "Free memory under --max_memory_bytes the server keeps in the "
          "background, by evicting from the tenants furthest above their "
          "fair share, so that Puts near the limit seldom wait (bytes, "
          "K/M/G/T, or a percentage of --max_memory_bytes; 0 turns it off).");
ABSL_FLAG(int, max_tenants, 1024,
          "Tenants the server holds at most; a Put that would create one more "
          "fails with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_watchers_per_tenant, 16,
          "Eviction streams one tenant may have open at once.");
ABSL_FLAG(std::string, pool, "zbud",
          "The pool driver of every tenant: zbud (two pages a frame, the "
          "kernel's design) or dense (as many as fit: about a third less "
          "memory per page on the page corpus).");
ABSL_FLAG(std::string, compressor, "lz4",
          "How pages that are not same-filled are compressed: lz4 (less CPU) "
          "or zstd (about 30% fewer bytes on the page corpus). Each page "
          "records its own encoding.");
ABSL_FLAG(int, zstd_level, 1,
          "With --compressor=zstd: zstd's level; higher packs tighter and "
          "costs more CPU per Put.");
ABSL_FLAG(int, max_connections, 10000,
          "Client connections open at once; past it a new connection is "
          "closed on arrival. Held below the open files limit less 64.");
ABSL_FLAG(int, max_streams_per_connection, 128,
          "Calls one HTTP/2 connection may have open at once (advertised as "
          "SETTINGS_MAX_CONCURRENT_STREAMS); more are refused.");
ABSL_FLAG(uint32_t, max_stream_resets_per_second,
          zpaged::StreamResetGuardOptions{}.max_resets_per_second,
          "Streams one connection's client may reset or cancel a second (and "
          "at once) before zpaged closes the connection as an HTTP/2 rapid "
          "reset (CVE-2023-44487); 0: no limit.");
ABSL_FLAG(absl::Duration, stream_reset_bar,
          zpaged::StreamResetGuardOptions{}.bar,
          "How long new connections from the address of a connection closed "
          "for resetting streams are refused (an IPv6 client's whole /64).");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(5),
          "A connection with no call open for this long is closed.");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Hours(24),
          "A connection this old is sent GOAWAY: its client reconnects.");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::Minutes(10),
          "After GOAWAY for age, how long its calls (eviction streams too) "
          "may go on before they are ended.");
ABSL_FLAG(zpaged::ByteSize, grpc_memory_bytes, zpaged::ByteSize{512 << 20},
          "Memory gRPC may use for connection and message buffers; under "
          "pressure it shrinks windows and refuses new streams.");
ABSL_FLAG(zpaged::ByteSize, stream_buffer_bytes, zpaged::ByteSize{128 << 20},
          "Responses and evicted pages that streams hold serialized and "
          "unwritten, all streams together; past it each stream goes one "
          "response at a time, and watchers are offered no more pages.");
ABSL_FLAG(absl::Duration, ack_deadline, absl::Seconds(5),
          "How long an evicted page waits for its watcher's ack before the "
          "page is kept and the watcher counts as stalled (e.g. 5s, 500ms).");
ABSL_FLAG(bool, drain_on_shutdown, false,
          "On SIGINT/SIGTERM, first evict every page of each tenant with a "
          "connected watcher to it, so a rolling restart loses nothing; what "
          "could not be drained is logged.");
ABSL_FLAG(absl::Duration, drain_deadline, absl::Seconds(30),
          "With --drain_on_shutdown: how long the drain may take; then the "
          "shutdown goes on and what is left is logged, tenant by tenant.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGINT/SIGTERM, how long calls in flight get to finish.");

namespace zpaged {
namespace {

void Log(const std::string& message) {
  std::fprintf(
      stderr, "%s zpaged: %s\n",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())
          .c_str(),
      message.c_str());
}

int Run() {
  // Block the stop signals in every thread (those gRPC starts inherit the
  // mask) so that only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Each connection is a descriptor: take every one the hard limit allows,
  // so that the connection cap, not EMFILE, is what a flood meets first.
  if (rlimit files; getrlimit(RLIMIT_NOFILE, &files) == 0 &&
                    files.rlim_cur < files.rlim_max) {
    const rlim_t soft = files.rlim_cur;
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) == 0) {
      Log(absl::StrCat("open files: raised the soft limit from ", soft,
                       " to the hard limit, ", files.rlim_max));
    }
  }

  for (const auto& [name, value] :
       {std::pair{"max_tenants", absl::GetFlag(FLAGS_max_tenants)},
        std::pair{"max_connections", absl::GetFlag(FLAGS_max_connections)},
        std::pair{"max_streams_per_connection",
                  absl::GetFlag(FLAGS_max_streams_per_connection)},
        std::pair{"max_watchers_per_tenant",
                  absl::GetFlag(FLAGS_max_watchers_per_tenant)}}) {
    if (value < 1) {
      Log(absl::StrCat("--", name, " must be at least 1, not ", value));
      return 2;
    }
  }

  ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.node_name = absl::GetFlag(FLAGS_node_name);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_auth_file = absl::GetFlag(FLAGS_metrics_auth_file);
  options.metrics_per_tenant = absl::GetFlag(FLAGS_metrics_per_tenant);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.allow_unauthenticated_remote =
      absl::GetFlag(FLAGS_allow_unauthenticated_remote);
  options.store.tenant_max_bytes = absl::GetFlag(FLAGS_tenant_max_bytes).bytes;
  options.store.max_memory_bytes = absl::GetFlag(FLAGS_max_memory_bytes).bytes;
  options.store.reclaim_headroom_bytes =
      absl::GetFlag(FLAGS_reclaim_headroom).Of(options.store.max_memory_bytes);
  options.store.max_tenants = absl::GetFlag(FLAGS_max_tenants);
  const std::optional<PageCompressor> compressor =
      ParsePageCompressor(absl::GetFlag(FLAGS_compressor));
  if (!compressor.has_value()) {
    Log(absl::StrCat("--compressor must be lz4 or zstd, not '",
                     absl::GetFlag(FLAGS_compressor), "'"));
    return 2;
  }
  options.store.codec.compressor = *compressor;
  options.store.codec.zstd_level = absl::GetFlag(FLAGS_zstd_level);
  options.store.pool_driver = absl::GetFlag(FLAGS_pool);
  options.max_watchers_per_tenant =
      absl::GetFlag(FLAGS_max_watchers_per_tenant);
  options.ack_deadline = absl::GetFlag(FLAGS_ack_deadline);
  options.drain_on_shutdown = absl::GetFlag(FLAGS_drain_on_shutdown);
  options.drain_deadline = absl::GetFlag(FLAGS_drain_deadline);
  options.max_connections = absl::GetFlag(FLAGS_max_connections);
  options.max_streams_per_connection =
      absl::GetFlag(FLAGS_max_streams_per_connection);
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.stream_resets.max_resets_per_second =
      absl::GetFlag(FLAGS_max_stream_resets_per_second);
  options.stream_resets.bar = absl::GetFlag(FLAGS_stream_reset_bar);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace =
      absl::GetFlag(FLAGS_max_connection_age_grace);
  options.grpc_memory_bytes = absl::GetFlag(FLAGS_grpc_memory_bytes).bytes;
  options.stream_buffer_bytes = absl::GetFlag(FLAGS_stream_buffer_bytes).bytes;
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  if (!server.ok()) {
    Log(std::string(server.status().message()));
    return 1;
  }
  Log(absl::StrCat("serving zpaged.v1.PageStore as node '",
                   (*server)->node_name(), "' on ", (*server)->address(),
                   options.metrics_listen.empty()
                       ? ""
                       : absl::StrCat(", metrics on http://",
                                      options.metrics_listen, "/metrics"),
                   "; tenant limit ",
                   AbslUnparseFlag(ByteSize{options.store.tenant_max_bytes}),
                   ", server limit ",
                   AbslUnparseFlag(ByteSize{options.store.max_memory_bytes}),
                   "; pool ", options.store.pool_driver, ", compressor ",
                   absl::GetFlag(FLAGS_compressor)));

  if (!options.auth_tokens_file.empty()) {
    Log(absl::StrCat("authentication on: tokens from ",
                     options.auth_tokens_file));
  }

  int signal = 0;
  for (;;) {
    sigwait(&stop_signals, &signal);
    if (signal != SIGHUP) break;
    // Counts only: tokens are never logged.
    absl::StatusOr<size_t> reloaded = (*server)->ReloadTokens();
    Log(reloaded.ok()
            ? absl::StrCat("SIGHUP: reloaded ", *reloaded, " tokens")
            : absl::StrCat("SIGHUP: tokens not reloaded, the old ones stay: ",
                           reloaded.status().message()));
  }
  Log(absl::StrCat("received ", signal == SIGINT ? "SIGINT" : "SIGTERM",
                   "; taking no more pages, finishing calls in flight"));
  const PageStore::DrainReport drained =
      (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  if (options.drain_on_shutdown) {
    Log(absl::StrCat("drained ", drained.drained_pages,
                     " pages to their watchers"));
    for (const PageStore::DrainReport::Left& left : drained.left) {
      Log(absl::StrCat(
          "not drained: tenant '", left.tenant, "' still held ", left.pages,
          " pages (", left.same_filled_pages, " of them same-filled): ",
          left.watched ? "its watchers did not ack them by --drain_deadline"
                       : "it had no watcher"));
    }
  }
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  // --help lists the flags of this file: Abseil would look for a file named
  // after the program.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "a remote, compressed store of 4 KiB memory pages.\n"
      "Every flag can also be set as ZPAGED_<FLAG>, e.g. "
      "ZPAGED_LISTEN=0.0.0.0:50051;\nthe command line wins.");
  if (absl::Status env = zpaged::ApplyFlagsFromEnvironment("server/main.cc");
      !env.ok()) {
    std::fprintf(stderr, "zpaged: %s\n", std::string(env.message()).c_str());
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built with absl::Mutex deadlock detection on, which
  // gRPC's every lock pays for (a graph lookup per acquisition). The tests
  // keep it; the server does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return zpaged::Run();
}
