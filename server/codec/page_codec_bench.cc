// page_codec_bench: the floor under zpaged's per-page CPU cost — what a Put
// and a Get cost if nothing but the codec and one copy of the page ran.
//
//   BM_PutFloor  same-filled check, LZ4 compression bounded as Tenant::Put
//                bounds it, and one 4 KiB copy (the page out of the request)
//   BM_GetFloor  LZ4 decompression and one 4 KiB copy (the page into the
//                response)
//
// Over the corpus pages, in corpus order. The server's CPU per operation,
// as zpaged-bench --server_pid reports it, is compared with these.
//
// Reproduce (medians of 5):
//   cmake --build build --target page_codec_bench corpus
//   build/server/codec/page_codec_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true

#include <array>
#include <cstring>
#include <vector>

#include "benchmark/benchmark.h"
#include "contract/page.h"
#include "server/codec/page_codec.h"
#include "server/core/zbud_pool.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

// Tenant::Put keeps the page's key in front of its LZ4 bytes.
constexpr size_t kLz4Bound = kZbudMaxAllocation - sizeof(uint64_t);

const PageCorpus& Corpus() {
  static const PageCorpus* corpus =
      new PageCorpus(PageCorpus::LoadDefaultOrExit("page_codec_bench"));
  return *corpus;
}

void BM_PutFloor(benchmark::State& state) {
  const PageCorpus& corpus = Corpus();
  std::array<uint8_t, kPageSize> received;
  std::array<uint8_t, kPageSize> compressed;
  size_t next = 0;
  for (auto _ : state) {
    absl::Span<const uint8_t> page = corpus.page(next++ % corpus.size());
    std::memcpy(received.data(), page.data(), kPageSize);
    benchmark::DoNotOptimize(received);
    if (SameFilledWord(received).has_value()) continue;
    benchmark::DoNotOptimize(Lz4CompressPage(
        received, absl::MakeSpan(compressed.data(), kLz4Bound)));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PutFloor);

void BM_GetFloor(benchmark::State& state) {
  const PageCorpus& corpus = Corpus();
  // What the pool would hold: each compressible page's LZ4 bytes.
  std::vector<std::vector<uint8_t>> stored;
  std::array<uint8_t, kPageSize> compressed;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const size_t size = Lz4CompressPage(
        corpus.page(i), absl::MakeSpan(compressed.data(), kLz4Bound));
    if (size > 0)
      stored.emplace_back(compressed.data(), compressed.data() + size);
  }
  std::array<uint8_t, kPageSize> page;
  std::array<uint8_t, kPageSize> response;
  size_t next = 0;
  for (auto _ : state) {
    const std::vector<uint8_t>& bytes = stored[next++ % stored.size()];
    benchmark::DoNotOptimize(Lz4DecompressPage(bytes, absl::MakeSpan(page)));
    std::memcpy(response.data(), page.data(), kPageSize);
    benchmark::DoNotOptimize(response);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetFloor);

}  // namespace
}  // namespace zpaged

BENCHMARK_MAIN();
