#include "server/net/connection_listener.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace zpaged {
namespace {

// What the listener handed off: the server ends of accepted connections.
class Connections {
 public:
  ConnectionListener::Handoff Taker() {
    return [this](int, int fd) {
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
    };
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return fds_.size();
  }
  // Closes the server ends of the first `n` connections still held.
  void CloseFirst(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < n; ++i) close(fds_[closed_ + i]);
    closed_ += n;
  }
  ~Connections() { CloseFirst(fds_.size() - closed_); }

 private:
  std::mutex mu_;
  std::vector<int> fds_;
  size_t closed_ = 0;
};

// Waits up to 10 s for `done`; returns whether it became true.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

int ClientSocket() { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

bool Connect(int fd, int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) ==
         0;
}

// Whether the server closed the client's connection `fd` (reads end of
// stream within a second).
bool ClosedByServer(int fd) {
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char byte;
  return recv(fd, &byte, 1, 0) == 0;
}

std::unique_ptr<ConnectionListener> OpenListener(size_t max_connections) {
  absl::StatusOr<std::unique_ptr<ConnectionListener>> listener =
      ConnectionListener::Open(
          ListenerOptions{.address = "127.0.0.1:0",
                          .max_connections = max_connections,
                          .retry_interval = absl::Milliseconds(10)});
  EXPECT_TRUE(listener.ok()) << listener.status();
  return listener.ok() ? *std::move(listener) : nullptr;
}

TEST(ConnectionListenerTest, HandsEveryConnectionOff) {
  Connections taken;
  std::unique_ptr<ConnectionListener> listener = OpenListener(100);
  ASSERT_NE(listener, nullptr);
  ASSERT_GT(listener->port(), 0);
  listener->Start(taken.Taker());
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(ClientSocket());
    ASSERT_TRUE(Connect(clients.back(), listener->port()));
  }
  EXPECT_TRUE(Eventually([&] { return taken.count() == 5; }));
  EXPECT_EQ(listener->counters().accepted, 5u);
  for (int fd : clients) close(fd);
}

TEST(ConnectionListenerTest, ClosesConnectionsPastTheCapUntilOnesClose) {
  Connections taken;
  std::unique_ptr<ConnectionListener> listener = OpenListener(3);
  ASSERT_NE(listener, nullptr);
  listener->Start(taken.Taker());
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(ClientSocket());
    ASSERT_TRUE(Connect(clients.back(), listener->port()));
    if (i < 3) {
      ASSERT_TRUE(Eventually([&] { return taken.count() == i + 1u; }));
    }
  }
  EXPECT_TRUE(ClosedByServer(clients[3]));
  EXPECT_TRUE(ClosedByServer(clients[4]));
  EXPECT_EQ(taken.count(), 3u);
  EXPECT_EQ(listener->counters().refused_at_cap, 2u);

  // Once a connection ends, a new one is let in: at the latest when the
  // listener recounts, retry_interval after its last count.
  taken.CloseFirst(1);
  // Each try is let in or closed on arrival; Eventually spaces the tries,
  // so a recount comes within a few.
  EXPECT_TRUE(Eventually([&] {
    const uint64_t refused = listener->counters().refused_at_cap;
    clients.push_back(ClientSocket());
    EXPECT_TRUE(Connect(clients.back(), listener->port()));
    Eventually([&] {
      return taken.count() == 4 ||
             listener->counters().refused_at_cap > refused;
    });
    return taken.count() == 4;
  }));
  EXPECT_EQ(taken.count(), 4u);
  for (int fd : clients) close(fd);
}

// Fills every free descriptor number below the highest open one (so that
// the next descriptor is highest + 1), and returns the fillers and highest.
std::pair<std::vector<int>, int> FillDescriptorHoles() {
  int highest = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) {
    highest = std::max(highest, std::atoi(entry->d_name));
  }
  closedir(dir);
  std::vector<int> fillers;
  while (true) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd > highest) {
      close(fd);
      return {fillers, highest};
    }
    fillers.push_back(fd);
  }
}

