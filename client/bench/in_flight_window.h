// InFlightWindow: the operations sent on one pipelined connection and not
// yet answered, oldest first. Pipelines answer in order, so the oldest is
// the one the next reply belongs to.

#ifndef ZPAGED_CLIENT_BENCH_IN_FLIGHT_WINDOW_H_
#define ZPAGED_CLIENT_BENCH_IN_FLIGHT_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "client/bench/channel_load.h"

namespace zpaged::bench {

class InFlightWindow {
 public:
  struct Item {
    uint64_t key;
    Clock::time_point sent;
  };

  // Requires depth >= 1.
  explicit InFlightWindow(int depth) : items_(depth) {}

  bool full() const { return size_ == items_.size(); }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // Records `key` as sent now. Requires !full().
  void Push(uint64_t key) {
    items_[(oldest_ + size_) % items_.size()] = {key, Clock::now()};
    ++size_;
  }

  // Removes and returns the oldest item. Requires !empty().
  Item Pop() {
    const Item item = items_[oldest_];
    oldest_ = (oldest_ + 1) % items_.size();
    --size_;
    return item;
  }

 private:
  std::vector<Item> items_;
  size_t oldest_ = 0;
  size_t size_ = 0;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_IN_FLIGHT_WINDOW_H_
