// What a hostile or broken client can make the server hold, and what it
// must not be able to do (issue 11): each test drives the real server over
// loopback with the input an attacker would send.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "client/lib/zpaged_client.h"
#include "contract/page.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "server/rpc/watch_reactor.h"
#include "server/zpaged_server.h"
#include "tests/testing/many_pages.h"
#include "tests/testing/stuck_watcher.h"

namespace zpaged {
namespace {

std::string RandomPage(int seed) {
  std::mt19937_64 rng(seed);
  std::string page(kPageSize, '\0');
  for (char& c : page) c = static_cast<char>(rng());
  return page;
}

ClientOptions WithToken(std::string token) {
  ClientOptions options;
  options.token = std::move(token);
  return options;
}

class HardeningTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options) {
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
        ZpagedServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = Client::Connect(server_->address());
  }

  // Waits (up to a minute, the test's backstop) until `done` holds.
  template <typename Predicate>
  bool Eventually(Predicate done) {
    for (int i = 0; i < 600; ++i) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return done();
  }

  // Subscribes an acking watcher to each of tenants PREFIX0..PREFIX<n-1>.
  std::vector<std::unique_ptr<EvictionWatcher>> WatchTenants(
      const std::string& prefix, int n) {
    std::vector<std::unique_ptr<EvictionWatcher>> watchers;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
          client_->Watch(prefix + std::to_string(i),
                         [](uint64_t, absl::string_view) { return true; });
      EXPECT_TRUE(watcher.ok()) << watcher.status();
      if (watcher.ok()) watchers.push_back(*std::move(watcher));
    }
    return watchers;
  }

  uint64_t InFlight(absl::string_view tenant) {
    for (const auto& [name, counts] : server_->broker().CountsByTenant()) {
      if (name == tenant) return counts.in_flight;
    }
    return 0;
  }

  std::unique_ptr<ZpagedServer> server_;
  std::unique_ptr<Client> client_;
};

// Issue 11 #6: a watcher that never reads made the server queue every page
// evicted to it (2.4 MiB/s, without bound).
TEST_F(HardeningTest, AWatcherThatDoesNotReadHoldsABoundedOutbox) {
  ServerOptions options;
  options.ack_deadline = absl::Minutes(10);  // nothing times out meanwhile
  Start(options);
  constexpr int kPages = 800;
  std::vector<std::pair<uint64_t, std::string>> pages;
  for (int key = 0; key < kPages; ++key)
    pages.emplace_back(key, RandomPage(key));
  ASSERT_TRUE(PutPairs(*client_, "vm", pages).ok());

  grpc::ClientContext watch;
  auto stream = client_->stub().WatchEvictions(&watch);
  v1::EvictionAck subscribe;
  subscribe.set_tenant("vm");
  ASSERT_TRUE(stream->Write(subscribe));
  stream->WaitForInitialMetadata();  // subscribed; it never reads a page

  // Many Reclaims at once, each with up to 16 frames out: far more pages
  // than the outbox takes. Their calls end at their own short deadline; the
  // server goes on with them.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<v1::ReclaimRequest> requests(kPages / 16);
  std::vector<v1::ReclaimResponse> responses(requests.size());
  std::atomic<int> answered{0};
  for (size_t i = 0; i < requests.size(); ++i) {
    auto& context = contexts.emplace_back(new grpc::ClientContext);
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(1));
    requests[i].set_tenant("vm");
    requests[i].set_pages(16);
    client_->stub().async()->Reclaim(context.get(), &requests[i], &responses[i],
                                     [&](grpc::Status) { answered++; });
  }
  ASSERT_TRUE(
      Eventually([&] { return answered.load() == int(requests.size()); }));
  // The outbox plus what the client's flow-control window took before it
  // closed (about 128 pages, 512 KiB, here; 256 allowed). Without the bound
  // every one of the 800 evicted pages was out: 800.
  const uint64_t in_flight = InFlight("vm");
  EXPECT_LE(in_flight, WatchReactor::kMaxOutboxPages + 256) << in_flight;
  EXPECT_GT(in_flight, 0u);
  // The pages refused stay stored, and the refusals are counted.
  const PageStats stats = *server_->store().Stats("vm");
  EXPECT_EQ(stats.stored_pages, static_cast<uint64_t>(kPages));
  EXPECT_GT(stats.deliveries_refused, 0u);
  watch.TryCancel();
}

