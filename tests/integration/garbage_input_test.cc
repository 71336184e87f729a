// Hostile bytes on the gRPC port: garbage, truncated HTTP/2 frames, frames
// that claim to be huge, and oversized messages. The server must keep
// serving a well-behaved client correctly throughout.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "client/lib/zpaged_client.h"
#include "gtest/gtest.h"
#include "server/zpaged_server.h"

namespace zpaged {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Connects to 127.0.0.1:`port`, writes `bytes`, reads whatever comes back
// for a moment, and closes.
void SendRaw(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n =
        send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may hang up first
    sent += n;
  }
  timeval timeout{0, 100 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  char buffer[4096];
  while (recv(fd, buffer, sizeof(buffer), 0) > 0) {
  }
  close(fd);
}

// An HTTP/2 frame header: 24-bit length, type, flags, stream id.
std::string FrameHeader(uint32_t length, uint8_t type, uint8_t flags,
                        uint32_t stream) {
  std::string h(9, '\0');
  h[0] = static_cast<char>(length >> 16);
  h[1] = static_cast<char>(length >> 8);
  h[2] = static_cast<char>(length);
  h[3] = static_cast<char>(type);
  h[4] = static_cast<char>(flags);
  h[5] = static_cast<char>((stream >> 24) & 0x7F);
  h[6] = static_cast<char>(stream >> 16);
  h[7] = static_cast<char>(stream >> 8);
  h[8] = static_cast<char>(stream);
  return h;
}

TEST(GarbageInputTest, HostileBytesNeverHurtOtherClients) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = ZpagedServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  int port = 0;
  const std::string& address = (*server)->address();
  ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  // Whole pages: an oversized one must reach the server.
  std::unique_ptr<Client> client = Client::Connect(
      address, ClientOptions{.compression = {EdgeCompressor::kNone}});

  std::mt19937_64 rng(99);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  };
  const std::string settings = FrameHeader(0, 0x4, 0, 0);
  const std::vector<std::string> attacks = {
      random_bytes(1),
      random_bytes(64 * 1024),
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string(kPreface),                // preface, then hang up
      std::string(kPreface).substr(0, 10),  // truncated preface
      std::string(kPreface) + settings +
          FrameHeader(100, 0x1, 0x4, 1),  // HEADERS cut short
      std::string(kPreface) + settings + FrameHeader(0xFFFFFF, 0x0, 0, 1) +
          random_bytes(1000),  // DATA claiming 16 MiB
      std::string(kPreface) + settings + random_bytes(5000),
      std::string(kPreface) + FrameHeader(6, 0x4, 0, 0) + random_bytes(6) +
          FrameHeader(8, 0x6, 0, 0),  // truncated PING
  };
  const std::string good = std::string(4096, 'z').replace(0, 5, "hello");
  for (size_t round = 0; round < 3; ++round) {
    for (size_t i = 0; i < attacks.size(); ++i) {
      SendRaw(port, attacks[i]);
      const uint64_t key = round * 100 + i;
      ASSERT_TRUE(client->Put("victim", key, good).ok())
          << "after attack " << i;
      absl::StatusOr<std::string> back = client->Get("victim", key);
      ASSERT_TRUE(back.ok()) << "after attack " << i << ": " << back.status();
      EXPECT_EQ(*back, good);
    }
  }
  // Oversized messages through a real client are refused, and harmless.
  EXPECT_EQ(client->Put("victim", 1, std::string(2 << 20, 'x')).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*client->Get("victim", 0), good);
  EXPECT_EQ(client->Stats("victim")->stored_pages(), 3 * attacks.size());
}

}  // namespace
}  // namespace zpaged
