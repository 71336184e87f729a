// zbud_bench: what the storage core costs, on page sizes from real memory.
//
//   ns per Allocate+Free pair at steady state, beside malloc+free of the same
//   sizes (the peer, measured in the same run);
//   ns per reclaimed frame;
//   the density zbud reaches on the corpus' LZ4-compressed sizes.
//
// Reproduce (medians of 5):
//   cmake --build build --target zbud_bench corpus
//   build/server/core/zbud_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true

#include <lz4.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "server/core/testing/zpool_shrink.h"
#include "server/core/zbud_pool.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

// Compressed sizes of the corpus pages that would go to the pool: LZ4 output
// for pages that are not one repeated word, kPageSize for those that do not
// fit a buddy.
std::vector<size_t>& PoolSizes() {
  static std::vector<size_t>* sizes = [] {
    auto* out = new std::vector<size_t>;
    const PageCorpus corpus = PageCorpus::LoadDefaultOrExit("zbud_bench");
    std::vector<char> buffer(LZ4_compressBound(kPageSize));
    for (size_t i = 0; i < corpus.size(); ++i) {
      const uint8_t* page = corpus.page(i).data();
      bool same_filled = true;
      for (size_t off = 8; off < kPageSize && same_filled; off += 8) {
        same_filled = std::memcmp(page, page + off, 8) == 0;
      }
      if (same_filled) continue;
      const int n =
          LZ4_compress_default(reinterpret_cast<const char*>(page),
                               buffer.data(), kPageSize, buffer.size());
      out->push_back(n > 0 && static_cast<size_t>(n) <= kZbudMaxAllocation
                         ? static_cast<size_t>(n)
                         : kPageSize);
    }
    return out;
  }();
  return *sizes;
}

absl::StatusOr<ZpoolHandle> Place(ZbudPool& pool, size_t size) {
  return size > kZbudMaxAllocation ? pool.AllocateWholeFrame()
                                   : pool.Allocate(size);
}

constexpr size_t kSteadyPopulation = 8192;

void BM_ZbudAllocFree(benchmark::State& state) {
  const std::vector<size_t>& sizes = PoolSizes();
  ZbudPool pool{ZpoolOptions{}};
  std::vector<ZpoolHandle> live;
  for (size_t i = 0; i < kSteadyPopulation; ++i) {
    live.push_back(*Place(pool, sizes[i % sizes.size()]));
  }
  std::mt19937 rng(1);
  size_t next = 0;
  for (auto _ : state) {
    const size_t victim = rng() % live.size();
    benchmark::DoNotOptimize(pool.Free(live[victim]));
    live[victim] = *Place(pool, sizes[next++ % sizes.size()]);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("ns per Allocate+Free pair");
}
BENCHMARK(BM_ZbudAllocFree);

// The peer: the same pattern of sizes through the C library's allocator.
void BM_MallocFree(benchmark::State& state) {
  const std::vector<size_t>& sizes = PoolSizes();
  std::vector<void*> live;
  for (size_t i = 0; i < kSteadyPopulation; ++i) {
    live.push_back(std::malloc(sizes[i % sizes.size()]));
  }
  std::mt19937 rng(1);
  size_t next = 0;
  for (auto _ : state) {
    const size_t victim = rng() % live.size();
    std::free(live[victim]);
    live[victim] = std::malloc(sizes[next++ % sizes.size()]);
    benchmark::DoNotOptimize(live[victim]);
  }
  for (void* p : live) std::free(p);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("ns per malloc+free pair (peer)");
}
BENCHMARK(BM_MallocFree);

void BM_ZbudReclaimFrame(benchmark::State& state) {
  const std::vector<size_t>& sizes = PoolSizes();
  ZbudPool pool(ZpoolOptions{});
  uint64_t frames = 0;
  size_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < kSteadyPopulation; ++i) {
      benchmark::DoNotOptimize(Place(pool, sizes[next++ % sizes.size()]));
    }
    const uint64_t pool_frames = pool.Stats().pool_frames;
    state.ResumeTiming();
    frames += Shrink(pool, static_cast<uint32_t>(pool_frames),
                     [&pool](ZpoolHandle h) { return pool.Free(h); });
  }
  state.SetItemsProcessed(frames);
  state.counters["ns_per_frame"] = benchmark::Counter(
      static_cast<double>(frames),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetLabel("reclaim with an evict function that frees");
}
BENCHMARK(BM_ZbudReclaimFrame)->Unit(benchmark::kMillisecond);

void BM_ZbudDensity(benchmark::State& state) {
  double density = 0, whole_share = 0;
  const std::vector<size_t>& sizes = PoolSizes();
  for (auto _ : state) {
    ZbudPool pool{ZpoolOptions{}};
    for (size_t size : sizes) benchmark::DoNotOptimize(Place(pool, size));
    const ZpoolStats stats = pool.Stats();
    density = static_cast<double>(stats.allocations) /
              static_cast<double>(stats.pool_frames);
    whole_share = static_cast<double>(stats.whole_frame_allocations) /
                  static_cast<double>(stats.allocations);
  }
  state.counters["density"] = density;
  state.counters["whole_frame_share"] = whole_share;
  state.counters["pool_pages"] = static_cast<double>(sizes.size());
  state.SetLabel("pool pages per frame, corpus in order");
}
BENCHMARK(BM_ZbudDensity)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  std::fprintf(stderr,
               "zbud_bench: loading and compressing the page corpus from %s\n",
               zpaged::PageCorpus::DefaultDir().c_str());
  std::fprintf(stderr, "zbud_bench: %zu pool-bound pages in the corpus\n",
               zpaged::PoolSizes().size());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr,
               "zbud_bench: reproduce with: build/server/core/zbud_bench "
               "--benchmark_repetitions=5 "
               "--benchmark_report_aggregates_only=true\n");
  return 0;
}