// Issue 11 #8: a watch stream opened with a token kept receiving its
// tenant's pages after the token was removed and the file reloaded.
TEST_F(HardeningTest, AReloadEndsEvictionStreamsWhoseTokenWasRevoked) {
  const std::string tokens = ::testing::TempDir() + "/revoke_tokens";
  std::ofstream(tokens) << "alpha vm\nbeta vm\n";
  ServerOptions options;
  options.auth_tokens_file = tokens;
  Start(options);
  auto alpha = Client::Connect(server_->address(), WithToken("alpha"));
  auto beta = Client::Connect(server_->address(), WithToken("beta"));
  std::atomic<int> beta_pages{0};
  auto revoked =
      alpha->Watch("vm", [](uint64_t, absl::string_view) { return true; });
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  auto kept = beta->Watch("vm", [&](uint64_t, absl::string_view) {
    beta_pages++;
    return true;
  });
  ASSERT_TRUE(kept.ok()) << kept.status();

  std::ofstream(tokens, std::ios::trunc) << "beta vm\n";
  ASSERT_EQ(*server_->ReloadTokens(), 1u);
  const absl::Status ended = (*revoked)->Wait();
  EXPECT_EQ(ended.code(), absl::StatusCode::kUnauthenticated) << ended;
  EXPECT_FALSE((*kept)->WaitFor(absl::Milliseconds(200)));
  // The tenant's pages now go to the one watcher left.
  ASSERT_TRUE(beta->Put("vm", 1, RandomPage(1)).ok());
  absl::StatusOr<v1::ReclaimResponse> reclaimed = beta->Reclaim("vm", 1);
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(reclaimed->evicted_pages(), 1u);
  EXPECT_EQ(beta_pages.load(), 1);
}

// Issue 11 #10: 300 watchers on never-used tenant names were all accepted.
TEST_F(HardeningTest, WatchersOnNewTenantNamesCountAgainstMaxTenants) {
  ServerOptions options;
  options.store.max_tenants = 4;
  Start(options);
  std::vector<std::unique_ptr<EvictionWatcher>> watchers =
      WatchTenants("never-used-", 4);
  ASSERT_EQ(watchers.size(), 4u);
  const absl::Status fifth =
      client_
          ->Watch("never-used-4",
                  [](uint64_t, absl::string_view) { return true; })
          .status();
  EXPECT_EQ(fifth.code(), absl::StatusCode::kResourceExhausted) << fifth;
  // A second watcher of a watched tenant is still welcome.
  EXPECT_TRUE(client_
                  ->Watch("never-used-0",
                          [](uint64_t, absl::string_view) { return true; })
                  .ok());
}

// Issue 22: watchers on made-up tenant names filled every slot, and a real
// tenant's watcher was refused, so its Puts at the limit failed. A tenant
// that holds pages now takes the slot of one that holds none, whose stream
// ends with RESOURCE_EXHAUSTED.
TEST_F(HardeningTest, MadeUpTenantsCannotCrowdOutOnesWithPages) {
  ServerOptions options;
  options.store.max_tenants = 4;
  Start(options);
  std::vector<std::unique_ptr<EvictionWatcher>> junk =
      WatchTenants("made-up-", 3);
  ASSERT_EQ(junk.size(), 3u);
  ASSERT_TRUE(client_->Put("real", 1, std::string(kPageSize, 'r')).ok());
  // 3 made-up tenants and "real" (it holds a page) make 4 tenants, and
  // one more watched tenant name fills the watcher slots.
  auto fourth = client_->Watch(
      "made-up-3", [](uint64_t, absl::string_view) { return true; });
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  junk.push_back(std::move(*fourth));
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> real =
      client_->Watch("real", [](uint64_t, absl::string_view) { return true; });
  ASSERT_TRUE(real.ok()) << real.status();
  EvictionWatcher* displaced = nullptr;
  for (int poll = 0; poll < 500 && displaced == nullptr; ++poll) {
    for (const auto& watcher : junk) {
      if (watcher->WaitFor(absl::ZeroDuration())) displaced = watcher.get();
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_NE(displaced, nullptr) << "no made-up tenant's watcher was closed";
  EXPECT_EQ(displaced->Wait().code(), absl::StatusCode::kResourceExhausted);
  int ended = 0;
  for (const auto& watcher : junk)
    ended += watcher->WaitFor(absl::ZeroDuration());
  EXPECT_EQ(ended, 1);
}

// Issue 11 #1: with --drain_on_shutdown a client that kept putting after
// SIGTERM got its Puts answered OK and the drain did not end; a watcher that
// acked slowly held shutdown for far longer than its grace. Here the watcher
// never acks and the ack deadline is an hour: the test ending at all is the
// proof that shutdown keeps to its drain deadline and grace.
TEST_F(HardeningTest, ShutdownTakesNoNewPagesAndEndsInTime) {
  ServerOptions options;
  options.ack_deadline = absl::Hours(1);
  options.drain_on_shutdown = true;
  options.drain_deadline = absl::Seconds(1);
  options.store.tenant_max_bytes = 4 * kPageSize;
  Start(options);
  for (int key = 1; key <= 4; ++key) {
    ASSERT_TRUE(client_->Put("vm", key, RandomPage(key)).ok());
  }
  ASSERT_TRUE(client_->Put("vm", 5, std::string(kPageSize, '\0')).ok());
  auto silent = StuckWatcher::Start(*client_, "vm");  // never acks
  ASSERT_TRUE(silent.ok()) << silent.status();

  // A Put that must wait for room: its eviction is out to the silent watcher.
  absl::Status waited;
  std::thread waiting(
      [&] { waited = client_->Put("vm", 6, RandomPage(6)).status(); });
  ASSERT_TRUE(Eventually([&] { return InFlight("vm") > 0; }));

  PageStore::DrainReport report;
  std::thread shutdown([&] { report = server_->Shutdown(absl::Seconds(1)); });
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<bool> serving = client_->Serving();
    return serving.ok() && !*serving;
  }));
  const absl::Status late = client_->Put("vm", 7, RandomPage(7)).status();
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable) << late;
  EXPECT_NE(late.message().find("takes no more pages"), absl::string_view::npos)
      << late;
  shutdown.join();
  waiting.join();

  EXPECT_FALSE(waited.ok());
  EXPECT_EQ(report.drained_pages, 0u);
  ASSERT_EQ(report.left.size(), 1u);
  EXPECT_EQ(report.left[0].tenant, "vm");
  EXPECT_EQ(report.left[0].pages, 5u);
  EXPECT_EQ(report.left[0].same_filled_pages, 1u);
  EXPECT_TRUE(report.left[0].watched);
}

