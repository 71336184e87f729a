#include "server/net/connection_listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace zpaged {
namespace {

constexpr int kBacklog = 1024;

void Log(const std::string& line) {
  std::fprintf(stderr, "zpaged: %s\n", line.c_str());
}

std::string ErrnoText(int error) { return std::strerror(error); }

// A listening socket on `address`, or the reason there is none.
absl::StatusOr<int> ListenOn(const sockaddr* address, socklen_t length) {
  const int fd =
      socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(ErrnoText(errno));
  const int one = 1;
  if (address->sa_family != AF_UNIX) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // Accepted sockets inherit it: pages must not wait for Nagle.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (bind(fd, address, length) != 0 || listen(fd, kBacklog) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(ErrnoText(error));
  }
  return fd;
}

absl::StatusOr<int> ListenOnUnix(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unix socket path '", path, "' is empty or too long"));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  // A socket left by an earlier run would make bind fail; anything else at
  // the path is not ours to remove.
  struct stat existing;
  if (stat(path.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) {
    unlink(path.c_str());
  }
  return ListenOn(reinterpret_cast<const sockaddr*>(&address), sizeof(address));
}

int PortOf(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return 0;
  }
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }
  return 0;
}

bool OutOfDescriptors(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS ||
         error == ENOMEM;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionListener>> ConnectionListener::Open(
    const ListenerOptions& options) {
  std::vector<int> sockets;
  auto fail = [&sockets](absl::Status status) {
    for (int fd : sockets) close(fd);
    return status;
  };
  int port = 0;
  if (absl::StartsWith(options.address, "unix:")) {
    absl::StatusOr<int> fd = ListenOnUnix(options.address.substr(5));
    if (!fd.ok()) {
      return absl::Status(fd.status().code(),
                          absl::StrCat("cannot listen on ", options.address,
                                       ": ", fd.status().message()));
    }
    sockets.push_back(*fd);
  } else {
    const size_t colon = options.address.rfind(':');
    int requested_port = 0;
    if (colon == std::string::npos ||
        !absl::SimpleAtoi(options.address.substr(colon + 1), &requested_port) ||
        requested_port < 0 || requested_port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address '", options.address, "' is not host:port"));
    }
    std::string host = options.address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* resolved = nullptr;
    const int error =
        getaddrinfo(host.empty() ? nullptr : host.c_str(),
                    std::to_string(requested_port).c_str(), &hints, &resolved);
    if (error != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot resolve '", host, "' to listen on: ", gai_strerror(error)));
    }
    port = requested_port;
    absl::Status last_error = absl::OkStatus();
    for (addrinfo* a = resolved; a != nullptr; a = a->ai_next) {
      // With port 0, every address gets the port the first one got.
      if (a->ai_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_port = htons(port);
      } else if (a->ai_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_port = htons(port);
      }
      absl::StatusOr<int> fd = ListenOn(a->ai_addr, a->ai_addrlen);
      if (!fd.ok()) {
        last_error = fd.status();
        continue;
      }
      sockets.push_back(*fd);
      if (port == 0) port = PortOf(*fd);
    }
    freeaddrinfo(resolved);
    // A wildcard host resolves to both 0.0.0.0 and ::, and a dual-stack ::
    // already covers the first: one bound address is enough.
    if (sockets.empty()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", options.address, ": ", last_error.message()));
    }
  }
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return fail(absl::UnavailableError(
        absl::StrCat("cannot create an eventfd: ", ErrnoText(errno))));
  }
  return std::unique_ptr<ConnectionListener>(
      new ConnectionListener(options, std::move(sockets), port, wake_fd));
}

ConnectionListener::ConnectionListener(const ListenerOptions& options,
                                       std::vector<int> sockets, int port,
                                       int wake_fd)
    : options_(options),
      sockets_(std::move(sockets)),
      port_(port),
      wake_fd_(wake_fd) {}

ConnectionListener::~ConnectionListener() {
  Stop();
  close(wake_fd_);
}

void ConnectionListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (int fd : sockets_) close(fd);
}

void ConnectionListener::Start(Handoff handoff) {
  handoff_ = std::move(handoff);
  thread_ = std::thread([this] { AcceptLoop(); });
}

ConnectionListener::Counters ConnectionListener::counters() const {
  return Counters{.accepted = accepted_.load(),
                  .refused_at_cap = refused_at_cap_.load(),
                  .descriptor_pauses = descriptor_pauses_.load(),
                  .closed_and_barred = closed_and_barred_.load(),
                  .refused_barred = refused_barred_.load()};
}

