// page_store_bench: Get throughput of the store, without gRPC, on pages of
// the corpus that compress with LZ4 (each Get decompresses one).
//
//   BM_GetOneTenant    all threads read one tenant: what its locking allows
//   BM_GetOwnTenant    each thread reads its own tenant: the same work with
//                      nothing shared, the peer measured in the same run
//
// Reproduce (medians of 5):
//   cmake --build build --target page_store_bench corpus
//   build/server/store/page_store_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true

#include <cstdio>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "contract/page.h"
#include "server/evict/eviction_sink.h"
#include "server/store/page_store.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

constexpr int kMaxThreads = 2;
constexpr size_t kPages = 4096;

// One store, with kMaxThreads + 1 tenants each holding the same LZ4 pages.
struct Fixture {
  NoWatcherSink sink;
  PageStore store{StoreOptions{}, &sink};
  size_t pages = 0;

  Fixture() {
    const PageCorpus corpus = PageCorpus::LoadDefaultOrExit("page_store_bench");
    for (size_t i = 0; i < corpus.size() && pages < kPages; ++i) {
      const std::string& kind = corpus.kind(i);
      if (kind != "core" && kind != "text" && kind != "library") continue;
      bool lz4 = true;
      for (int t = 0; t <= kMaxThreads; ++t) {
        absl::StatusOr<PutResult> put = store.PutAndWait(
            "tenant-" + std::to_string(t), pages, corpus.page(i),
            PutOptions{.wait_for_room = false});
        lz4 &= put.ok() && put->encoding == PageEncoding::kLz4;
      }
      if (lz4) ++pages;  // a non-LZ4 page is overwritten by the next one
    }
  }
};

Fixture& Shared() {
  static Fixture* fixture = new Fixture;
  return *fixture;
}

void RunGets(benchmark::State& state, const std::string& tenant) {
  Fixture& f = Shared();
  std::vector<uint8_t> out(kPageSize);
  uint64_t key = state.thread_index() * 7919;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        f.store.Get(tenant, key++ % f.pages, absl::MakeSpan(out)));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_GetOneTenant(benchmark::State& state) { RunGets(state, "tenant-0"); }
BENCHMARK(BM_GetOneTenant)->Threads(1)->Threads(kMaxThreads)->UseRealTime();

void BM_GetOwnTenant(benchmark::State& state) {
  RunGets(state, "tenant-" + std::to_string(1 + state.thread_index()));
}
BENCHMARK(BM_GetOwnTenant)->Threads(1)->Threads(kMaxThreads)->UseRealTime();

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  std::fprintf(stderr, "page_store_bench: loading %zu LZ4 pages per tenant\n",
               zpaged::Shared().pages);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr,
               "page_store_bench: reproduce with: "
               "build/server/store/page_store_bench --benchmark_repetitions=5 "
               "--benchmark_report_aggregates_only=true\n");
  return 0;
}
