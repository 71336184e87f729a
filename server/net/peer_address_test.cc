#include "server/net/peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

TEST(PeerAddressTest, IPv4IsMappedSoBothViewsOfAClientAgree) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(4242);
  v4.sin_addr.s_addr = htonl(0x7f000001);
  const std::optional<PeerAddress> accepted =
      PeerAddress::Of(reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->ToString(), "127.0.0.1:4242");
  EXPECT_EQ(PeerAddress::FromBytes(std::string("\x7f\0\0\x01", 4), 4242),
            accepted);
  EXPECT_FALSE(PeerAddress::FromBytes("abc", 1).has_value());
}

TEST(PeerAddressTest, AnIPv6SourceIsItsSlash64) {
  std::string ip(16, '\0');
  ip[0] = 0x20;
  ip[1] = 0x01;
  ip[15] = 0x01;
  const PeerAddress one = *PeerAddress::FromBytes(ip, 1);
  ip[15] = 0x02;
  const PeerAddress neighbour = *PeerAddress::FromBytes(ip, 1);
  ip[7] = 0x01;
  const PeerAddress other_network = *PeerAddress::FromBytes(ip, 1);
  EXPECT_EQ(one.ToString(), "[2001::1]:1");
  EXPECT_EQ(one.Source(), neighbour.Source());
  EXPECT_NE(one.Source(), other_network.Source());
}

}  // namespace
}  // namespace zpaged
