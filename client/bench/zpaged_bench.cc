// zpaged-bench: drives a running zpaged with the page corpus — Put then Get,
// over streams, unary calls, batches or the client library's interface, N
// channels x M in flight — and, with --peer, the identical workload against
// Redis in the same run. Given several servers, it measures them as a tier
// through the library (TierClient, --replicas copies of each page).
//
//   zpaged-bench --server=127.0.0.1:50051 --pages=200000
//                --peer=redis://127.0.0.1:6379 --server_pid=$(pidof zpaged)
//   zpaged-bench --server=127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053
//                --replicas=2 --server_pid=$(pidof zpaged | tr ' ' ,)
//
// Prints a table (or --json) and exits 1 if any page was refused or read
// back wrong. scripts/bench.sh starts both servers and takes medians.

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/bench/bench_runner.h"
#include "client/bench/page_client_target.h"
#include "client/bench/redis_target.h"
#include "client/bench/report.h"
#include "client/bench/zpaged_target.h"
#include "contract/page.h"
#include "tests/corpus/page_corpus.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "zpaged address, or several comma-separated ([NAME=]HOST:PORT): a "
          "tier, measured through the client library");
ABSL_FLAG(int, replicas, 0,
          "with several servers, copies of each page (1 to 3; default 2)");
ABSL_FLAG(std::string, tenant, "bench",
          "tenant name prefix; each mode uses <tenant>-<mode>");
ABSL_FLAG(std::string, token, "", "bearer token, if the server wants one");
ABSL_FLAG(std::string, modes, "",
          "zpaged modes to run, comma-separated: stream, unary, batch (the "
          "protocol's own ways, one server only) and client (PutMany/GetMany "
          "of the client library); default stream,unary, or client for a "
          "tier");
ABSL_FLAG(std::string, client_compression, "lz4",
          "client mode: how the library encodes pages before they are sent, "
          "comma-separated to measure several: lz4, zstd (level 1) or none "
          "(whole pages, compressed by the server)");
ABSL_FLAG(int, batch, 16,
          "batch mode: pages per PutBatch/GetBatch message (1 to 256); "
          "depth / batch calls are kept in flight");
ABSL_FLAG(int, channels, 2, "connections per target, each on its own thread");
ABSL_FLAG(int, depth, 16,
          "pages in flight per connection (1 to 64), in every mode and for "
          "Redis' pipeline alike");
ABSL_FLAG(uint64_t, pages, 0,
          "pages to put and get back per target (default 100000, or 2000 "
          "with --quick)");
ABSL_FLAG(double, seconds, 0,
          "when > 0, run each phase this long instead of --pages");
ABSL_FLAG(std::string, peer, "",
          "redis://HOST:PORT: run the same workload against Redis too");
ABSL_FLAG(std::string, peer_replica, "",
          "redis://HOST:PORT of a replica of --peer (replicaof): its memory "
          "and CPU are added to the primary's, once it has caught up");
ABSL_FLAG(std::string, peer_flavours, "raw,lz4,zstd",
          "Redis flavours: raw pages, and/or pages compressed by the client "
          "with LZ4 or zstd (level 1)");
ABSL_FLAG(std::string, server_pid, "",
          "zpaged's pid, or the pids of a tier's servers (comma- or "
          "space-separated), to report their CPU time and resident memory");
ABSL_FLAG(std::string, corpus, "",
          "page corpus directory (default: the build's, or $ZPAGED_CORPUS)");
ABSL_FLAG(bool, quick, false, "a quick correctness run of 2000 pages");
ABSL_FLAG(uint64_t, warmup_pages, 2000,
          "pages put and deleted on each target before the measured phases, "
          "so one-time costs (connections, threads) are not counted per "
          "page; 0 for none");
ABSL_FLAG(bool, json, false, "print JSON instead of the table");

namespace zpaged::bench {
namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "zpaged-bench: %s\n", message.c_str());
  return 2;
}

