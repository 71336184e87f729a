// StreamResetGuard: ends the connections whose client resets streams faster
// than any real client does: HTTP/2 "rapid reset" (CVE-2023-44487).
//
// A client that opens a stream and resets it at once costs the server the
// stream's setup and teardown (about 110 us of CPU here) and frees its slot
// under SETTINGS_MAX_CONCURRENT_STREAMS at once, so one connection can keep
// the server busy and its memory growing without ever holding more streams
// than it may. Later gRPC releases bound this inside the transport;
// Debian's gRPC 1.51 has no fix and no setting, and the application never
// sees such a stream. So zpaged watches each connection's failed streams
// through channelz (channelz_connections.h) and acts where it owns the
// connections: the listener.
//
// Rule. Each connection has a budget of max_resets_per_second, refilled
// continuously at that rate and holding at most one second's worth. Every
// stream the connection's client resets or cancels before the server
// answers spends one. A connection that overspends is shut down, and new
// connections from its source (its IPv4 address, or its IPv6 /64) are closed
// on arrival for `bar`, so reconnecting does not buy a fresh budget.
// Connections already open from that source go on.
//
// Why that is safe for real clients: a connection has at most
// --max_streams_per_connection (128) calls open, and a real client cancels
// a call when its deadline passes or its caller gives up. To spend 1,000 in
// a second it would have to cancel every call it could have open eight times
// a second.
//
// Cost. Every check_interval the guard reads one count for all connections
// together (ServerCallsFailed); only when that count has grown by more than
// the smallest budget left could any connection have overspent, and only
// then does it read each connection's own count. A quiet server pays one
// small JSON answer every 100 ms. An attacking connection is seen within a
// check_interval of overspending, so it gets through at most its budget plus
// what it can send in one interval.
//
// TCP only: channelz names no peer for a unix-socket connection, so those
// (local processes, trusted as the socket's permissions say) are not
// judged.

#ifndef ZPAGED_SERVER_NET_STREAM_RESET_GUARD_H_
#define ZPAGED_SERVER_NET_STREAM_RESET_GUARD_H_

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/net/channelz_connections.h"
#include "server/net/connection_listener.h"

namespace zpaged {

struct StreamResetGuardOptions {
  // Streams a connection's client may reset or cancel a second, and at once.
  // 0: no limit, and no guard.
  uint32_t max_resets_per_second = 1000;
  // How long the source of a connection that went over is refused.
  absl::Duration bar = absl::Seconds(10);
  absl::Duration check_interval = absl::Milliseconds(100);
};

// The budgets of the rule above, without gRPC or a clock: what the guard
// decides from what it reads.
class ResetBudgets {
 public:
  explicit ResetBudgets(uint32_t per_second);

  // `connections` are all the connections open at `now`, each with its
  // failed streams so far. Returns the ones over budget, each once for its
  // lifetime; forgets connections no longer listed.
  std::vector<ConnectionStreams> Overspent(
      const std::vector<ConnectionStreams>& connections, absl::Time now);

  // The fewest resets any connection could make before it overspends (a
  // connection not seen yet has a full budget).
  double least_left() const { return least_left_; }

 private:
  struct Budget {
    int64_t failed;  // the connection's count when last seen
    double left;
    absl::Time at;
    bool overspent;
  };
  const double per_second_;
  absl::flat_hash_map<int64_t, Budget> budgets_;  // by channelz socket id
  double least_left_;
};

class StreamResetGuard {
 public:
  // Starts checking at once (no thread when the limit is 0). `listener`
  // outlives the guard.
  StreamResetGuard(const StreamResetGuardOptions& options,
                   ConnectionListener* listener);
  // Stops the checking thread.
  ~StreamResetGuard();

  StreamResetGuard(const StreamResetGuard&) = delete;
  StreamResetGuard& operator=(const StreamResetGuard&) = delete;

 private:
  void Check();

  const StreamResetGuardOptions options_;
  ConnectionListener* const listener_;
  // Used by the checking thread alone.
  ResetBudgets budgets_;
  int64_t failed_at_last_read_ = 0;
  absl::Time last_read_ = absl::InfinitePast();

  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_NET_STREAM_RESET_GUARD_H_
