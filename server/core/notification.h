// Notification: a one-shot event that threads wait for, on zpaged's own
// Mutex. absl::Notification would do, but Debian's Abseil is not built with
// ThreadSanitizer, which then cannot see the order a notification gives and
// reports the data it hands over as a race (see mutex.h).

#ifndef ZPAGED_SERVER_CORE_NOTIFICATION_H_
#define ZPAGED_SERVER_CORE_NOTIFICATION_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/mutex.h"

namespace zpaged {

class Notification {
 public:
  Notification() = default;
  Notification(const Notification&) = delete;
  Notification& operator=(const Notification&) = delete;

  // Wakes every waiter, now and later. At most once.
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    changed_.SignalAll();
  }

  // Returns once Notify has been called; everything the notifying thread
  // did before Notify is visible after it.
  void WaitForNotification() {
    MutexLock lock(&mu_);
    while (!notified_) changed_.Wait(&mu_);
  }

  // As WaitForNotification, giving up at `deadline`; true if notified.
  bool WaitForNotificationWithDeadline(absl::Time deadline) {
    MutexLock lock(&mu_);
    while (!notified_) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      changed_.WaitWithTimeout(&mu_, left);
    }
    return true;
  }

  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }

 private:
  Mutex mu_;
  CondVar changed_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_NOTIFICATION_H_