// The targets the flags ask for, zpaged first.
absl::StatusOr<std::vector<std::unique_ptr<BenchTarget>>> TargetsFromFlags() {
  std::vector<std::unique_ptr<BenchTarget>> targets;
  PageClientTargetOptions library;
  library.servers =
      absl::StrSplit(absl::GetFlag(FLAGS_server), ',', absl::SkipEmpty());
  if (library.servers.empty()) {
    return absl::InvalidArgumentError("--server names no server");
  }
  const bool tier = library.servers.size() > 1;
  library.replicas = absl::GetFlag(FLAGS_replicas);
  if (library.replicas == 0) library.replicas = tier ? 2 : 1;
  if (library.replicas < 1 || library.replicas > 3 ||
      static_cast<size_t>(library.replicas) > library.servers.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--replicas must be 1 to 3 and at most the servers (",
                     library.servers.size(), ")"));
  }
  for (absl::string_view pid :
       absl::StrSplit(absl::GetFlag(FLAGS_server_pid), absl::ByAnyChar(", "),
                      absl::SkipEmpty())) {
    int value = 0;
    if (!absl::SimpleAtoi(pid, &value) || value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--server_pid: \"", pid, "\" is not a pid"));
    }
    library.server_pids.push_back(static_cast<pid_t>(value));
  }
  library.tenant = absl::GetFlag(FLAGS_tenant);
  library.token = absl::GetFlag(FLAGS_token);
  library.batch_pages = absl::GetFlag(FLAGS_batch);
  library.depth = absl::GetFlag(FLAGS_depth);
  ZpagedTargetOptions zpaged;
  zpaged.server = library.servers[0];
  zpaged.tenant = library.tenant;
  zpaged.token = library.token;
  zpaged.server_pid = library.server_pids.empty() ? 0 : library.server_pids[0];
  zpaged.batch_pages = library.batch_pages;
  std::string modes = absl::GetFlag(FLAGS_modes);
  if (modes.empty()) modes = tier ? "client" : "stream,unary";
  for (absl::string_view mode : absl::StrSplit(modes, ',', absl::SkipEmpty())) {
    if (mode == "client") {
      for (absl::string_view name :
           absl::StrSplit(absl::GetFlag(FLAGS_client_compression), ',',
                          absl::SkipEmpty())) {
        std::optional<EdgeCompressor> compressor = ParseEdgeCompressor(name);
        if (!compressor.has_value()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "--client_compression: \"", name, "\" is not lz4, zstd or none"));
        }
        PageClientTargetOptions one = library;
        one.compression.compressor = *compressor;
        targets.push_back(std::make_unique<PageClientTarget>(one));
      }
      continue;
    }
    if (tier) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mode \"", mode, "\" drives one server; a tier runs --modes=client"));
    }
    if (mode == "stream") {
      targets.push_back(
          std::make_unique<ZpagedTarget>(ZpagedTarget::Mode::kStream, zpaged));
    } else if (mode == "unary") {
      targets.push_back(
          std::make_unique<ZpagedTarget>(ZpagedTarget::Mode::kUnary, zpaged));
    } else if (mode == "batch") {
      targets.push_back(
          std::make_unique<ZpagedTarget>(ZpagedTarget::Mode::kBatch, zpaged));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown mode \"", mode, "\" in --modes"));
    }
  }
  const std::string peer = absl::GetFlag(FLAGS_peer);
  if (peer.empty()) return targets;
  absl::StatusOr<RedisAddress> address = ParseRedisUrl(peer);
  if (!address.ok()) return address.status();
  std::optional<RedisAddress> replica;
  if (const std::string url = absl::GetFlag(FLAGS_peer_replica); !url.empty()) {
    absl::StatusOr<RedisAddress> parsed = ParseRedisUrl(url);
    if (!parsed.ok()) return parsed.status();
    replica = *std::move(parsed);
  }
  for (absl::string_view flavour : absl::StrSplit(
           absl::GetFlag(FLAGS_peer_flavours), ',', absl::SkipEmpty())) {
    if (flavour == "raw") {
      targets.push_back(std::make_unique<RedisTarget>(
          RedisTarget::Flavour::kRaw, *address, replica));
    } else if (flavour == "lz4") {
      targets.push_back(std::make_unique<RedisTarget>(
          RedisTarget::Flavour::kLz4, *address, replica));
    } else if (flavour == "zstd") {
      targets.push_back(std::make_unique<RedisTarget>(
          RedisTarget::Flavour::kZstd, *address, replica));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flavour \"", flavour, "\" in --peer_flavours"));
    }
  }
  return targets;
}

int Main() {
  RunOptions options;
  options.channels = absl::GetFlag(FLAGS_channels);
  options.depth = absl::GetFlag(FLAGS_depth);
  options.pages = absl::GetFlag(FLAGS_pages);
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  options.warmup_pages = absl::GetFlag(FLAGS_warmup_pages);
  if (options.pages == 0) {
    options.pages = absl::GetFlag(FLAGS_quick) ? 2000 : 100000;
  }
  if (options.channels < 1 || options.channels > 256) {
    return Usage("--channels must be 1 to 256");
  }
  // The server reads a stream no further than 64 unanswered items ahead.
  if (options.depth < 1 || options.depth > 64) {
    return Usage("--depth must be 1 to 64");
  }
  if (absl::GetFlag(FLAGS_batch) < 1 ||
      absl::GetFlag(FLAGS_batch) > kMaxBatchPages) {
    return Usage(absl::StrCat("--batch must be 1 to ", kMaxBatchPages));
  }
  absl::StatusOr<std::vector<std::unique_ptr<BenchTarget>>> targets =
      TargetsFromFlags();
  if (!targets.ok()) return Usage(targets.status().ToString());

  std::string corpus_dir = absl::GetFlag(FLAGS_corpus);
  if (corpus_dir.empty()) corpus_dir = PageCorpus::DefaultDir();
  absl::StatusOr<PageCorpus> corpus = PageCorpus::Load(corpus_dir);
  if (!corpus.ok()) {
    return Usage(absl::StrCat("cannot load the page corpus: ",
                              corpus.status().ToString()));
  }
  std::fprintf(stderr, "zpaged-bench: %zu corpus pages from %s\n",
               corpus->size(), corpus_dir.c_str());

  std::vector<TargetResult> results;
  bool clean = true;
  for (const auto& target : *targets) {
    absl::StatusOr<TargetResult> result = RunTarget(*target, *corpus, options);
    if (!result.ok()) {
      std::fprintf(stderr, "zpaged-bench: %s %s: %s\n", target->store().c_str(),
                   target->mode().c_str(), result.status().ToString().c_str());
      return 1;
    }
    clean = clean && result->clean();
    results.push_back(std::move(*result));
  }
  const std::string report = absl::GetFlag(FLAGS_json)
                                 ? FormatJson(options, results)
                                 : FormatTable(options, results);
  std::fputs(report.c_str(), stdout);
  if (!clean) {
    std::fprintf(stderr,
                 "zpaged-bench: some pages were refused or read back wrong\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace zpaged::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Benchmarks a running zpaged, and optionally Redis, with the page "
      "corpus.\nUsage: zpaged-bench [--server=HOST:PORT] [--peer=redis://...] "
      "[flags]");
  absl::ParseCommandLine(argc, argv);
  // As in the server: measure gRPC without Debian's debug deadlock detector.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return zpaged::bench::Main();
}
