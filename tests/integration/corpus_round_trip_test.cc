// Every page of the corpus through the service and back: byte-exact, and
// kept the way its kind calls for.

#include <string>

#include "client/zpaged_client.h"
#include "gtest/gtest.h"
#include "server/zpaged_server.h"
#include "tests/corpus/page_corpus.h"
#include "tests/testing/compressor_param.h"

namespace zpaged {
namespace {

// Once per compressor (the test parameter).
class CorpusRoundTripTest : public ::testing::TestWithParam<PageCompressor> {};

TEST_P(CorpusRoundTripTest, EveryPageComesBackByteExactWithTheRightEncoding) {
  absl::StatusOr<PageCorpus> corpus =
      PageCorpus::Load(PageCorpus::DefaultDir());
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  ASSERT_GE(corpus->size(), 1000u);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.store.codec.compressor = GetParam();
  const v1::Encoding compressed =
      GetParam() == PageCompressor::kZstd ? v1::ZSTD : v1::LZ4;
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<Client> client = Client::Connect((*server)->address());

  int zero = 0, same = 0, random = 0, compressed_pages = 0;
  for (size_t i = 0; i < corpus->size(); ++i) {
    const absl::Span<const uint8_t> page = corpus->page(i);
    absl::StatusOr<PutReply> put = client->Put(
        "corpus", i,
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          page.size()));
    ASSERT_TRUE(put.ok()) << "page " << i << ": " << put.status();
    const std::string& kind = corpus->kind(i);
    if (kind == "zero" || kind == "same") {
      EXPECT_EQ(put->encoding, v1::SAME_FILLED) << "page " << i;
      (kind == "zero" ? zero : same)++;
    } else if (kind == "random") {
      EXPECT_EQ(put->encoding, v1::RAW) << "page " << i;
      ++random;
    } else if (kind == "text") {
      EXPECT_EQ(put->encoding, compressed) << "page " << i;
    }
    compressed_pages += put->encoding == compressed;
  }
  EXPECT_GT(zero, 0);
  EXPECT_GT(same, 0);
  EXPECT_GT(random, 0);
  EXPECT_GT(compressed_pages, static_cast<int>(corpus->size() / 2));

  for (size_t i = 0; i < corpus->size(); ++i) {
    absl::StatusOr<std::string> back = client->Get("corpus", i);
    ASSERT_TRUE(back.ok()) << "page " << i << ": " << back.status();
    const absl::Span<const uint8_t> page = corpus->page(i);
    ASSERT_EQ(*back,
              absl::string_view(reinterpret_cast<const char*>(page.data()),
                                page.size()))
        << "page " << i << " (" << corpus->kind(i) << ") came back different";
  }

  v1::StatsResponse stats = *client->Stats("corpus");
  EXPECT_EQ(stats.stored_pages(), corpus->size());
  EXPECT_GE(stats.density(), 1.0);
  EXPECT_LE(stats.density(), 2.0);
  std::printf("corpus, %s: %zu pages, %lu pool frames, density %.3f\n",
              PageCompressorName(GetParam()), corpus->size(),
              stats.pool_pages(), stats.density());
}

INSTANTIATE_TEST_SUITE_P(Compressors, CorpusRoundTripTest, AllCompressors(),
                         CompressorName);

}  // namespace
}  // namespace zpaged
