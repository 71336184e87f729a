#include "client/bench/channel_load.h"

#include "absl/strings/str_cat.h"

namespace zpaged::bench {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kPut:
      return "put";
    case Phase::kGet:
      return "get";
    case Phase::kDelete:
      return "delete";
  }
  return "?";
}

ChannelLoad::ChannelLoad(const PageCorpus& corpus, Phase phase, int channel,
                         int channels, PhaseEnd end, uint64_t stored,
                         std::atomic<uint64_t>& completed)
    : corpus_(corpus),
      phase_(phase),
      channel_(channel),
      channels_(channels),
      end_(end),
      stored_(stored),
      completed_(completed) {}

bool ChannelLoad::NextKey(uint64_t* key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (end_.by_deadline() ? Clock::now() >= end_.deadline
                         : issued_ >= end_.operations) {
    return false;
  }
  uint64_t index = issued_++;
  if (phase_ != Phase::kPut) {
    if (stored_ == 0) return false;
    index %= stored_;
  }
  *key = channel_ + index * channels_;
  return true;
}

absl::string_view ChannelLoad::PageOf(uint64_t key) const {
  absl::Span<const uint8_t> page = corpus_.page(key % corpus_.size());
  return {reinterpret_cast<const char*>(page.data()), page.size()};
}

void ChannelLoad::Done(uint64_t key, Clock::time_point sent,
                       absl::string_view error, absl::string_view data) {
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent)
          .count();
  // Compare outside the lock: this is the only costly part.
  const bool mismatch =
      error.empty() && phase_ == Phase::kGet && data != PageOf(key);
  std::lock_guard<std::mutex> lock(mu_);
  ++answered_;
  histogram_.Record(static_cast<uint64_t>(nanos));
  if (!error.empty()) {
    if (errors_++ == 0) first_error_ = absl::StrCat("key ", key, ": ", error);
  } else if (mismatch) {
    if (mismatches_++ == 0 && first_error_.empty()) {
      first_error_ = absl::StrCat("key ", key, ": read back different bytes");
    }
  }
  completed_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t ChannelLoad::operations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return answered_;
}

uint64_t ChannelLoad::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

uint64_t ChannelLoad::mismatches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mismatches_;
}

std::string ChannelLoad::first_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

LatencyHistogram ChannelLoad::histogram() const {
  std::lock_guard<std::mutex> lock(mu_);
  return histogram_;
}

}  // namespace zpaged::bench
