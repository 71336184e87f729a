// page_codec_bench: the floor under zpaged's per-page CPU cost — what a Put
// and a Get cost if nothing but the codec and one copy of the page ran.
//
//   BM_PutFloor  same-filled check, LZ4 compression bounded as Tenant::Put
//                bounds it, and one 4 KiB copy (the page out of the request)
//   BM_GetFloor  LZ4 decompression and one 4 KiB copy (the page into the
//                response)
//   BM_VerifyEncoded/lz4, /zstd  what the server spends checking a page the
//                client compressed (ExpandEncodedPage into a scratch page):
//                the whole codec cost of a Put compressed at the edge; its
//                counter sent_bytes_per_page is what a client compressing
//                at the edge sends (and the server keeps) for the mean
//                corpus page: same-filled 8, compressed, or RAW 4096
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
#include <utility>
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

void BM_VerifyEncoded(benchmark::State& state) {
  const PageCorpus& corpus = Corpus();
  const CodecOptions codec{.compressor = state.range(0) == 0
                                             ? PageCompressor::kLz4
                                             : PageCompressor::kZstd};
  // What clients send: every page that compresses, as they compress it.
  std::vector<std::pair<PageEncoding, std::vector<uint8_t>>> sent;
  std::array<uint8_t, kPageSize> compressed;
  double sent_bytes = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (SameFilledWord(corpus.page(i)).has_value()) {
      sent_bytes += sizeof(uint64_t);
      continue;
    }
    const Compressed c =
        CompressPage(codec, corpus.page(i),
                     absl::MakeSpan(compressed.data(), kPageSize - 1));
    sent_bytes += c.bytes > 0 ? c.bytes : kPageSize;
    if (c.bytes > 0) {
      sent.emplace_back(
          c.encoding,
          std::vector<uint8_t>(compressed.data(), compressed.data() + c.bytes));
    }
  }
  std::array<uint8_t, kPageSize> scratch;
  size_t next = 0;
  for (auto _ : state) {
    const auto& [encoding, bytes] = sent[next++ % sent.size()];
    benchmark::DoNotOptimize(
        ExpandEncodedPage(encoding, bytes, absl::MakeSpan(scratch)));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(PageCompressorName(codec.compressor));
  state.counters["sent_bytes_per_page"] = sent_bytes / corpus.size();
}
BENCHMARK(BM_VerifyEncoded)->Arg(0)->Arg(1);

}  // namespace
}  // namespace zpaged

BENCHMARK_MAIN();