bool ConnectionListener::CloseAndBar(const PeerAddress& peer,
                                     absl::Duration bar) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  absl::erase_if(barred_until_,
                 [now](const auto& entry) { return entry.second <= now; });
  for (const OpenConnection& c : open_) {
    if (c.peer != peer || !StillOpen(c)) continue;
    // gRPC owns the descriptor and closes it; shutting the socket down
    // makes its reads end, after which it frees the connection as if the
    // client had gone.
    if (PeerAddress::OfPeer(c.fd) != peer) continue;
    shutdown(c.fd, SHUT_RDWR);
    barred_until_[peer.Source()] = now + bar;
    closed_and_barred_++;
    return true;
  }
  return false;
}

void ConnectionListener::AcceptLoop() {
  std::vector<pollfd> watched;
  watched.push_back(pollfd{wake_fd_, POLLIN, 0});
  for (int fd : sockets_) watched.push_back(pollfd{fd, POLLIN, 0});
  bool paused = false;
  while (true) {
    // While paused, only the wake-up is watched: a listener with a backlog
    // would make poll return at once, again and again.
    const int timeout = paused ? static_cast<int>(absl::ToInt64Milliseconds(
                                     options_.retry_interval))
                               : -1;
    const nfds_t count = paused ? 1 : watched.size();
    if (poll(watched.data(), count, timeout) < 0 && errno != EINTR) {
      Log(absl::StrCat("listener: poll failed: ", ErrnoText(errno)));
      return;
    }
    if (watched[0].revents != 0) return;
    bool exhausted = false;
    for (size_t i = 1; i < watched.size(); ++i) {
      if (!paused && watched[i].revents == 0) continue;
      if (!AcceptFrom(watched[i].fd)) exhausted = true;
    }
    if (exhausted && !paused) {
      descriptor_pauses_++;
      Log(absl::StrCat(
          "listener: out of file descriptors; pausing accepts, retrying every ",
          absl::FormatDuration(options_.retry_interval)));
    } else if (!exhausted && paused) {
      Log("listener: descriptors are free again; accepting");
    }
    paused = exhausted;
  }
}

bool ConnectionListener::AcceptFrom(int listener) {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    const int fd = accept4(listener, reinterpret_cast<sockaddr*>(&address),
                           &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
      if (OutOfDescriptors(error)) return false;
      if (error != EAGAIN && error != EWOULDBLOCK) {
        Log(absl::StrCat("listener: accept failed: ", ErrnoText(error)));
      }
      return true;
    }
    const std::optional<PeerAddress> peer =
        PeerAddress::Of(reinterpret_cast<const sockaddr*>(&address), length);
    absl::ReleasableMutexLock lock(&mu_);
    if (Barred(peer)) {
      lock.Release();
      refused_barred_++;
      close(fd);
      continue;
    }
    if (AtCap()) {
      lock.Release();
      if (refused_at_cap_.fetch_add(1) == 0) {
        Log(absl::StrCat("listener: ", options_.max_connections,
                         " connections open (--max_connections); closing new "
                         "ones on arrival"));
      }
      close(fd);
      continue;
    }
    struct stat socket_stat;
    fstat(fd, &socket_stat);
    open_.push_back(
        OpenConnection{fd, socket_stat.st_dev, socket_stat.st_ino, peer});
    lock.Release();
    accepted_++;
    handoff_(listener, fd);
  }
}

bool ConnectionListener::AtCap() {
  if (open_.size() < options_.max_connections) return false;
  const absl::Time now = absl::Now();
  if (now - last_recount_ < options_.retry_interval) return true;
  last_recount_ = now;
  std::vector<OpenConnection> still_open;
  still_open.reserve(open_.size());
  for (const OpenConnection& c : open_) {
    if (StillOpen(c)) still_open.push_back(c);
  }
  open_ = std::move(still_open);
  return open_.size() >= options_.max_connections;
}

bool ConnectionListener::Barred(const std::optional<PeerAddress>& peer) {
  if (!peer.has_value() || barred_until_.empty()) return false;
  const auto it = barred_until_.find(peer->Source());
  return it != barred_until_.end() && it->second > absl::Now();
}

bool ConnectionListener::StillOpen(const OpenConnection& c) {
  struct stat now_stat;
  return fstat(c.fd, &now_stat) == 0 && now_stat.st_dev == c.device &&
         now_stat.st_ino == c.inode;
}

}  // namespace zpaged
