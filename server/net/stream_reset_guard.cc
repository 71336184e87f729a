#include "server/net/stream_reset_guard.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace zpaged {

ResetBudgets::ResetBudgets(uint32_t per_second)
    : per_second_(per_second), least_left_(per_second) {}

std::vector<ConnectionStreams> ResetBudgets::Overspent(
    const std::vector<ConnectionStreams>& connections, absl::Time now) {
  std::vector<ConnectionStreams> overspent;
  absl::flat_hash_set<int64_t> listed;
  least_left_ = per_second_;
  for (const ConnectionStreams& c : connections) {
    listed.insert(c.socket_id);
    // A connection first seen has spent what failed before it was seen.
    auto [it, first_seen] = budgets_.try_emplace(
        c.socket_id,
        Budget{
            .failed = 0, .left = per_second_, .at = now, .overspent = false});
    Budget& budget = it->second;
    const double refill =
        per_second_ * std::max(0.0, absl::ToDoubleSeconds(now - budget.at));
    budget.left = std::min(per_second_, budget.left + refill) -
                  static_cast<double>(c.streams_failed - budget.failed);
    budget.failed = c.streams_failed;
    budget.at = now;
    if (budget.left < 0 && !budget.overspent) {
      budget.overspent = true;
      overspent.push_back(c);
    }
    if (!budget.overspent) least_left_ = std::min(least_left_, budget.left);
  }
  absl::erase_if(budgets_, [&listed](const auto& entry) {
    return !listed.contains(entry.first);
  });
  return overspent;
}

StreamResetGuard::StreamResetGuard(const StreamResetGuardOptions& options,
                                   ConnectionListener* listener)
    : options_(options),
      listener_(listener),
      budgets_(options.max_resets_per_second) {
  if (options_.max_resets_per_second == 0) return;
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(options_.check_interval)) {
      Check();
    }
  });
}

StreamResetGuard::~StreamResetGuard() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void StreamResetGuard::Check() {
  const int64_t failed = ServerCallsFailed();
  const absl::Time now = absl::Now();
  const int64_t since = failed - failed_at_last_read_;
  if (since < 0) {  // another server of the process went, with its count
    failed_at_last_read_ = failed;
    return;
  }
  // No connection can have overspent by more streams than failed on every
  // connection together; the second-long fallback keeps the guard right
  // should gRPC ever count a connection's failed stream but not its call.
  if (since <= 0 ||
      (since <= budgets_.least_left() && now - last_read_ < absl::Seconds(1))) {
    return;
  }
  failed_at_last_read_ = failed;
  last_read_ = now;
  for (const ConnectionStreams& c :
       budgets_.Overspent(ServerConnections(), now)) {
    // A connection of another server in this process is not ours to close.
    if (!listener_->CloseAndBar(c.peer, options_.bar)) continue;
    std::fprintf(
        stderr,
        "zpaged: closed the connection from %s: its client reset or cancelled "
        "streams faster than --max_stream_resets_per_second=%u allows (%lld "
        "so far); new connections from its address are refused for %s\n",
        c.peer.ToString().c_str(), options_.max_resets_per_second,
        static_cast<long long>(c.streams_failed),
        absl::FormatDuration(options_.bar).c_str());
  }
}

}  // namespace zpaged
