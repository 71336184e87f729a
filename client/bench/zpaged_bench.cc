// zpaged-bench: drives a running zpaged with the page corpus — Put then Get,
// over streams and over unary calls, N channels x M in flight — and, with
// --peer, the identical workload against Redis in the same run.
//
//   zpaged-bench --server=127.0.0.1:50051 --pages=200000
//                --peer=redis://127.0.0.1:6379 --server_pid=$(pidof zpaged)
//
// Prints a table (or --json) and exits 1 if any page was refused or read
// back wrong. scripts/bench.sh starts both servers and takes medians.

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/bench/bench_runner.h"
#include "client/bench/redis_target.h"
#include "client/bench/report.h"
#include "client/bench/zpaged_target.h"
#include "contract/page.h"
#include "tests/corpus/page_corpus.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "zpaged address");
ABSL_FLAG(std::string, tenant, "bench",
          "tenant name prefix; each mode uses <tenant>-<mode>");
ABSL_FLAG(std::string, token, "", "bearer token, if the server wants one");
ABSL_FLAG(std::string, modes, "stream,unary",
          "zpaged modes to run, comma-separated: stream, unary, batch");
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
ABSL_FLAG(std::string, peer_flavours, "raw,lz4,zstd",
          "Redis flavours: raw pages, and/or pages compressed by the client "
          "with LZ4 or zstd (level 1)");
ABSL_FLAG(int, server_pid, 0,
          "zpaged's pid, to report its CPU time and resident memory");
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
  ZpagedTargetOptions zpaged;
  zpaged.server = absl::GetFlag(FLAGS_server);
  zpaged.tenant = absl::GetFlag(FLAGS_tenant);
  zpaged.token = absl::GetFlag(FLAGS_token);
  zpaged.server_pid = static_cast<pid_t>(absl::GetFlag(FLAGS_server_pid));
  zpaged.batch_pages = absl::GetFlag(FLAGS_batch);
  for (absl::string_view mode :
       absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipEmpty())) {
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
  for (absl::string_view flavour : absl::StrSplit(
           absl::GetFlag(FLAGS_peer_flavours), ',', absl::SkipEmpty())) {
    if (flavour == "raw") {
      targets.push_back(
          std::make_unique<RedisTarget>(RedisTarget::Flavour::kRaw, *address));
    } else if (flavour == "lz4") {
      targets.push_back(
          std::make_unique<RedisTarget>(RedisTarget::Flavour::kLz4, *address));
    } else if (flavour == "zstd") {
      targets.push_back(
          std::make_unique<RedisTarget>(RedisTarget::Flavour::kZstd, *address));
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
