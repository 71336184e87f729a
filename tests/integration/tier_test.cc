// The tier client against real servers: three zpaged servers in this
// process, each with its own --node_name, pages copied to two of them; one
// server stops, and every page is still read back byte-exact.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/lib/zpaged_client.h"
#include "client/tier/member_source.h"
#include "client/tier/tier_client.h"
#include "contract/page.h"
#include "gtest/gtest.h"
#include "server/zpaged_server.h"
#include "tests/testing/many_pages.h"

namespace zpaged {
namespace {

std::string PageOf(uint64_t key) {
  std::string page(kPageSize, '\0');
  const std::string label = absl::StrCat("tier page ", key, " ");
  for (size_t i = 0; i < kPageSize; ++i) page[i] = label[i % label.size()];
  return page;
}

class TierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      ServerOptions options;
      options.listen = "127.0.0.1:0";
      options.metrics_listen = "";
      options.node_name = absl::StrCat("zpaged-", i);
      absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
          ZpagedServer::Start(options);
      ASSERT_TRUE(server.ok()) << server.status();
      servers_.push_back(*std::move(server));
    }
  }
  std::vector<std::string> Named() const {
    std::vector<std::string> servers;
    for (const auto& server : servers_) {
      servers.push_back(server->node_name() + "=" + server->address());
    }
    return servers;
  }
  uint64_t StoredOn(int server) {
    return servers_[server]->store().Stats("vm")->stored_pages;
  }

  std::vector<std::unique_ptr<ZpagedServer>> servers_;
};

TEST_F(TierTest, MembersGivenByAddressAreAskedTheirNames) {
  std::vector<std::string> addresses;
  for (const auto& server : servers_) addresses.push_back(server->address());
  absl::StatusOr<std::unique_ptr<TierClient>> tier =
      TierClient::Connect(addresses, {}, {});
  ASSERT_TRUE(tier.ok()) << tier.status();
  EXPECT_EQ((*tier)->member_names(),
            (std::vector<std::string>{"zpaged-0", "zpaged-1", "zpaged-2"}));
}

TEST_F(TierTest, AnAddressThatAnswersWithAnotherNameIsRefused) {
  std::vector<std::string> servers = Named();
  servers[1] = "zpaged-0=" + servers_[1]->address();  // zpaged-1 is there
  absl::StatusOr<std::unique_ptr<TierClient>> tier =
      TierClient::Connect(servers, {}, {});
  EXPECT_TRUE(absl::IsFailedPrecondition(tier.status())) << tier.status();
  EXPECT_NE(tier.status().message().find("zpaged-1"), std::string::npos);
}

TEST_F(TierTest, EveryPageSurvivesTheLossOfOneServer) {
  absl::StatusOr<std::unique_ptr<TierClient>> connected = TierClient::Connect(
      Named(), {.timeout = absl::Seconds(5)}, {.replicas = 2});
  ASSERT_TRUE(connected.ok()) << connected.status();
  TierClient& tier = **connected;
  constexpr uint64_t kPages = 3000;
  std::vector<std::pair<uint64_t, std::string>> pages;
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < kPages; ++key) {
    pages.emplace_back(key, PageOf(key));
    keys.push_back(key);
  }
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
      PutPairs(tier, "vm", pages);
  ASSERT_TRUE(put.ok()) << put.status();
  for (const absl::StatusOr<PutReply>& r : *put) {
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->copies, 2u);
  }
  // Two copies of each page, spread over all three.
  EXPECT_EQ(StoredOn(0) + StoredOn(1) + StoredOn(2), 2 * kPages);
  for (int i = 0; i < 3; ++i) EXPECT_GT(StoredOn(i), kPages / 2) << i;

  servers_[1].reset();  // zpaged-1 is gone, and its copies with it
  absl::StatusOr<std::vector<absl::StatusOr<std::string>>> got =
      GetPages(tier, "vm", keys);
  ASSERT_TRUE(got.ok()) << got.status();
  for (uint64_t key = 0; key < kPages; ++key) {
    ASSERT_TRUE((*got)[key].ok()) << key << ": " << (*got)[key].status();
    ASSERT_EQ(*(*got)[key], PageOf(key)) << key;
  }
  EXPECT_GT(tier.counters().read_failovers, 0u);

  // Writes go on with the two left, both copies on them.
  absl::StatusOr<PutReply> more = tier.Put("vm", kPages, PageOf(kPages));
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->copies, 2u);
  EXPECT_EQ(*tier.Get("vm", kPages), PageOf(kPages));
}

