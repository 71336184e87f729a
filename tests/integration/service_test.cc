// The service over real gRPC on loopback: every RPC, every status code the
// contract names, and eviction through WatchEvictions streams.

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/notification.h"
#include "client/lib/zpaged_client.h"
#include "contract/names.h"
#include "contract/page.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/core/mutex.h"
#include "server/zpaged_server.h"
#include "tests/testing/many_pages.h"
#include "tests/testing/store_flavour.h"
#include "tests/testing/stuck_watcher.h"

namespace zpaged {
namespace {

std::string TextPage(int seed) {
  std::string text = "guest page " + std::to_string(seed) + " ";
  std::string page;
  while (page.size() < 4096) page += text;
  page.resize(4096);
  return page;
}
std::string RandomPage(int seed) {
  std::mt19937_64 rng(seed);
  std::string page(4096, '\0');
  for (char& c : page) c = static_cast<char>(rng());
  return page;
}

// What a watcher received, by key; thread-safe.
class Received {
 public:
  EvictionCallback Accept() {
    return [this](uint64_t key, absl::string_view page) {
      MutexLock lock(&mu_);
      pages_[key] = std::string(page);
      return true;
    };
  }
  std::string At(uint64_t key) {
    MutexLock lock(&mu_);
    auto it = pages_.find(key);
    return it == pages_.end() ? "" : it->second;
  }
  size_t size() {
    MutexLock lock(&mu_);
    return pages_.size();
  }

 private:
  Mutex mu_;
  absl::flat_hash_map<uint64_t, std::string> pages_ ABSL_GUARDED_BY(mu_);
};

// The whole server on a loopback port the kernel picks, with a short ack
// deadline so that tests of missing acks are quick.
ServerOptions TestOptions(StoreOptions store = {}) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.store = store;
  options.ack_deadline = absl::Milliseconds(300);
  return options;
}

// Every service test runs once per pool driver and compressor (the test
// parameter).
class ServiceTest : public ::testing::TestWithParam<StoreFlavour> {
 protected:
  // TestOptions, with this run's pool driver and compressor.
  ServerOptions Options(StoreOptions store = {}) const {
    GetParam().ApplyTo(store);
    return TestOptions(store);
  }
  // The encoding this run's compressor gives a compressible page.
  v1::Encoding Compressed() const {
    return GetParam().compressor == PageCompressor::kZstd ? v1::ZSTD : v1::LZ4;
  }
  PageEncoding CompressedEncoding() const {
    return GetParam().compressor == PageCompressor::kZstd ? PageEncoding::kZstd
                                                          : PageEncoding::kLz4;
  }

  void Start(const ServerOptions& options) {
    client_.reset();
    server_.reset();
    absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
        ZpagedServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    // Whole pages, so that the server's own compression and limits are
    // what these tests see; edge_compression_test.cc has the other mode.
    client_ =
        Client::Connect(server_->address(),
                        ClientOptions{.compression = {EdgeCompressor::kNone}});
  }
  void SetUp() override { Start(Options()); }

  std::unique_ptr<ZpagedServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_P(ServiceTest, PutGetDeleteRoundTrip) {
  absl::StatusOr<PutReply> put = client_->Put("vm-1", 1, TextPage(1));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->encoding, CompressedEncoding());
  EXPECT_GT(put->stored_bytes, 0u);
  EXPECT_EQ(*client_->Get("vm-1", 1), TextPage(1));

  put = client_->Put("vm-1", 2, std::string(4096, '\0'));
  EXPECT_EQ(put->encoding, PageEncoding::kSameFilled);
  EXPECT_EQ(put->stored_bytes, 0u);
  put = client_->Put("vm-1", 3, RandomPage(3));
  EXPECT_EQ(put->encoding, PageEncoding::kRaw);
  EXPECT_EQ(put->stored_bytes, 4096u);
  EXPECT_EQ(*client_->Get("vm-1", 3), RandomPage(3));

