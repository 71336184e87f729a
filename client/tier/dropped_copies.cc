#include "client/tier/dropped_copies.h"

#include <tuple>

#include "absl/hash/hash.h"

namespace zpaged {

DroppedCopies::DroppedCopies(absl::Duration keep, size_t max_records)
    : keep_(keep), max_records_(max_records) {}

uint64_t DroppedCopies::Fingerprint(absl::string_view tenant, uint64_t key,
                                    absl::string_view member) {
  return absl::Hash<
      std::tuple<absl::string_view, uint64_t, absl::string_view>>{}(
      std::make_tuple(tenant, key, member));
}

void DroppedCopies::Expire(absl::Time now) {
  while (!order_.empty() &&
         (order_.size() > max_records_ || now - order_.front().first > keep_)) {
    // A copy dropped again since keeps its later record.
    auto it = latest_.find(order_.front().second);
    if (it != latest_.end() && it->second == order_.front().first) {
      latest_.erase(it);
    }
    order_.pop_front();
  }
}

void DroppedCopies::Add(absl::string_view tenant, uint64_t key,
                        absl::string_view member, absl::Time now) {
  const uint64_t fingerprint = Fingerprint(tenant, key, member);
  order_.emplace_back(now, fingerprint);
  latest_[fingerprint] = now;
  Expire(now);
}

void DroppedCopies::Remove(absl::string_view tenant, uint64_t key,
                           absl::string_view member) {
  latest_.erase(Fingerprint(tenant, key, member));
}

bool DroppedCopies::Contains(absl::string_view tenant, uint64_t key,
                             absl::string_view member, absl::Time now) {
  Expire(now);
  return latest_.contains(Fingerprint(tenant, key, member));
}

}  // namespace zpaged
