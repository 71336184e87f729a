// StuckWatcher: an eviction watcher that takes pages and never acks them,
// as a stuck or hostile client does, for the tests of what the server does
// about one. Its callback blocks on the first page it is given (the server
// still sends it more, which stay unacked); destroying it lets the callback
// go and ends the subscription.
//
//   absl::StatusOr<std::unique_ptr<StuckWatcher>> stuck =
//       StuckWatcher::Start(*client, "vm");

#ifndef ZPAGED_TESTS_TESTING_STUCK_WATCHER_H_
#define ZPAGED_TESTS_TESTING_STUCK_WATCHER_H_

#include <atomic>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "client/lib/page_client.h"

namespace zpaged {

class StuckWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<StuckWatcher>> Start(
      PageClient& client, absl::string_view tenant) {
    std::unique_ptr<StuckWatcher> stuck(new StuckWatcher);
    StuckWatcher* self = stuck.get();
    absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
        client.Watch(tenant, [self](uint64_t, absl::string_view) {
          self->offered_++;
          self->release_.WaitForNotification();
          return false;
        });
    if (!watcher.ok()) return watcher.status();
    stuck->watcher_ = *std::move(watcher);
    return stuck;
  }
  ~StuckWatcher() {
    release_.Notify();
    watcher_->Stop();
  }

  // Pages its callback was given: the first one, which it still holds.
  int offered() const { return offered_.load(); }

 private:
  StuckWatcher() = default;

  absl::Notification release_;
  std::atomic<int> offered_{0};
  std::unique_ptr<EvictionWatcher> watcher_;
};

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_STUCK_WATCHER_H_