  EXPECT_EQ(*client_->Delete("vm-1", 1), true);
  EXPECT_EQ(*client_->Delete("vm-1", 1), false);
  EXPECT_EQ(client_->Get("vm-1", 1).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(ServiceTest, PutReplacesAndMaxKeyWorks) {
  const uint64_t key = ~uint64_t{0};
  ASSERT_TRUE(client_->Put("vm", key, RandomPage(1)).ok());
  ASSERT_TRUE(client_->Put("vm", key, TextPage(2)).ok());
  EXPECT_EQ(*client_->Get("vm", key), TextPage(2));
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 1u);
}

TEST_P(ServiceTest, InvalidRequestsGetInvalidArgumentWithAReason) {
  absl::Status s = client_->Put("vm", 1, std::string(4095, 'x')).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("4096"), absl::string_view::npos) << s;
  EXPECT_EQ(client_->Put("vm", 1, std::string(4097, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Put("vm", 1, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const std::string& tenant :
       {std::string(), std::string(129, 't'), std::string("../etc"),
        std::string("has space"), std::string("nul\0byte", 8)}) {
    EXPECT_EQ(client_->Put(tenant, 1, TextPage(1)).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(client_->Get(tenant, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(client_->Delete(tenant, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(client_->Reclaim(tenant, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(client_->Stats("bad name").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client_->Put(std::string(128, 't'), 1, TextPage(1)).ok());
}

TEST_P(ServiceTest, OversizedMessagesAreRefusedAndServiceGoesOn) {
  // Up to a full batch's size a request is parsed, and a Put's page of the
  // wrong size is its own error; beyond, gRPC refuses it unparsed.
  for (size_t size : {size_t{8192}, size_t{1} << 20}) {
    absl::Status s = client_->Put("vm", 1, std::string(size, 'x')).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << size;
  }
  for (size_t size : {size_t{2} << 20, size_t{3} << 20}) {
    absl::Status s = client_->Put("vm", 1, std::string(size, 'x')).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << size;
  }
  EXPECT_EQ(client_->Put(std::string(300, 't'), 1, TextPage(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(1)).ok());
  EXPECT_EQ(*client_->Get("vm", 1), TextPage(1));
}

TEST_P(ServiceTest, WatchersPerTenantAreCapped) {
  ServerOptions options = Options();
  options.max_watchers_per_tenant = 2;
  Start(options);
  auto accept = [](uint64_t, absl::string_view) { return true; };
  auto first = client_->Watch("vm", accept);
  auto second = client_->Watch("vm", accept);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(client_->Watch("vm", accept).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(client_->Watch("other", accept).ok());
  (*first)->Stop();
  // A slot frees when a watcher leaves.
  for (int i = 0; i < 50 && server_->broker().WatcherCount("vm") != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(client_->Watch("vm", accept).ok());
}

TEST_P(ServiceTest, StatsPerTenantAndTotal) {
  ASSERT_TRUE(client_->Put("a", 1, TextPage(1)).ok());
  ASSERT_TRUE(client_->Put("a", 2, TextPage(2)).ok());
  ASSERT_TRUE(client_->Put("a", 3, std::string(4096, '\0')).ok());
  ASSERT_TRUE(client_->Put("b", 1, RandomPage(1)).ok());
  v1::StatsResponse a = *client_->Stats("a");
  EXPECT_EQ(a.stored_pages(), 3u);
  EXPECT_EQ(a.same_filled_pages(), 1u);
  EXPECT_EQ(a.pool_pages(), 1u);  // two small LZ4 pages share a frame
  EXPECT_DOUBLE_EQ(a.density(), 2.0);
  EXPECT_GT(a.compressed_bytes(), 0u);
  EXPECT_EQ(a.tenants(), 1u);
  v1::StatsResponse all = *client_->Stats("");
  EXPECT_EQ(all.stored_pages(), 4u);
  EXPECT_EQ(all.raw_pages(), 1u);
  EXPECT_EQ(all.pool_pages(), 2u);
  EXPECT_DOUBLE_EQ(all.density(), 1.5);
  EXPECT_EQ(all.tenants(), 2u);
  EXPECT_EQ(client_->Stats("nobody")->stored_pages(), 0u);
}

TEST_P(ServiceTest, EveryStatsAnswerNamesTheNodeAndItsLimit) {
  ServerOptions options = Options(StoreOptions{.max_memory_bytes = 64 << 20});
  options.node_name = "zpaged-2";
  Start(options);
  for (const char* tenant : {"", "a"}) {
    absl::StatusOr<v1::StatsResponse> stats = client_->Stats(tenant);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->node_name(), "zpaged-2") << tenant;
    EXPECT_EQ(stats->max_memory_bytes(), 64u << 20) << tenant;
  }
}

TEST_P(ServiceTest, TheNodeNameDefaultsToTheHostName) {
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(client_->Stats("")->node_name(), host);
}

TEST_P(ServiceTest, ABadNodeNameIsRefusedAtStart) {
  ServerOptions options = Options();
  options.node_name = "zpaged 0";
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << server.status();
}

TEST_P(ServiceTest, TenantsNeverSeeEachOthersPages) {
  ASSERT_TRUE(client_->Put("alice", 7, TextPage(100)).ok());
  ASSERT_TRUE(client_->Put("bob", 7, TextPage(200)).ok());
  EXPECT_EQ(*client_->Get("alice", 7), TextPage(100));
  EXPECT_EQ(*client_->Get("bob", 7), TextPage(200));
  EXPECT_EQ(client_->Get("carol", 7).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(*client_->Delete("alice", 7));
  EXPECT_EQ(*client_->Get("bob", 7), TextPage(200));
}

TEST_P(ServiceTest, ReclaimWithoutWatcherIsFailedPrecondition) {
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(1)).ok());
  EXPECT_EQ(client_->Reclaim("vm", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*client_->Get("vm", 1), TextPage(1));
}

TEST_P(ServiceTest, AckedEvictionsAreGoneAndCarriedTheRightBytes) {
  for (int key = 1; key <= 6; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  Received received;
  auto watcher = client_->Watch("vm", received.Accept());
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  absl::StatusOr<v1::ReclaimResponse> r = client_->Reclaim("vm", 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reclaimed_pool_pages(), 3u);
  EXPECT_EQ(r->evicted_pages(), 3u);
  ASSERT_EQ(received.size(), 3u);
  for (int key = 1; key <= 3; ++key) {
    EXPECT_EQ(received.At(key), RandomPage(key)) << key;
    EXPECT_EQ(client_->Get("vm", key).status().code(),
              absl::StatusCode::kNotFound);
  }
  for (int key = 4; key <= 6; ++key) {
    EXPECT_EQ(*client_->Get("vm", key), RandomPage(key));
  }
  v1::StatsResponse stats = *client_->Stats("vm");
  EXPECT_EQ(stats.evicted_pages(), 3u);
  EXPECT_EQ(stats.reclaimed_pool_pages(), 3u);
}

TEST_P(ServiceTest, PagesNotAckedStayReadableAndTheWatcherStalls) {
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  auto watcher = StuckWatcher::Start(*client_, "vm");  // never acks
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  absl::StatusOr<v1::ReclaimResponse> r = client_->Reclaim("vm", 4);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reclaimed_pool_pages(), 0u);
  EXPECT_EQ(r->evicted_pages(), 0u);
  EXPECT_EQ((*watcher)->offered(), 1);  // it holds the first, unacked
  v1::StatsResponse stats = *client_->Stats("vm");
  EXPECT_EQ(stats.stored_pages(), 4u);
  for (int key = 1; key <= 4; ++key) {
    EXPECT_EQ(*client_->Get("vm", key), RandomPage(key));
  }
  // A stalled watcher is not a ready one.
  EXPECT_EQ(client_->Reclaim("vm", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A watcher that acks late may still write the page to its backing store
// when it does. Until then no newer copy of that key may go to any watcher:
// it would be written first and then overwritten by the older one.
TEST_P(ServiceTest, NoNewerCopyOvertakesOneWhoseAckIsLate) {
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(1)).ok());
  Received backing_store;  // shared by both watchers, last write wins
  EvictionCallback write = backing_store.Accept();
  absl::Notification late_ack_may_go;
  std::atomic<bool> first_page{true};
  auto slow = client_->Watch("vm", [&](uint64_t key, absl::string_view page) {
    // The first page waits past the 300 ms ack deadline before it is
    // written and acked.
    if (first_page.exchange(false)) late_ack_may_go.WaitForNotification();
    return write(key, page);
  });
  ASSERT_TRUE(slow.ok());
  const absl::Cleanup release = [&] {
    if (!late_ack_may_go.HasBeenNotified()) late_ack_may_go.Notify();
  };
  absl::StatusOr<v1::ReclaimResponse> r = client_->Reclaim("vm", 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->evicted_pages(), 0u) << "the first delivery was not late";

  ASSERT_TRUE(client_->Put("vm", 1, TextPage(2)).ok());
  auto fast = client_->Watch("vm", write);
  ASSERT_TRUE(fast.ok());
  r = client_->Reclaim("vm", 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->evicted_pages(), 0u);
  EXPECT_EQ(backing_store.size(), 0u);
  EXPECT_EQ(client_->Get("vm", 1).value_or(""), TextPage(2));

  // Once the old copy is written and acked, the new one can go. The late ack
  // travels on its own, so poll for it.
  late_ack_may_go.Notify();
  uint64_t evicted = 0;
  for (int attempt = 0; attempt < 500 && evicted == 0; ++attempt) {
    r = client_->Reclaim("vm", 1);
    ASSERT_TRUE(r.ok() || absl::IsFailedPrecondition(r.status())) << r.status();
    evicted = r.ok() ? r->evicted_pages() : 0;
    if (evicted == 0) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(evicted, 1u) << "the late ack never came";
  EXPECT_EQ(backing_store.At(1), TextPage(2));
  EXPECT_EQ(client_->Get("vm", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ServiceTest, WatcherThatDropsMidStreamLosesNothing) {
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  absl::Notification got_page;
  std::unique_ptr<EvictionWatcher> watcher;
  auto started = client_->Watch("vm", [&](uint64_t, absl::string_view) {
    // Both frames go out at once; the first page is enough.
    if (!got_page.HasBeenNotified()) got_page.Notify();
    return false;
  });
  ASSERT_TRUE(started.ok());
  watcher = std::move(*started);
  std::thread reclaim([&] {
    absl::StatusOr<v1::ReclaimResponse> r = client_->Reclaim("vm", 2);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(r->reclaimed_pool_pages(), 0u);
    }
  });
  got_page.WaitForNotification();
  watcher->Stop();  // the client goes away before acking
  reclaim.join();
  for (int key = 1; key <= 4; ++key) {
    EXPECT_EQ(*client_->Get("vm", key), RandomPage(key));
  }
  EXPECT_EQ(server_->broker().WatcherCount("vm"), 0u);
}

TEST_P(ServiceTest, WatchersOnlyReceiveTheirOwnTenantsPages) {
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("alice", key, RandomPage(key)).ok());
    ASSERT_TRUE(client_->Put("bob", key, RandomPage(100 + key)).ok());
  }
  Received alice, bob;
  auto alice_watcher = client_->Watch("alice", alice.Accept());
  auto bob_watcher = client_->Watch("bob", bob.Accept());
  ASSERT_TRUE(alice_watcher.ok() && bob_watcher.ok());
  ASSERT_EQ(client_->Reclaim("alice", 4)->reclaimed_pool_pages(), 4u);
  EXPECT_EQ(alice.size(), 4u);
  EXPECT_EQ(bob.size(), 0u);
  for (int key = 1; key <= 4; ++key) {
    EXPECT_EQ(alice.At(key), RandomPage(key));
    EXPECT_EQ(*client_->Get("bob", key), RandomPage(100 + key));
  }
}

TEST_P(ServiceTest, FullTenantWithWatcherEvictsAndThePutSucceeds) {
  Start(Options({.tenant_max_bytes = 4 * 4096}));
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  Received received;
  auto watcher = client_->Watch("vm", received.Accept());
  ASSERT_TRUE(watcher.ok());
  absl::StatusOr<PutReply> put = client_->Put("vm", 5, RandomPage(5));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(received.size(), 1u);
  EXPECT_EQ(received.At(1), RandomPage(1));
  EXPECT_EQ(*client_->Get("vm", 5), RandomPage(5));
  EXPECT_EQ(client_->Get("vm", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ServiceTest, FullTenantWithoutWatcherIsResourceExhaustedAndIntact) {
  Start(Options({.tenant_max_bytes = 4 * 4096}));
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  absl::Status s = client_->Put("vm", 5, RandomPage(5)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  for (int key = 1; key <= 4; ++key) {
    EXPECT_EQ(*client_->Get("vm", key), RandomPage(key));
  }
  EXPECT_EQ(client_->Get("vm", 5).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Stats("vm")->rejected_puts(), 1u);
}

TEST_P(ServiceTest, FullTenantWhoseWatcherDoesNotAckIsResourceExhausted) {
  Start(Options({.tenant_max_bytes = 2 * 4096}));
  ASSERT_TRUE(client_->Put("vm", 1, RandomPage(1)).ok());
  ASSERT_TRUE(client_->Put("vm", 2, RandomPage(2)).ok());
  auto watcher = StuckWatcher::Start(*client_, "vm");  // never acks
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EXPECT_EQ(client_->Put("vm", 3, RandomPage(3)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*client_->Get("vm", 1), RandomPage(1));
  EXPECT_EQ(*client_->Get("vm", 2), RandomPage(2));
}

TEST_P(ServiceTest, HealthIsServingUntilShutdownBegins) {
  EXPECT_EQ(*client_->Serving(), true);
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto updates =
      health->Watch(&context, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse status;
  ASSERT_TRUE(updates->Read(&status));
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  std::thread stop([&] { server_->Shutdown(absl::Seconds(2)); });
  ASSERT_TRUE(updates->Read(&status));
  EXPECT_EQ(status.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stop.join();
}

TEST_P(ServiceTest, DrainOnShutdownHandsEveryPageToItsWatcher) {
  ServerOptions options = Options();
  options.drain_on_shutdown = true;
  Start(options);
  const std::string zero(4096, '\0');
  ASSERT_TRUE(client_->Put("watched", 1, TextPage(1)).ok());
  ASSERT_TRUE(client_->Put("watched", 2, RandomPage(2)).ok());
  ASSERT_TRUE(client_->Put("watched", 3, zero).ok());
  ASSERT_TRUE(client_->Put("unwatched", 1, TextPage(9)).ok());
  Received received;
  auto watcher = client_->Watch("watched", received.Accept());
  ASSERT_TRUE(watcher.ok());

  PageStore::DrainReport report = server_->Shutdown(absl::Seconds(2));
  EXPECT_EQ(report.drained_pages, 3u);
  EXPECT_EQ(received.At(1), TextPage(1));
  EXPECT_EQ(received.At(2), RandomPage(2));
  EXPECT_EQ(received.At(3), zero);
  ASSERT_EQ(report.left.size(), 1u);
  EXPECT_EQ(report.left[0].tenant, "unwatched");
  EXPECT_EQ(report.left[0].pages, 1u);
  EXPECT_FALSE(report.left[0].watched);
  EXPECT_EQ(server_->store().Stats("watched")->stored_pages, 0u);
}

TEST_P(ServiceTest, ShutdownEndsEvictionStreamsWithUnavailable) {
  auto watcher =
      client_->Watch("vm", [](uint64_t, absl::string_view) { return true; });
  ASSERT_TRUE(watcher.ok());
  server_->Shutdown(absl::Seconds(2));
  EXPECT_EQ((*watcher)->Wait().code(), absl::StatusCode::kUnavailable);
}

class AuthTest : public ServiceTest {
 protected:
  void SetUp() override {
    char name[] = "/tmp/zpaged-auth-XXXXXX";
    close(mkstemp(name));
    tokens_ = name;
    WriteTokens("tok-alpha alpha,shared\ntok-beta beta\n");
    ServerOptions options = Options();
    options.auth_tokens_file = tokens_;
    Start(options);
  }
  void TearDown() override { std::remove(tokens_.c_str()); }
  void WriteTokens(const std::string& contents) {
    std::ofstream(tokens_) << contents;
  }
  std::unique_ptr<Client> As(const std::string& token) {
    ClientOptions options;
    options.token = token;
    return Client::Connect(server_->address(), options);
  }
  std::string tokens_;
};

TEST_P(AuthTest, EveryCallNeedsAKnownToken) {
  const std::string page = TextPage(1);
  EXPECT_EQ(client_->Put("alpha", 1, page).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(As("tok-nope")->Put("alpha", 1, page).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client_->Get("alpha", 1).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client_->Delete("alpha", 1).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client_->Reclaim("alpha", 1).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client_->Stats("").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(
      client_->Watch("alpha", [](uint64_t, absl::string_view) { return true; })
          .status()
          .code(),
      absl::StatusCode::kUnauthenticated);
  // Health stays open to probes.
  EXPECT_EQ(*client_->Serving(), true);
}

TEST_P(AuthTest, ATokenReachesOnlyItsOwnTenants) {
  auto alpha = As("tok-alpha");
  auto beta = As("tok-beta");
  ASSERT_TRUE(alpha->Put("alpha", 1, TextPage(1)).ok());
  ASSERT_TRUE(alpha->Put("shared", 1, TextPage(2)).ok());
  ASSERT_TRUE(beta->Put("beta", 1, TextPage(3)).ok());
  EXPECT_EQ(*alpha->Get("alpha", 1), TextPage(1));
  EXPECT_EQ(beta->Get("alpha", 1).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(beta->Put("alpha", 1, TextPage(9)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(beta->Delete("shared", 1).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(beta->Stats("alpha").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      beta->Watch("alpha", [](uint64_t, absl::string_view) { return true; })
          .status()
          .code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*alpha->Get("alpha", 1), TextPage(1));

  // A batch names one tenant: refused whole.
  const uint64_t five = 5;
  EXPECT_EQ(beta->PutBatch("alpha", {&five, 1}, TextPage(5)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(beta->GetBatch("alpha", {&five, 1}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(PutPairs(*beta, "alpha", {{5, TextPage(5)}}).status().code(),
            absl::StatusCode::kPermissionDenied);
  const uint64_t one = 1;
  EXPECT_EQ(beta->DeleteBatch("alpha", {&one, 1}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(beta->DeleteAll("alpha").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*alpha->Get("alpha", 1), TextPage(1));

  // Totals cover only the caller's tenants.
  EXPECT_EQ(alpha->Stats("")->stored_pages(), 2u);
  EXPECT_EQ(alpha->Stats("")->tenants(), 2u);
  EXPECT_EQ(beta->Stats("")->stored_pages(), 1u);
  EXPECT_TRUE(
      alpha->Watch("alpha", [](uint64_t, absl::string_view) { return true; })
          .ok());
}

TEST_P(AuthTest, ReloadedTokensTakeEffectAndABadFileChangesNothing) {
  auto alpha = As("tok-alpha");
  ASSERT_TRUE(alpha->Put("alpha", 1, TextPage(1)).ok());
  WriteTokens("tok-alpha beta\ntok-gamma alpha\n");
  ASSERT_EQ(*server_->ReloadTokens(), 2u);
  EXPECT_EQ(alpha->Get("alpha", 1).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*As("tok-gamma")->Get("alpha", 1), TextPage(1));
  WriteTokens("broken-line-without-tenants\n");
  EXPECT_FALSE(server_->ReloadTokens().ok());
  EXPECT_EQ(*As("tok-gamma")->Get("alpha", 1), TextPage(1));
}

TEST(StartOptionsTest, AnUnknownPoolDriverIsRefusedByName) {
  StoreOptions store;
  store.pool_driver = "zsmalloc";
  absl::StatusOr<std::unique_ptr<ZpagedServer>> refused =
      ZpagedServer::Start(TestOptions(store));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("'zsmalloc' (known: zbud, dense)"),
            absl::string_view::npos)
      << refused.status();
}

TEST(ListenPolicyTest, NoRemoteListeningWithoutAuthUnlessAllowed) {
  ServerOptions options = TestOptions();
  options.listen = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<ZpagedServer>> refused =
      ZpagedServer::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--auth_tokens_file"),
            absl::string_view::npos);
  options.allow_unauthenticated_remote = true;
  EXPECT_TRUE(ZpagedServer::Start(options).ok());
  options.listen = "[::1]:0";
  options.allow_unauthenticated_remote = false;
  EXPECT_TRUE(ZpagedServer::Start(options).ok());
}

TEST_P(ServiceTest, StreamsAnswerInOrderWithPerItemOutcomes) {
  std::vector<std::pair<uint64_t, std::string>> pages;
  for (uint64_t key = 0; key < 300; ++key) {
    std::string page = key % 3 == 0   ? TextPage(key)
                       : key % 3 == 1 ? RandomPage(key)
                                      : std::string(4096, '\0');
    if (key % 50 == 7) page.resize(4095);  // a bad item mid-stream
    pages.emplace_back(key * 11, std::move(page));
  }
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
      PutPairs(*client_, "vm", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->size(), pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    const absl::StatusOr<PutReply>& r = (*put)[i];
    if (pages[i].second.size() != 4096) {
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      EXPECT_NE(r.status().message().find("4096"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status();
    const PageEncoding want = i % 3 == 0   ? CompressedEncoding()
                              : i % 3 == 1 ? PageEncoding::kRaw
                                           : PageEncoding::kSameFilled;
    EXPECT_EQ(r->encoding, want) << i;
  }

  std::vector<uint64_t> keys;
  for (const auto& [key, page] : pages) keys.push_back(key);
  keys.push_back(999999);  // never stored
  absl::StatusOr<std::vector<absl::StatusOr<std::string>>> got =
      GetPages(*client_, "vm", keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    const absl::StatusOr<std::string>& r = (*got)[i];
    if (pages[i].second.size() != 4096) {
      EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
    } else {
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(*r, pages[i].second) << i;
    }
  }
  EXPECT_TRUE(absl::IsNotFound(got->back().status()));
}

TEST_P(ServiceTest, StreamsCarryLargeBatches) {
  std::vector<std::pair<uint64_t, std::string>> pages;
  for (uint64_t key = 0; key < 2000; ++key) {
    pages.emplace_back(key, TextPage(key));
  }
  std::unique_ptr<Client> wide = Client::Connect(
      server_->address(), {.pages_per_call = 16, .calls_in_flight = 64});
  auto put = PutPairs(*wide, "bulk", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 2000; ++key) keys.push_back(key);
  auto got = GetPages(*wide, "bulk", keys);
  ASSERT_TRUE(got.ok()) << got.status();
  for (uint64_t key = 0; key < 2000; ++key) {
    ASSERT_TRUE((*got)[key].ok()) << key << ": " << (*got)[key].status();
    ASSERT_EQ(*(*got)[key], TextPage(key)) << key;
  }
}

TEST_P(ServiceTest, StreamPutOnAFullTenantEvictsToTheWatcher) {
  Start(Options({.tenant_max_bytes = 4 * 4096}));
  Received received;
  auto watcher = client_->Watch("vm", received.Accept());
  ASSERT_TRUE(watcher.ok());
  std::vector<std::pair<uint64_t, std::string>> pages;
  for (uint64_t key = 1; key <= 10; ++key) {
    pages.emplace_back(key, RandomPage(key));
  }
  auto put = PutPairs(*client_, "vm", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  for (size_t i = 0; i < put->size(); ++i) {
    EXPECT_TRUE((*put)[i].ok()) << pages[i].first << ": " << (*put)[i].status();
  }
  EXPECT_EQ(received.size(), 6u);
  EXPECT_EQ(received.At(1), RandomPage(1));
  EXPECT_EQ(*client_->Get("vm", 10), RandomPage(10));
}

TEST_P(ServiceTest, StreamServerPausesForAClientThatDoesNotRead) {
  grpc::ClientContext context;
  auto stream = client_->stub().PutStream(&context);
  constexpr int kItems = 500;
  for (int i = 0; i < kItems; ++i) {
    v1::PutRequest request;
    request.set_tenant("vm");
    request.set_key(i);
    request.set_data(std::string(4096, static_cast<char>(i)));
    ASSERT_TRUE(stream->Write(request)) << i;
  }
  stream->WritesDone();
  v1::PutStreamResponse response;
  int read = 0;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.key(), static_cast<uint64_t>(read));
    EXPECT_EQ(response.code(), 0);
    ++read;
  }
  EXPECT_EQ(read, kItems);
  EXPECT_TRUE(stream->Finish().ok());
}

// Raw stream tests: the rules a watcher must keep.
class WatchStreamTest : public ServiceTest {
 protected:
  // Opens a stream, writes `messages`, and returns how the server ended it.
  grpc::Status Run(const std::vector<v1::EvictionAck>& messages) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    auto stream = client_->stub().WatchEvictions(&context);
    for (const v1::EvictionAck& m : messages) stream->Write(m);
    v1::EvictedPage page;
    while (stream->Read(&page)) {
    }
    return stream->Finish();
  }
  static v1::EvictionAck Subscribe(const std::string& tenant) {
    v1::EvictionAck m;
    m.set_tenant(tenant);
    return m;
  }
  static v1::EvictionAck Ack(uint64_t sequence) {
    v1::EvictionAck m;
    m.set_sequence(sequence);
    return m;
  }
};

TEST_P(WatchStreamTest, BadSubscriptionsAndAcksEndTheStream) {
  EXPECT_EQ(Run({Subscribe("")}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Run({Subscribe("no spaces")}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Run({Ack(1)}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Run({Subscribe("vm"), Ack(1)}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Run({Subscribe("vm"), Subscribe("other")}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // The service keeps serving.
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(1)).ok());
  EXPECT_EQ(*client_->Get("vm", 1), TextPage(1));
}

TEST_P(WatchStreamTest, ClosingTheStreamEndsItCleanly) {
  grpc::ClientContext context;
  auto stream = client_->stub().WatchEvictions(&context);
  ASSERT_TRUE(stream->Write(Subscribe("vm")));
  stream->WaitForInitialMetadata();
  EXPECT_EQ(server_->broker().WatcherCount("vm"), 1u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// The pages of `keys`, back to back, as a PutBatch carries them.
std::string PagesOf(const std::vector<uint64_t>& keys,
                    std::string (*make)(int)) {
  std::string pages;
  for (uint64_t key : keys) pages += make(static_cast<int>(key));
  return pages;
}

TEST_P(ServiceTest, BatchesRoundTripInKeyOrder) {
  const std::vector<uint64_t> keys = {3, 1, 2, 9};
  std::string pages = PagesOf(keys, TextPage);
  pages.replace(3 * kPageSize, kPageSize, RandomPage(9));
  pages.replace(2 * kPageSize, kPageSize, std::string(kPageSize, '\0'));
  absl::StatusOr<v1::PutBatchResponse> put =
      client_->PutBatch("vm", keys, pages);
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->results_size(), 4);
  for (const v1::PutItemResult& result : put->results()) {
    EXPECT_EQ(result.code(), 0) << result.message();
  }
  EXPECT_EQ(put->results(0).encoding(), Compressed());
  EXPECT_EQ(put->results(2).encoding(), v1::SAME_FILLED);
  EXPECT_EQ(put->results(3).encoding(), v1::RAW);
  EXPECT_EQ(put->results(3).stored_bytes(), kPageSize);
  EXPECT_EQ(*client_->Get("vm", 9), RandomPage(9));

  const std::vector<uint64_t> wanted = {9, 4, 3, 2};
  absl::StatusOr<v1::GetBatchResponse> got = client_->GetBatch("vm", wanted);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->codes_size(), 4);
  ASSERT_EQ(got->pages().size(), 4 * kPageSize);
  EXPECT_EQ(got->codes(0), 0);
  EXPECT_EQ(got->pages().substr(0, kPageSize), RandomPage(9));
  EXPECT_EQ(got->codes(1), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(got->pages().substr(kPageSize, kPageSize),
            std::string(kPageSize, '\0'));
  EXPECT_EQ(got->pages().substr(2 * kPageSize, kPageSize), TextPage(3));
  EXPECT_EQ(got->pages().substr(3 * kPageSize, kPageSize),
            std::string(kPageSize, '\0'));
  EXPECT_EQ(got->codes(3), 0);
}

TEST_P(ServiceTest, ADuplicateKeyInABatchTakesTheLaterPage) {
  const std::vector<uint64_t> keys = {7, 7};
  const std::string pages = TextPage(1) + TextPage(2);
  absl::StatusOr<v1::PutBatchResponse> put =
      client_->PutBatch("vm", keys, pages);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->results(0).code(), 0);
  EXPECT_EQ(put->results(1).code(), 0);
  EXPECT_EQ(*client_->Get("vm", 7), TextPage(2));
  absl::StatusOr<v1::GetBatchResponse> got = client_->GetBatch("vm", keys);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->pages(), TextPage(2) + TextPage(2));
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 1u);
}

TEST_P(ServiceTest, BadBatchesAreRefusedWhole) {
  const std::vector<uint64_t> one = {1};
  auto put_code = [&](absl::string_view tenant,
                      const std::vector<uint64_t>& keys,
                      const std::string& pages) {
    return client_->PutBatch(tenant, keys, pages).status().code();
  };
  auto get_code = [&](absl::string_view tenant,
                      const std::vector<uint64_t>& keys) {
    return client_->GetBatch(tenant, keys).status().code();
  };
  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(put_code("", one, TextPage(1)), invalid);
  EXPECT_EQ(put_code("a/b", one, TextPage(1)), invalid);
  EXPECT_EQ(get_code("a b", one), invalid);
  EXPECT_EQ(put_code("vm", {}, ""), invalid);
  EXPECT_EQ(get_code("vm", {}), invalid);
  std::vector<uint64_t> too_many(kMaxBatchPages + 1);
  for (size_t i = 0; i < too_many.size(); ++i) too_many[i] = i;
  EXPECT_EQ(get_code("vm", too_many), invalid);
  EXPECT_EQ(put_code("vm", too_many, std::string(kPageSize, 'x')), invalid);
  // Pages must be exactly keys x 4096 bytes.
  EXPECT_EQ(put_code("vm", one, TextPage(1) + "x"), invalid);
  EXPECT_EQ(put_code("vm", {1, 2}, TextPage(1)), invalid);
  EXPECT_EQ(put_code("vm", one, ""), invalid);
  const absl::Status mismatch =
      client_->PutBatch("vm", {1, 2}, TextPage(1)).status();
  EXPECT_NE(mismatch.message().find("2 keys need exactly 8192"),
            absl::string_view::npos)
      << mismatch;
  // Nothing of a refused batch was stored.
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 0u);

  // The largest legal batch gets through gRPC's message size limit.
  std::vector<uint64_t> full(kMaxBatchPages);
  for (size_t i = 0; i < full.size(); ++i) full[i] = i;
  std::string pages;
  for (size_t i = 0; i < full.size(); ++i) pages += RandomPage(i);
  absl::StatusOr<v1::PutBatchResponse> put =
      client_->PutBatch(std::string(kMaxTenantNameBytes, 't'), full, pages);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->results_size(), kMaxBatchPages);
  absl::StatusOr<v1::GetBatchResponse> got =
      client_->GetBatch(std::string(kMaxTenantNameBytes, 't'), full);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->pages(), pages);
}

TEST_P(ServiceTest, DeleteBatchSaysWhichKeysHadAPage) {
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(1)).ok());
  ASSERT_TRUE(client_->Put("vm", 3, RandomPage(3)).ok());
  ASSERT_TRUE(client_->Put("vm", 4, std::string(kPageSize, '\0')).ok());
  ASSERT_TRUE(client_->Put("other", 2, TextPage(2)).ok());
  const std::vector<uint64_t> keys = {1, 2, 3, 4, 1};
  absl::StatusOr<v1::DeleteBatchResponse> deleted =
      client_->DeleteBatch("vm", keys);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(
      std::vector<bool>(deleted->existed().begin(), deleted->existed().end()),
      std::vector<bool>({true, false, true, true, false}));
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 0u);
  EXPECT_EQ(client_->Stats("vm")->pool_pages(), 0u);
  EXPECT_EQ(*client_->Get("other", 2), TextPage(2));  // another tenant's key 2

  const auto invalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(client_->DeleteBatch("vm", {}).status().code(), invalid);
  std::vector<uint64_t> too_many(kMaxBatchPages + 1, 7);
  EXPECT_EQ(client_->DeleteBatch("vm", too_many).status().code(), invalid);
  EXPECT_EQ(client_->DeleteBatch("a b", keys).status().code(), invalid);
}

TEST_P(ServiceTest, DeleteAllEmptiesOneTenantOnly) {
  for (int i = 0; i < 300; ++i) {
    const std::string page = i % 3 == 0   ? TextPage(i)
                             : i % 3 == 1 ? RandomPage(i)
                                          : std::string(kPageSize, 'z');
    ASSERT_TRUE(client_->Put("vm", i, page).ok());
  }
  ASSERT_TRUE(client_->Put("other", 1, TextPage(1)).ok());
  absl::StatusOr<uint64_t> deleted = client_->DeleteAll("vm");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 300u);
  const v1::StatsResponse stats = *client_->Stats("vm");
  EXPECT_EQ(stats.stored_pages(), 0u);
  EXPECT_EQ(stats.pool_pages(), 0u);
  EXPECT_EQ(client_->Get("vm", 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*client_->Get("other", 1), TextPage(1));
  // Again, and on a tenant that never existed: nothing to delete.
  EXPECT_EQ(*client_->DeleteAll("vm"), 0u);
  EXPECT_EQ(*client_->DeleteAll("never"), 0u);
  EXPECT_EQ(client_->DeleteAll("a/b").status().code(),
            absl::StatusCode::kInvalidArgument);
  // The tenant takes pages again.
  ASSERT_TRUE(client_->Put("vm", 1, TextPage(5)).ok());
  EXPECT_EQ(*client_->Get("vm", 1), TextPage(5));
}

TEST_P(ServiceTest, ABatchItemThatFindsNoRoomFailsAloneAndLosesNothing) {
  Start(Options(StoreOptions{.tenant_max_bytes = 2 * kPageSize}));
  const std::vector<uint64_t> keys = {1, 2, 3, 4};
  std::string pages = PagesOf(keys, RandomPage);
  pages.replace(3 * kPageSize, kPageSize, std::string(kPageSize, '\0'));
  absl::StatusOr<v1::PutBatchResponse> put =
      client_->PutBatch("vm", keys, pages);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->results(0).code(), 0);
  EXPECT_EQ(put->results(1).code(), 0);
  // No watcher: the third RAW page has no room; the same-filled one needs
  // none.
  EXPECT_EQ(put->results(2).code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(put->results(2).message().find("no eviction watcher"),
            std::string::npos);
  EXPECT_EQ(put->results(3).code(), 0);
  EXPECT_EQ(*client_->Get("vm", 1), RandomPage(1));
  EXPECT_EQ(client_->Stats("vm")->rejected_puts(), 1u);
}

TEST_P(ServiceTest, ABatchWaitsForEvictionsToMakeRoom) {
  Start(Options(StoreOptions{.tenant_max_bytes = 2 * kPageSize}));
  Received backing_store;
  auto watcher = client_->Watch("vm", backing_store.Accept());
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  const std::vector<uint64_t> keys = {1, 2, 3, 4, 5};
  absl::StatusOr<v1::PutBatchResponse> put =
      client_->PutBatch("vm", keys, PagesOf(keys, RandomPage));
  ASSERT_TRUE(put.ok()) << put.status();
  for (const v1::PutItemResult& result : put->results()) {
    EXPECT_EQ(result.code(), 0) << result.message();
  }
  // Three pages went to the watcher to make room; every page is somewhere.
  for (uint64_t key : keys) {
    absl::StatusOr<std::string> page = client_->Get("vm", key);
    EXPECT_EQ(page.ok() ? *page : backing_store.At(key), RandomPage(key));
  }
  EXPECT_EQ(backing_store.size(), 3u);
}

// The zombie Put over RPC: a client's call times out while the server waits
// for room (the watcher holds its acks back); the client then deletes or
// rewrites the keys. When the acks come, nothing the timed-out call carried
// may land: not the item that waited, nor the items after it.
class ZombiePutServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    // Two frames, each holding one incompressible page; an ack deadline
    // longer than the test, so that the waiting item's round ends only
    // when the acks are let go.
    ServerOptions options =
        Options(StoreOptions{.tenant_max_bytes = 2 * kPageSize});
    options.ack_deadline = absl::Seconds(30);
    Start(options);
    impatient_ = Client::Connect(server_->address(),
                                 {.timeout = absl::Milliseconds(300)});
    watcher_ = *client_->Watch("vm", [this](uint64_t, absl::string_view) {
      release_.WaitForNotification();
      return true;
    });
    ASSERT_TRUE(client_->Put("vm", 1, RandomPage(1)).ok());
    ASSERT_TRUE(client_->Put("vm", 3, RandomPage(3)).ok());
  }
  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  // Lets the held acks go and waits until the server has given up on
  // `pages` Puts (the timed-out call's items).
  void ReleaseAndAwaitAbandoned(uint64_t pages) {
    release_.Notify();
    for (int attempt = 0; attempt < 500; ++attempt) {
      if (client_->Stats("vm")->rejected_puts() >= pages) return;
      absl::SleepFor(absl::Milliseconds(10));
    }
    ADD_FAILURE() << "the server never gave up on " << pages << " Puts";
  }

  std::unique_ptr<Client> impatient_;
  absl::Notification release_;
  std::unique_ptr<EvictionWatcher> watcher_;
};

TEST_P(ZombiePutServiceTest, ATimedOutPutDoesNotOverwriteALaterDelete) {
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      impatient_->Put("vm", 2, RandomPage(2)).status()));
  ASSERT_TRUE(client_->Delete("vm", 2).ok());
  ReleaseAndAwaitAbandoned(1);
  EXPECT_TRUE(absl::IsNotFound(client_->Get("vm", 2).status()));
}

TEST_P(ZombiePutServiceTest, NoItemOfATimedOutBatchLandsAfterADelete) {
  const std::vector<uint64_t> keys = {2, 4};
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      impatient_->PutBatch("vm", keys, PagesOf(keys, RandomPage)).status()));
  // The second item needed no room of its own once the first had its frame.
  ASSERT_TRUE(client_->DeleteBatch("vm", keys).ok());
  ReleaseAndAwaitAbandoned(2);
  for (uint64_t key : keys) {
    EXPECT_TRUE(absl::IsNotFound(client_->Get("vm", key).status())) << key;
  }
}

TEST_P(ZombiePutServiceTest, NoItemOfATimedOutBatchLandsAfterDeleteAll) {
  const std::vector<uint64_t> keys = {2, 4};
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      impatient_->PutBatch("vm", keys, PagesOf(keys, RandomPage)).status()));
  ASSERT_TRUE(client_->DeleteAll("vm").ok());
  ReleaseAndAwaitAbandoned(2);
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 0u);
}

TEST_P(ServiceTest, ManyPagesGoInBatchesWithSeveralInFlight) {
  std::vector<std::pair<uint64_t, std::string>> pages;
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 1000; ++key) {
    pages.emplace_back(key, key % 3 == 0 ? RandomPage(key) : TextPage(key));
    keys.push_back(key);
  }
  std::unique_ptr<Client> putter = Client::Connect(
      server_->address(), {.pages_per_call = 7, .calls_in_flight = 3});
  auto put = PutPairs(*putter, "vm", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->size(), pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_TRUE((*put)[i].ok()) << i << ": " << (*put)[i].status();
  }
  keys.push_back(5000);  // never put
  std::unique_ptr<Client> getter = Client::Connect(
      server_->address(), {.pages_per_call = 64, .calls_in_flight = 5});
  auto got = GetPages(*getter, "vm", keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    ASSERT_TRUE((*got)[i].ok()) << i << ": " << (*got)[i].status();
    EXPECT_EQ(*(*got)[i], pages[i].second) << i;
  }
  EXPECT_TRUE(absl::IsNotFound(got->back().status()));
  EXPECT_EQ(client_->Stats("vm")->stored_pages(), 1000u);
}

INSTANTIATE_TEST_SUITE_P(Flavours, ServiceTest, AllStoreFlavours(),
                         StoreFlavourName);
INSTANTIATE_TEST_SUITE_P(Flavours, AuthTest, AllStoreFlavours(),
                         StoreFlavourName);
INSTANTIATE_TEST_SUITE_P(Flavours, ZombiePutServiceTest, AllStoreFlavours(),
                         StoreFlavourName);
INSTANTIATE_TEST_SUITE_P(Flavours, WatchStreamTest, AllStoreFlavours(),
                         StoreFlavourName);

}  // namespace
}  // namespace zpaged
