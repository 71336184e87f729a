#include "server/net/peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0,    0,
                                                     0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::optional<PeerAddress> PeerAddress::Of(const sockaddr* address,
                                           socklen_t length) {
  PeerAddress peer;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(peer.ip.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    std::memcpy(peer.ip.data() + 12, &v4->sin_addr, 4);
    peer.port = ntohs(v4->sin_port);
    return peer;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(peer.ip.data(), &v6->sin6_addr, 16);
    peer.port = ntohs(v6->sin6_port);
    return peer;
  }
  return std::nullopt;
}

std::optional<PeerAddress> PeerAddress::OfPeer(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return std::nullopt;
  }
  return Of(reinterpret_cast<const sockaddr*>(&address), length);
}

std::optional<PeerAddress> PeerAddress::FromBytes(absl::string_view ip,
                                                  uint16_t port) {
  PeerAddress peer;
  peer.port = port;
  if (ip.size() == 4) {
    std::memcpy(peer.ip.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    std::memcpy(peer.ip.data() + 12, ip.data(), 4);
    return peer;
  }
  if (ip.size() == 16) {
    std::memcpy(peer.ip.data(), ip.data(), 16);
    return peer;
  }
  return std::nullopt;
}

bool PeerAddress::is_v4() const {
  return std::memcmp(ip.data(), kV4MappedPrefix.data(),
                     kV4MappedPrefix.size()) == 0;
}

std::array<uint8_t, 16> PeerAddress::Source() const {
  std::array<uint8_t, 16> source = ip;
  if (!is_v4()) std::fill(source.begin() + 8, source.end(), 0);
  return source;
}

std::string PeerAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, ip.data() + 12, text, sizeof(text));
    return absl::StrCat(text, ":", port);
  }
  inet_ntop(AF_INET6, ip.data(), text, sizeof(text));
  return absl::StrCat("[", text, "]:", port);
}

}  // namespace zpaged
