// Compression at the edge, end to end against a real server: pages encoded
// by the client travel and are kept as encoded, come back as stored or whole
// on every path (unary, stream, batch), and every malformed page is refused
// with nothing stored.

#include <lz4.h>
#include <zstd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/lib/zpaged_client.h"
#include "contract/page.h"
#include "contract/wire_encoding.h"
#include "gtest/gtest.h"
#include "server/codec/page_codec.h"
#include "server/zpaged_server.h"
#include "tests/corpus/page_corpus.h"

namespace zpaged {
namespace {

std::string TextPage(int seed) {
  std::string page(kPageSize, '\0');
  const std::string line = absl::StrCat("edge page ", seed, " says hello; ");
  for (size_t i = 0; i < kPageSize; ++i) page[i] = line[i % line.size()];
  return page;
}

std::string RandomPage(uint64_t seed) {
  std::string page(kPageSize, '\0');
  for (size_t i = 0; i < kPageSize; ++i) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    page[i] = static_cast<char>(seed >> 56);
  }
  return page;
}

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// `page` as a client encodes it in `encoding`.
std::string Encode(PageEncoding encoding, const std::string& page) {
  std::string out(kPageSize, '\0');
  const absl::Span<uint8_t> span =
      absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size());
  switch (encoding) {
    case PageEncoding::kSameFilled:
      out.resize(sizeof(uint64_t));
      std::memcpy(out.data(), page.data(), sizeof(uint64_t));
      break;
    case PageEncoding::kLz4:
      out.resize(Lz4CompressPage(Bytes(page), span));
      break;
    case PageEncoding::kZstd:
      out.resize(ZstdCompressPage(Bytes(page), span, 3));
      break;
    case PageEncoding::kRaw:
      out = page;
      break;
  }
  return out;
}

class EdgeCompressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
        ZpagedServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    wire_ = Client::Connect(server_->address());
  }

  // A client of `compressor`.
  std::unique_ptr<Client> ClientOf(EdgeCompressor compressor) {
    return Client::Connect(server_->address(),
                           ClientOptions{.compression = {compressor}});
  }

  uint64_t StoredPages() { return StoredPagesOf("vm"); }
  uint64_t StoredPagesOf(const std::string& tenant) {
    return wire_->Stats(tenant)->stored_pages();
  }

  // The pages of every encoding, as a client sends them.
  struct Case {
    PageEncoding encoding;
    std::string page;
    std::string encoded;
  };
  static std::vector<Case> Cases() {
    std::vector<Case> cases;
    const std::string same(kPageSize, '\x5a');
    cases.push_back({PageEncoding::kSameFilled, same,
                     Encode(PageEncoding::kSameFilled, same)});
    for (PageEncoding e : {PageEncoding::kLz4, PageEncoding::kZstd}) {
      const std::string text = TextPage(static_cast<int>(e));
      cases.push_back({e, text, Encode(e, text)});
    }
    const std::string random = RandomPage(7);
    cases.push_back({PageEncoding::kRaw, random, random});
    return cases;
  }
  // The Put of `c` under (tenant, key), as the client encoded it.
  static v1::PutRequest EncodedPut(const std::string& tenant, uint64_t key,
                                   const Case& c) {
    v1::PutRequest put;
    put.set_tenant(tenant);
    put.set_key(key);
    put.set_data(c.encoded);
    put.set_encoding(ToWireEncoding(c.encoding));
    return put;
  }

  std::unique_ptr<ZpagedServer> server_;
  std::unique_ptr<Client> wire_;  // for raw stub calls and Stats
};

void AcceptAll(google::protobuf::RepeatedField<int>* accept) {
  ToWireAccept(
      {PageEncoding::kSameFilled, PageEncoding::kLz4, PageEncoding::kZstd},
      accept);
}

