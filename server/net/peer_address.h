// PeerAddress: the IP address and port at the other end of a TCP
// connection, as one value whatever the family.
//
// IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so that a dual-stack
// listener's view of a client and gRPC's own view of it (which unmaps it)
// compare equal. Unix-socket peers have no address: Of() returns nullopt.

#ifndef ZPAGED_SERVER_NET_PEER_ADDRESS_H_
#define ZPAGED_SERVER_NET_PEER_ADDRESS_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace zpaged {

struct PeerAddress {
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;

  // The address of a TCP socket's peer (AF_INET or AF_INET6).
  static std::optional<PeerAddress> Of(const sockaddr* address,
                                       socklen_t length);
  // The peer of a connected socket.
  static std::optional<PeerAddress> OfPeer(int fd);
  // From 4 or 16 raw address bytes (network order), as channelz reports them.
  static std::optional<PeerAddress> FromBytes(absl::string_view ip,
                                              uint16_t port);

  bool is_v4() const;
  // Where the peer's connections come from, for refusing them together: an
  // IPv4 address, or an IPv6 /64 (one host's share of a network, since a
  // host may take any address in its /64).
  std::array<uint8_t, 16> Source() const;

  // "1.2.3.4:5" or "[::1]:5".
  std::string ToString() const;

  bool operator==(const PeerAddress& other) const {
    return ip == other.ip && port == other.port;
  }
  bool operator!=(const PeerAddress& other) const { return !(*this == other); }
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_NET_PEER_ADDRESS_H_
