#include "client/nbd/get_coalescer.h"

#include <utility>

namespace zpaged::nbd {

GetCoalescer::GetCoalescer(PageClient* client, std::string tenant)
    : client_(client), tenant_(std::move(tenant)) {}

absl::Status GetCoalescer::Fetch(absl::Span<const uint64_t> keys,
                                 absl::Span<uint8_t* const> outs,
                                 absl::Span<absl::Status> found) {
  Request mine{keys, outs, found};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&mine);
  while (!mine.done) {
    // A reader that finds a call free issues one for the whole queue, its
    // own request or not; then it wakes the readers it answered, and the
    // one heading the queue to issue the next call.
    if (calls_in_flight_ < kMaxCallsInFlight && !queue_.empty()) {
      const std::vector<Request*> batch = TakeQueued();
      ++calls_in_flight_;
      lock.unlock();
      Call(batch);
      lock.lock();
      --calls_in_flight_;
      for (Request* request : batch) {
        request->done = true;
        request->wake.notify_one();
      }
      if (!queue_.empty()) queue_.front()->wake.notify_one();
      continue;
    }
    mine.wake.wait(lock);
  }
  return mine.status;
}

std::vector<GetCoalescer::Request*> GetCoalescer::TakeQueued() {
  std::vector<Request*> batch;
  size_t keys = 0;
  while (!queue_.empty() &&
         (batch.empty() ||
          keys + queue_.front()->keys.size() <= kMaxKeysPerCall)) {
    keys += queue_.front()->keys.size();
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  return batch;
}

void GetCoalescer::Call(const std::vector<Request*>& requests) {
  std::vector<uint64_t> keys;
  std::vector<uint8_t*> outs;
  for (const Request* r : requests) {
    keys.insert(keys.end(), r->keys.begin(), r->keys.end());
    outs.insert(outs.end(), r->outs.begin(), r->outs.end());
  }
  absl::StatusOr<std::vector<absl::Status>> got =
      client_->GetMany(tenant_, keys, outs);
  size_t at = 0;
  for (Request* r : requests) {
    r->status = got.status();
    if (!got.ok()) continue;
    for (size_t i = 0; i < r->keys.size(); ++i, ++at) {
      r->found[i] = std::move((*got)[at]);
    }
  }
}

}  // namespace zpaged::nbd