TEST_F(EdgeCompressionTest, UnaryPutKeepsTheClientsBytesAndGetReturnsThem) {
  const std::vector<Case> cases = Cases();
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(PageEncodingName(cases[k].encoding));
    const v1::PutRequest put = EncodedPut("vm", k, cases[k]);
    v1::PutResponse stored;
    ASSERT_TRUE(
        wire_->stub().Put(wire_->NewContext().get(), put, &stored).ok());
    EXPECT_EQ(stored.encoding(), ToWireEncoding(cases[k].encoding));

    // As stored: the very bytes sent.
    v1::GetRequest get;
    get.set_tenant("vm");
    get.set_key(k);
    AcceptAll(get.mutable_accept());
    v1::GetResponse as_stored;
    ASSERT_TRUE(
        wire_->stub().Get(wire_->NewContext().get(), get, &as_stored).ok());
    EXPECT_EQ(as_stored.encoding(), ToWireEncoding(cases[k].encoding));
    EXPECT_EQ(as_stored.data(), cases[k].encoded);

    // An old client's Get: the whole page, no encoding named.
    get.clear_accept();
    v1::GetResponse whole;
    ASSERT_TRUE(wire_->stub().Get(wire_->NewContext().get(), get, &whole).ok());
    EXPECT_EQ(whole.encoding(), v1::ENCODING_UNSPECIFIED);
    EXPECT_EQ(whole.data(), cases[k].page);

    // A client accepting only LZ4 gets anything else whole, as RAW.
    get.add_accept(v1::LZ4);
    v1::GetResponse lz4_only;
    ASSERT_TRUE(
        wire_->stub().Get(wire_->NewContext().get(), get, &lz4_only).ok());
    if (cases[k].encoding == PageEncoding::kLz4) {
      EXPECT_EQ(lz4_only.data(), cases[k].encoded);
    } else {
      EXPECT_EQ(lz4_only.encoding(), v1::RAW);
      EXPECT_EQ(lz4_only.data(), cases[k].page);
    }
  }
}

TEST_F(EdgeCompressionTest, StreamsCarryEncodedPagesBothWays) {
  const std::vector<Case> cases = Cases();
  {
    auto context = wire_->NewContext(/*streaming=*/true);
    auto stream = wire_->stub().PutStream(context.get());
    for (size_t k = 0; k < cases.size(); ++k) {
      const v1::PutRequest put = EncodedPut("vm", k, cases[k]);
      ASSERT_TRUE(stream->Write(put));
    }
    stream->WritesDone();
    v1::PutStreamResponse response;
    for (size_t k = 0; k < cases.size(); ++k) {
      ASSERT_TRUE(stream->Read(&response));
      EXPECT_EQ(response.code(), 0) << response.message();
      EXPECT_EQ(response.encoding(), ToWireEncoding(cases[k].encoding));
    }
    ASSERT_TRUE(stream->Finish().ok());
  }
  auto context = wire_->NewContext(/*streaming=*/true);
  auto stream = wire_->stub().GetStream(context.get());
  for (size_t k = 0; k < cases.size(); ++k) {
    v1::GetRequest get;
    get.set_tenant("vm");
    get.set_key(k);
    AcceptAll(get.mutable_accept());
    ASSERT_TRUE(stream->Write(get));
  }
  stream->WritesDone();
  v1::GetStreamResponse response;
  for (size_t k = 0; k < cases.size(); ++k) {
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.code(), 0) << response.message();
    EXPECT_EQ(response.encoding(), ToWireEncoding(cases[k].encoding));
    EXPECT_EQ(response.data(), cases[k].encoded);
  }
  ASSERT_TRUE(stream->Finish().ok());
}