// Issue 11 #9: tenant A's slow watchers and eight Reclaims held all four
// threads that evicting Puts shared, so every tenant B Put that needed an
// eviction timed out. Nothing waits on a thread for an ack now: A's
// evictions are out to its silent watcher while B's Puts evict to B's own.
TEST_F(HardeningTest, OneTenantsSlowWatchersDoNotStallAnothersPuts) {
  ServerOptions options;
  options.ack_deadline = absl::Minutes(10);
  options.store.tenant_max_bytes = 8 * kPageSize;
  Start(options);
  for (int key = 0; key < 8; ++key) {
    ASSERT_TRUE(client_->Put("a", key, RandomPage(key)).ok());
    ASSERT_TRUE(client_->Put("b", key, RandomPage(100 + key)).ok());
  }
  auto silent = StuckWatcher::Start(*client_, "a");  // never acks
  ASSERT_TRUE(silent.ok());
  auto quick =
      client_->Watch("b", [](uint64_t, absl::string_view) { return true; });
  ASSERT_TRUE(quick.ok());

  // Eight Reclaims of A, each waiting on acks that do not come.
  std::atomic<int> answered{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<v1::ReclaimRequest> requests(8);
  std::vector<v1::ReclaimResponse> responses(8);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto& context = contexts.emplace_back(new grpc::ClientContext);
    requests[i].set_tenant("a");
    requests[i].set_pages(1);
    client_->stub().async()->Reclaim(context.get(), &requests[i], &responses[i],
                                     [&](grpc::Status) { answered++; });
  }
  ASSERT_TRUE(Eventually([&] { return InFlight("a") >= 8; }));

  // B's pool is full: each Put evicts to B's watcher and goes in.
  for (int key = 8; key < 16; ++key) {
    absl::StatusOr<PutReply> put = client_->Put("b", key, RandomPage(key));
    EXPECT_TRUE(put.ok()) << put.status();
  }
  EXPECT_EQ(server_->store().Stats("b")->evicted_pages, 8u);
  // The calls' contexts and messages must outlive their callbacks.
  for (auto& context : contexts) context->TryCancel();
  EXPECT_TRUE(Eventually([&] { return answered.load() == 8; }));
}