TEST(MembersFileTest, ReadsEntriesSkippingCommentsAndBlankLines) {
  char path[] = "/tmp/members.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text =
      "# the tier\r\nzpaged-0=10.0.0.1:50051\r\n\n  zpaged-1=h:1  \n";
  ASSERT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  absl::StatusOr<std::vector<std::string>> servers = ReadMembersFile(path);
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_EQ(*servers, (std::vector<std::string>{"zpaged-0=10.0.0.1:50051",
                                                "zpaged-1=h:1"}));
  std::ofstream(path, std::ios::trunc) << "# nobody\n";
  EXPECT_TRUE(absl::IsInvalidArgument(ReadMembersFile(path).status()));
  unlink(path);
  EXPECT_TRUE(absl::IsNotFound(ReadMembersFile(path).status()));
}

TEST(ResolveMembersTest, ANameGivesEachOfItsAddresses) {
  absl::StatusOr<std::vector<std::string>> servers =
      ResolveMembers("localhost:50051");
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_NE(std::find(servers->begin(), servers->end(), "127.0.0.1:50051"),
            servers->end());
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveMembers("no-port").status()));
}

// The reconciler applies a new list: a new entry joins (its name asked), a
// gone one leaves, and a server at a new address is replaced, not removed.
TEST_F(TierTest, TheReconcilerFollowsTheList) {
  std::vector<std::string> two = {Named()[0], Named()[1]};
  absl::StatusOr<std::unique_ptr<TierClient>> tier =
      TierClient::Connect(two, {}, {});
  ASSERT_TRUE(tier.ok()) << tier.status();
  MemberReconciler reconciler(tier->get(), {}, {},
                              {{two[0], "zpaged-0"}, {two[1], "zpaged-1"}});
  EXPECT_EQ(reconciler.Reconcile(two), "");
  const uint64_t changes = (*tier)->reachability_changes();
  std::vector<std::string> three = {two[0], two[1], servers_[2]->address()};
  EXPECT_EQ(reconciler.Reconcile(three),
            "added zpaged-2 (" + servers_[2]->address() + ")");
  EXPECT_GT((*tier)->reachability_changes(), changes);
  EXPECT_EQ(reconciler.Reconcile({two[0], servers_[2]->address()}),
            "removed zpaged-1");
  EXPECT_EQ((*tier)->member_names(),
            (std::vector<std::string>{"zpaged-0", "zpaged-2"}));
  // zpaged-0 at another address (the same server, named through gRPC's
  // ipv4: scheme: no DNS, whose c-ares resolver leaks under ASan).
  const std::string moved =
      "zpaged-0=ipv4:127.0.0.1:" +
      servers_[0]->address().substr(servers_[0]->address().rfind(':') + 1);
  EXPECT_EQ(reconciler.Reconcile({moved, servers_[2]->address()}),
            "added zpaged-0 (" + moved + ")");
  EXPECT_EQ((*tier)->member_names().size(), 2u);
  EXPECT_TRUE((*tier)->Put("vm", 1, PageOf(1)).ok());
  // An address that answers with another name is not added.
  EXPECT_NE(reconciler
                .Reconcile({moved, servers_[2]->address(),
                            "zpaged-9=" + servers_[1]->address()})
                .find("cannot add zpaged-9"),
            std::string::npos);
  EXPECT_EQ((*tier)->member_names().size(), 2u);
}

// A server that takes connections and never answers (stopped, or its
// process wedged) must not hold a watcher's subscriber: the subscription
// has the read deadline. Before, it waited for gRPC's 20 s connect
// timeout, and a tier's watcher thread with it.
TEST(ClientWatchTest, AServerThatNeverAnswersDoesNotHoldTheSubscriber) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(fd, 8), 0);  // the kernel accepts; nobody speaks
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::unique_ptr<Client> client =
      Client::Connect(absl::StrCat("127.0.0.1:", ntohs(address.sin_port)),
                      {.read_timeout = absl::Milliseconds(300)});
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
      client->Watch("vm", [](uint64_t, absl::string_view) { return true; });
  EXPECT_TRUE(absl::IsDeadlineExceeded(watcher.status())) << watcher.status();
  close(fd);
}

// A client is back within about max_reconnect_backoff of its server: after
// a 10 s outage gRPC's own backoff (up to two minutes) waited 8 to 9 s
// before it tried again, and a tier's member stayed unused that long.
TEST(ClientReconnectTest, AServerBackAfterAnOutageIsUsedAgainPromptly) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<ZpagedServer>> server =
      ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  options.listen = (*server)->address();  // the same port when it is back
  std::unique_ptr<Client> client = Client::Connect(
      options.listen, {.read_timeout = absl::Milliseconds(200)});
  ASSERT_TRUE(*client->Serving());
  server->reset();
  for (int i = 0; i < 100; ++i) {  // 10 s of outage, the client trying
    EXPECT_FALSE(client->Serving().ok());
    absl::SleepFor(absl::Milliseconds(100));
  }
  server = ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time back = absl::Now();
  while (!client->Serving().ok() && absl::Now() - back < absl::Seconds(3)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(client->Serving().ok())
      << "not connected again " << absl::Now() - back
      << " after the server came back";
}

}  // namespace
}  // namespace zpaged