TEST_F(EdgeCompressionTest, OneBatchMixesEveryEncodingAndGetsThemAsStored) {
  const std::vector<Case> cases = Cases();
  v1::PutBatchRequest put;
  put.set_tenant("vm");
  for (size_t k = 0; k < cases.size(); ++k) {
    put.add_keys(k);
    put.add_encodings(ToWireEncoding(cases[k].encoding));
    put.add_sizes(cases[k].encoded.size());
    put.mutable_pages()->append(cases[k].encoded);
  }
  v1::PutBatchResponse stored;
  ASSERT_TRUE(
      wire_->stub().PutBatch(wire_->NewContext().get(), put, &stored).ok());
  ASSERT_EQ(stored.results_size(), static_cast<int>(cases.size()));
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(stored.results(k).code(), 0) << stored.results(k).message();
    EXPECT_EQ(stored.results(k).encoding(), ToWireEncoding(cases[k].encoding));
  }

  v1::GetBatchRequest get;
  get.set_tenant("vm");
  for (size_t k = 0; k < cases.size(); ++k) get.add_keys(k);
  get.add_keys(99);  // none there
  AcceptAll(get.mutable_accept());
  v1::GetBatchResponse got;
  ASSERT_TRUE(
      wire_->stub().GetBatch(wire_->NewContext().get(), get, &got).ok());
  ASSERT_EQ(got.sizes_size(), get.keys_size());
  ASSERT_EQ(got.encodings_size(), get.keys_size());
  size_t offset = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(got.codes(k), 0);
    EXPECT_EQ(got.encodings(k), ToWireEncoding(cases[k].encoding));
    EXPECT_EQ(got.pages().substr(offset, got.sizes(k)), cases[k].encoded);
    offset += got.sizes(k);
  }
  EXPECT_EQ(got.codes(cases.size()), 5);  // NOT_FOUND
  EXPECT_EQ(got.sizes(cases.size()), 0u);
  EXPECT_EQ(offset, got.pages().size());

  // Without `accept`, the old layout: whole pages at i * 4096.
  get.clear_accept();
  ASSERT_TRUE(
      wire_->stub().GetBatch(wire_->NewContext().get(), get, &got).ok());
  ASSERT_EQ(got.pages().size(), get.keys_size() * kPageSize);
  EXPECT_EQ(got.sizes_size(), 0);
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(got.pages().substr(k * kPageSize, kPageSize), cases[k].page);
  }
}

TEST_F(EdgeCompressionTest, MalformedPagesAreRefusedAndStoreNothing) {
  const std::string text = TextPage(1);
  const std::string lz4 = Encode(PageEncoding::kLz4, text);
  const std::string zstd = Encode(PageEncoding::kZstd, text);
  // LZ4 of 4095 and of 4097 bytes, and zstd of 64 MiB of zeros: a bomb
  // of a few hundred bytes that names its size.
  auto lz4_of = [](const std::string& input) {
    std::string out(LZ4_compressBound(input.size()), '\0');
    out.resize(LZ4_compress_default(input.data(), out.data(), input.size(),
                                    out.size()));
    return out;
  };
  const std::string lz4_of_4095 = lz4_of(text.substr(1));
  const std::string lz4_of_4097 = lz4_of(text + 'x');
  const std::string zeros(64 << 20, '\0');
  std::string bomb(ZSTD_compressBound(zeros.size()), '\0');
  bomb.resize(
      ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 1));
  struct Bad {
    const char* what;
    int encoding;
    std::string bytes;
  };
  const std::vector<Bad> bad = {
      {"truncated LZ4", v1::LZ4, lz4.substr(0, lz4.size() - 1)},
      {"LZ4 with a byte too many", v1::LZ4, lz4 + '\0'},
      {"LZ4 of 4095 bytes", v1::LZ4, lz4_of_4095},
      {"LZ4 of 4097 bytes", v1::LZ4, lz4_of_4097},
      {"a zstd bomb", v1::ZSTD, bomb},
      {"zstd named LZ4", v1::LZ4, zstd},
      {"LZ4 named zstd", v1::ZSTD, lz4},
      {"truncated zstd", v1::ZSTD, zstd.substr(0, zstd.size() - 1)},
      {"a 7-byte word", v1::SAME_FILLED, std::string(7, 'x')},
      {"RAW of 4095 bytes", v1::RAW, text.substr(1)},
      {"an encoding zpaged does not know", 77, lz4},
  };
  // The key holds a good page first: a refused write leaves it as it was.
  ASSERT_TRUE(wire_->Put("vm", 1, TextPage(2)).ok());
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    v1::PutRequest put;
    put.set_tenant("vm");
    put.set_key(1);
    put.set_data(b.bytes);
    put.set_encoding(static_cast<v1::Encoding>(b.encoding));
    v1::PutResponse response;
    const grpc::Status status =
        wire_->stub().Put(wire_->NewContext().get(), put, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(*wire_->Get("vm", 1), TextPage(2));
  }

  // In one batch with good pages around them: each bad one is its own
  // INVALID_ARGUMENT, the good ones are stored.
  v1::PutBatchRequest batch;
  batch.set_tenant("vm");
  auto add = [&](uint64_t key, int encoding, const std::string& bytes) {
    batch.add_keys(key);
    batch.add_encodings(static_cast<v1::Encoding>(encoding));
    batch.add_sizes(bytes.size());
    batch.mutable_pages()->append(bytes);
  };
  add(100, v1::LZ4, lz4);
  for (size_t i = 0; i < bad.size(); ++i) {
    add(200 + i, bad[i].encoding, bad[i].bytes);
  }
  add(101, v1::ZSTD, zstd);
  v1::PutBatchResponse results;
  ASSERT_TRUE(
      wire_->stub().PutBatch(wire_->NewContext().get(), batch, &results).ok());
  EXPECT_EQ(results.results(0).code(), 0);
  EXPECT_EQ(results.results(bad.size() + 1).code(), 0);
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(results.results(i + 1).code(), 3)  // INVALID_ARGUMENT
        << bad[i].what;
    EXPECT_EQ(wire_->Get("vm", 200 + i).status().code(),
              absl::StatusCode::kNotFound)
        << bad[i].what;
  }
  EXPECT_EQ(StoredPages(), 3u);
  EXPECT_EQ(*wire_->Get("vm", 100), text);
  EXPECT_EQ(*wire_->Get("vm", 101), text);
}