// Issue 22 #2: 800 PutBatches of one tenant waiting for evictions held
// 1,112 MiB, and gRPC's memory quota then reset other tenants' streams.
// zpaged now admits a tenant's write requests up to an eighth of
// --grpc_memory_bytes (here 2 MiB): past it the flood is refused at once.
TEST_F(HardeningTest, OneTenantsWaitingBatchesAreBoundedAndOthersGoOn) {
  ServerOptions options;
  options.grpc_memory_bytes = 16 << 20;
  options.ack_deadline = absl::Minutes(10);
  options.store.tenant_max_bytes = 4 * kPageSize;
  Start(options);
  for (int key = 0; key < 4; ++key) {
    ASSERT_TRUE(client_->Put("a", key, RandomPage(key)).ok());
  }
  auto stuck = StuckWatcher::Start(*client_, "a");  // A's Puts wait
  ASSERT_TRUE(stuck.ok()) << stuck.status();
  // Four batches of 512 KiB, each waiting for room: A's 2 MiB.
  constexpr int kBatchPages = 128;
  auto batch = [](int first) {
    v1::PutBatchRequest request;
    request.set_tenant("a");
    for (int i = 0; i < kBatchPages; ++i) {
      request.add_keys(first + i);
      request.mutable_pages()->append(RandomPage(first + i));
    }
    return request;
  };
  std::atomic<int> answered{0};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<v1::PutBatchRequest> requests;
  std::vector<v1::PutBatchResponse> responses(4);
  for (int b = 0; b < 4; ++b) requests.push_back(batch(100 + b * kBatchPages));
  for (int b = 0; b < 4; ++b) {
    auto& context = contexts.emplace_back(new grpc::ClientContext);
    client_->stub().async()->PutBatch(context.get(), &requests[b],
                                      &responses[b],
                                      [&](grpc::Status) { answered++; });
  }
  ASSERT_TRUE(Eventually([&] { return InFlight("a") > 0; }));
  // A fifth is refused at once, not left waiting with the others. Until
  // all four have reached the server it may be taken in instead, and then
  // its own short deadline ends it: it is sent again.
  v1::PutBatchRequest fifth = batch(1000);
  grpc::Status refused;
  for (int attempt = 0; attempt < 30; ++attempt) {
    grpc::ClientContext fifth_context;
    fifth_context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(1));
    v1::PutBatchResponse fifth_response;
    refused = client_->stub().PutBatch(&fifth_context, fifth, &fifth_response);
    if (refused.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) break;
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("tenant 'a'"), std::string::npos);
  // Another tenant's writes go on.
  EXPECT_TRUE(client_->Put("b", 1, RandomPage(1)).ok());
  for (auto& context : contexts) context->TryCancel();
  EXPECT_TRUE(Eventually([&] { return answered.load() == 4; }));
}

// The status line and body of GET /metrics on `port`, with an Authorization
// header when `authorization` is not empty.
std::string HttpGetMetrics(int port, const std::string& authorization) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address))) {
    close(fd);
    return "connect failed";
  }
  std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!authorization.empty()) {
    request += "Authorization: " + authorization + "\r\n";
  }
  request += "\r\n";
  if (write(fd, request.data(), request.size()) < 0) {
    close(fd);
    return "write failed";
  }
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) {
    response.append(buffer, n);
  }
  close(fd);
  return response;
}

// Issue 11 #11: /metrics needed no credentials.
TEST_F(HardeningTest, MetricsCanWantBasicAuth) {
  const std::string auth = ::testing::TempDir() + "/metrics_auth";
  std::ofstream(auth) << "prometheus:s3cret\n";
  ServerOptions options;
  options.metrics_listen = "127.0.0.1:0";
  options.metrics_auth_file = auth;
  Start(options);
  ASSERT_TRUE(client_->Put("vm", 1, RandomPage(1)).ok());
  const int port = server_->metrics_port();
  ASSERT_GT(port, 0);
  EXPECT_NE(HttpGetMetrics(port, "").find(" 401 "), std::string::npos);
  EXPECT_NE(
      HttpGetMetrics(port, "Basic " + absl::Base64Escape("prometheus:wrong"))
          .find(" 401 "),
      std::string::npos);
  const std::string scrape =
      HttpGetMetrics(port, "Basic " + absl::Base64Escape("prometheus:s3cret"));
  EXPECT_NE(scrape.find(" 200 "), std::string::npos) << scrape.substr(0, 200);
  EXPECT_NE(scrape.find("zpaged_stored_pages{tenant=\"vm\"} 1"),
            std::string::npos);

  // Issue 22: a CRLF line ending made the password "s3cret\r".
  std::ofstream(auth, std::ios::trunc) << "prometheus:s3cret\r\n";
  options.listen = "127.0.0.1:0";
  Start(options);
  const std::string crlf =
      HttpGetMetrics(server_->metrics_port(),
                     "Basic " + absl::Base64Escape("prometheus:s3cret"));
  EXPECT_NE(crlf.find(" 200 "), std::string::npos) << crlf.substr(0, 200);

  // A file that is not USER:PASSWORD is refused at start.
  std::ofstream(auth, std::ios::trunc) << "no colon\n";
  options.listen = "127.0.0.1:0";
  EXPECT_EQ(ZpagedServer::Start(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zpaged
