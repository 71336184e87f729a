// ConnectionListener: zpaged's own accept loop in front of gRPC.
//
// gRPC 1.51's listener stops for good the first time accept() fails with
// anything but EAGAIN: one burst that exhausts the descriptors (EMFILE) and
// the process lives on without ever accepting again. It has no connection
// cap either. So zpaged owns its listening sockets: one thread accepts, and
// hands every connection to gRPC through ServerBuilder's external connection
// acceptor, where it runs like one gRPC accepted itself (same credentials,
// channel arguments and resource quota).
//
//   Descriptors exhausted (EMFILE, ENFILE, ENOBUFS, ENOMEM): accepting pauses
//     for retry_interval, then resumes by itself. Connections arriving
//     meanwhile wait in the kernel's backlog.
//   max_connections open: a new connection is accepted and closed at once, so
//     its client sees a refusal rather than a hang, and it is counted.
//   A source barred by CloseAndBar: the same, until the bar ends.
//
// Counting open connections: gRPC closes the descriptors it is handed and
// says nothing. The listener remembers each one as (descriptor, inode); once
// the count reaches the cap it checks, at most once per retry_interval,
// which of them still name the same socket (a closed descriptor fails fstat;
// a reused one names another inode), and forgets the rest.

#ifndef ZPAGED_SERVER_NET_CONNECTION_LISTENER_H_
#define ZPAGED_SERVER_NET_CONNECTION_LISTENER_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/net/peer_address.h"

namespace zpaged {

struct ListenerOptions {
  // "host:port" (port 0: the kernel picks one; every address the host
  // resolves to is bound), "[v6]:port", or "unix:PATH".
  std::string address;
  // Connections open at once; past it new ones are closed on arrival.
  size_t max_connections = 10000;
  // How long accepting pauses when descriptors run out, and how often the
  // open connections are recounted at the cap.
  absl::Duration retry_interval = absl::Milliseconds(100);
};

class ConnectionListener {
 public:
  // Takes a connection: `fd` is connected and non-blocking, and is the
  // callee's to close. Called on the accepting thread.
  using Handoff = absl::AnyInvocable<void(int listener_fd, int fd)>;

  struct Counters {
    uint64_t accepted = 0;
    uint64_t refused_at_cap = 0;
    // Times accepting paused because descriptors ran out.
    uint64_t descriptor_pauses = 0;
    // Connections closed by CloseAndBar, and new ones closed on arrival
    // because their source was barred.
    uint64_t closed_and_barred = 0;
    uint64_t refused_barred = 0;
  };

  // Binds and listens. UNAVAILABLE if the address cannot be bound,
  // INVALID_ARGUMENT if it cannot be parsed or resolved.
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Open(
      const ListenerOptions& options);

  // Stop()s.
  ~ConnectionListener();

  ConnectionListener(const ConnectionListener&) = delete;
  ConnectionListener& operator=(const ConnectionListener&) = delete;

  // Starts the accepting thread. Once.
  void Start(Handoff handoff);

  // Stops accepting (joins the thread) and closes the listening sockets;
  // connections already handed off are not touched, and counters() still
  // reads what was counted. Idempotent; not concurrent with itself.
  void Stop();

  // The bound port (0 for a unix socket).
  int port() const { return port_; }

  Counters counters() const;

  // Ends the open connection from `peer` (shutdown: gRPC sees it end and
  // frees it) and closes every new connection from its source
  // (PeerAddress::Source) on arrival for `bar`. False when no connection
  // from `peer` is open. Any thread.
  bool CloseAndBar(const PeerAddress& peer, absl::Duration bar);

 private:
  // A handed-off connection as it was when accepted.
  struct OpenConnection {
    int fd;
    dev_t device;
    ino_t inode;
    std::optional<PeerAddress> peer;  // none for unix sockets
  };
  using Source = std::array<uint8_t, 16>;

  ConnectionListener(const ListenerOptions& options, std::vector<int> sockets,
                     int port, int wake_fd);

  void AcceptLoop();
  // Accepts what is pending on `listener`; returns false when descriptors
  // ran out.
  bool AcceptFrom(int listener);
  // Whether max_connections are open, recounting if they seem to be.
  bool AtCap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `peer`'s source is barred now.
  bool Barred(const std::optional<PeerAddress>& peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `c` still names the socket it named when accepted.
  static bool StillOpen(const OpenConnection& c);

  const ListenerOptions options_;
  const std::vector<int> sockets_;  // closed by Stop
  const int port_;
  const int wake_fd_;  // an eventfd that ends AcceptLoop
  Handoff handoff_;
  std::thread thread_;
  bool stopped_ = false;

  absl::Mutex mu_;
  std::vector<OpenConnection> open_ ABSL_GUARDED_BY(mu_);
  absl::Time last_recount_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::flat_hash_map<Source, absl::Time> barred_until_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_at_cap_{0};
  std::atomic<uint64_t> descriptor_pauses_{0};
  std::atomic<uint64_t> closed_and_barred_{0};
  std::atomic<uint64_t> refused_barred_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_NET_CONNECTION_LISTENER_H_