TEST_F(EdgeCompressionTest, ABatchWhoseLayoutDoesNotAddUpIsRefusedWhole) {
  const std::string lz4 = Encode(PageEncoding::kLz4, TextPage(3));
  auto batch = [&](int encodings, std::vector<uint32_t> sizes,
                   size_t pages_bytes) {
    v1::PutBatchRequest request;
    request.set_tenant("vm");
    request.add_keys(1);
    request.add_keys(2);
    for (int i = 0; i < encodings; ++i) request.add_encodings(v1::LZ4);
    for (uint32_t size : sizes) request.add_sizes(size);
    request.set_pages(std::string(pages_bytes, 'p'));
    v1::PutBatchResponse response;
    return wire_->stub()
        .PutBatch(wire_->NewContext().get(), request, &response)
        .error_code();
  };
  const uint32_t n = lz4.size();
  EXPECT_EQ(batch(1, {n, n}, 2 * n), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(batch(2, {n}, n), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(batch(2, {n, n}, 2 * n + 1), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(batch(2, {kPageSize + 1, 1}, kPageSize + 2),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Sizes that overflow 32 bits when added must not wrap to a match.
  EXPECT_EQ(batch(2, {0xFFFFFFFFu, 2}, 1), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(StoredPages(), 0u);
}

// Evicted pages reach a watcher that accepts encodings as stored, and one
// that does not whole; both ack, and the pages leave the server.
TEST_F(EdgeCompressionTest, EvictionsGoOutAsStoredOrWhole) {
  const std::vector<Case> cases = Cases();
  for (bool as_stored : {true, false}) {
    SCOPED_TRACE(as_stored ? "as stored" : "whole");
    const std::string tenant = as_stored ? "stored" : "whole";
    for (size_t k = 0; k < cases.size(); ++k) {
      const v1::PutRequest put = EncodedPut(tenant, k, cases[k]);
      v1::PutResponse stored;
      ASSERT_TRUE(
          wire_->stub().Put(wire_->NewContext().get(), put, &stored).ok());
    }
    auto context = wire_->NewContext(/*streaming=*/true);
    auto stream = wire_->stub().WatchEvictions(context.get());
    v1::EvictionAck subscribe;
    subscribe.set_tenant(tenant);
    if (as_stored) AcceptAll(subscribe.mutable_accept());
    ASSERT_TRUE(stream->Write(subscribe));
    stream->WaitForInitialMetadata();
    // Reclaim frees pool frames, so the three pooled pages leave; asked
    // until they did, or for 5 s, after which the stream is cut.
    std::vector<bool> seen(cases.size(), false);
    std::atomic<size_t> arrived{0};
    std::thread reclaim([&] {
      const absl::Time give_up = absl::Now() + absl::Seconds(5);
      while (arrived.load() < cases.size() - 1 && absl::Now() < give_up) {
        (void)wire_->Reclaim(tenant, 8);
        absl::SleepFor(absl::Milliseconds(10));
      }
      context->TryCancel();
    });
    v1::EvictedPage page;
    while (arrived.load() < cases.size() - 1 && stream->Read(&page)) {
      ASSERT_LT(page.key(), cases.size());
      const Case& c = cases[page.key()];
      if (as_stored) {
        EXPECT_EQ(page.encoding(), ToWireEncoding(c.encoding));
        EXPECT_EQ(page.data(), c.encoded);
      } else {
        EXPECT_EQ(page.encoding(), v1::ENCODING_UNSPECIFIED);
        EXPECT_EQ(page.data(), c.page);
      }
      seen[page.key()] = true;
      ++arrived;
      v1::EvictionAck ack;
      ack.set_sequence(page.sequence());
      ASSERT_TRUE(stream->Write(ack));
    }
    reclaim.join();
    stream->Finish().IgnoreError();
    for (size_t k = 0; k < cases.size(); ++k) {
      if (cases[k].encoding != PageEncoding::kSameFilled) {
        EXPECT_TRUE(seen[k]) << PageEncodingName(cases[k].encoding);
      }
    }
  }
}

// The corpus through the client library in each mode, byte-exact, each page
// kept as its kind calls for and as the client encoded it.
class EdgeCorpusTest : public EdgeCompressionTest,
                       public ::testing::WithParamInterface<EdgeCompressor> {};

TEST_P(EdgeCorpusTest, TheCorpusComesBackByteExact) {
  absl::StatusOr<PageCorpus> corpus =
      PageCorpus::Load(PageCorpus::DefaultDir());
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  std::unique_ptr<Client> client = ClientOf(GetParam());
  const PageEncoding compressed = GetParam() == EdgeCompressor::kZstd
                                      ? PageEncoding::kZstd
                                      : PageEncoding::kLz4;
  std::vector<KeyedPage> pages;
  for (size_t i = 0; i < corpus->size(); ++i) {
    const absl::Span<const uint8_t> page = corpus->page(i);
    pages.push_back(
        {i, absl::string_view(reinterpret_cast<const char*>(page.data()),
                              page.size())});
  }
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
      client->PutMany("vm", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  int compressed_pages = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    ASSERT_TRUE((*put)[i].ok()) << i << ": " << (*put)[i].status();
    const std::string& kind = corpus->kind(i);
    if (kind == "zero" || kind == "same") {
      EXPECT_EQ((*put)[i]->encoding, PageEncoding::kSameFilled) << i;
    } else if (kind == "random") {
      EXPECT_EQ((*put)[i]->encoding, PageEncoding::kRaw) << i;
    } else if (kind == "text") {
      EXPECT_EQ((*put)[i]->encoding, compressed) << i;
    }
    compressed_pages += (*put)[i]->encoding == compressed;
  }
  EXPECT_GT(compressed_pages, static_cast<int>(pages.size() / 2));

  std::vector<uint64_t> keys(pages.size());
  std::vector<std::string> back(pages.size(), std::string(kPageSize, '\0'));
  std::vector<uint8_t*> outs(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    keys[i] = i;
    outs[i] = reinterpret_cast<uint8_t*>(back[i].data());
  }
  absl::StatusOr<std::vector<absl::Status>> got =
      client->GetMany("vm", keys, outs);
  ASSERT_TRUE(got.ok()) << got.status();
  for (size_t i = 0; i < pages.size(); ++i) {
    ASSERT_TRUE((*got)[i].ok()) << i << ": " << (*got)[i];
    ASSERT_EQ(back[i], pages[i].page) << "page " << i << " came back different";
  }
  // One at a time, and to an old client that takes whole pages.
  std::unique_ptr<Client> whole = ClientOf(EdgeCompressor::kNone);
  for (size_t i = 0; i < pages.size(); i += 97) {
    EXPECT_EQ(*client->Get("vm", i), pages[i].page) << i;
    EXPECT_EQ(*whole->Get("vm", i), pages[i].page) << i;
  }
  EXPECT_EQ(StoredPages(), pages.size());
}

INSTANTIATE_TEST_SUITE_P(Modes, EdgeCorpusTest,
                         ::testing::Values(EdgeCompressor::kLz4,
                                           EdgeCompressor::kZstd),
                         [](const auto& info) {
                           return std::string(EdgeCompressorName(info.param));
                         });

}  // namespace
}  // namespace zpaged