TEST(ConnectionListenerTest, AcceptsAgainOnceDescriptorsFreeUp) {
  Connections taken;
  std::unique_ptr<ConnectionListener> listener = OpenListener(1000);
  ASSERT_NE(listener, nullptr);
  listener->Start(taken.Taker());
  constexpr int kClients = 8;
  constexpr int kRoom = 4;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(ClientSocket());

  // Room for exactly kRoom more descriptors: the listener runs out at the
  // next connection.
  auto [fillers, highest] = FillDescriptorHoles();
  rlimit original;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  rlimit tight = original;
  tight.rlim_cur = highest + 1 + kRoom;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  for (int fd : clients) ASSERT_TRUE(Connect(fd, listener->port()));
  const bool paused =
      Eventually([&] { return listener->counters().descriptor_pauses > 0; });
  const size_t taken_while_tight = taken.count();

  // Descriptors free up, under the same limit: the connections that waited
  // get in.
  taken.CloseFirst(taken_while_tight);
  const bool all_taken = Eventually([&] { return taken.count() == kClients; });
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
  EXPECT_TRUE(paused);
  EXPECT_EQ(taken_while_tight, kRoom);
  EXPECT_TRUE(all_taken) << taken.count() << " of " << kClients << " taken";
  for (int fd : clients) close(fd);
  for (int fd : fillers) close(fd);
}

// The address the server sees for the client end `fd`.
PeerAddress ClientAddress(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  return PeerAddress::Of(reinterpret_cast<sockaddr*>(&address), length)
      .value_or(PeerAddress{});
}

TEST(ConnectionListenerTest, CloseAndBarEndsOneConnectionAndBarsItsSource) {
  Connections taken;
  std::unique_ptr<ConnectionListener> listener = OpenListener(100);
  ASSERT_NE(listener, nullptr);
  listener->Start(taken.Taker());
  const int abuser = ClientSocket();
  const int neighbour = ClientSocket();
  ASSERT_TRUE(Connect(abuser, listener->port()));
  ASSERT_TRUE(Connect(neighbour, listener->port()));
  ASSERT_TRUE(Eventually([&] { return taken.count() == 2; }));

  PeerAddress stranger = ClientAddress(abuser);
  stranger.port ^= 1;
  constexpr absl::Duration kBar = absl::Seconds(3);
  EXPECT_FALSE(listener->CloseAndBar(stranger, kBar));
  const absl::Time barred_at = absl::Now();
  ASSERT_TRUE(listener->CloseAndBar(ClientAddress(abuser), kBar));
  EXPECT_TRUE(ClosedByServer(abuser));

  // A new connection from the same address, while barred, is closed on
  // arrival; one already open goes on; after the bar, one is let in.
  const int during = ClientSocket();
  ASSERT_TRUE(Connect(during, listener->port()));
  EXPECT_TRUE(ClosedByServer(during));
  EXPECT_EQ(listener->counters().refused_barred, 1u);
  EXPECT_FALSE(ClosedByServer(neighbour));
  absl::SleepFor(kBar - (absl::Now() - barred_at));
  const int after = ClientSocket();
  ASSERT_TRUE(Connect(after, listener->port()));
  EXPECT_TRUE(Eventually([&] { return taken.count() == 3; }));
  EXPECT_EQ(listener->counters().closed_and_barred, 1u);
  for (int fd : {abuser, neighbour, during, after}) close(fd);
}

// The server stops accepting at shutdown while /metrics still reads the
// listener's counters.
TEST(ConnectionListenerTest, StopEndsAcceptingAndKeepsTheCounts) {
  Connections taken;
  std::unique_ptr<ConnectionListener> listener = OpenListener(100);
  ASSERT_NE(listener, nullptr);
  listener->Start(taken.Taker());
  const int before = ClientSocket();
  ASSERT_TRUE(Connect(before, listener->port()));
  ASSERT_TRUE(Eventually([&] { return taken.count() == 1; }));
  listener->Stop();
  listener->Stop();
  const int after = ClientSocket();
  EXPECT_FALSE(Connect(after, listener->port()));
  EXPECT_EQ(listener->counters().accepted, 1u);
  EXPECT_FALSE(ClosedByServer(before));
  for (int fd : {before, after}) close(fd);
}

TEST(ConnectionListenerTest, RefusesAddressesItCannotUse) {
  EXPECT_EQ(ConnectionListener::Open(ListenerOptions{.address = "no-port"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  std::unique_ptr<ConnectionListener> first = OpenListener(10);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(
      ConnectionListener::Open(
          ListenerOptions{.address = absl::StrCat("127.0.0.1:", first->port())})
          .status()
          .code(),
      absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace zpaged
