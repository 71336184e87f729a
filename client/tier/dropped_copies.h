// DroppedCopies: the copies a tier let its members evict because another
// member held the same page, remembered for a while so that nothing counts
// them as held meanwhile. Until its server has read the ack, a member still
// answers for a copy it evicts; and a repair that read the holders of a key
// before the ack may still be choosing which copies are extra. Were the
// dropped copy counted as held by either, two members evicting one page
// could each let it go on the strength of the other's copy, and a repair
// could delete the last copy as an extra.
//
// A record is a 64-bit fingerprint of (tenant, key, member): a collision
// only makes a copy look dropped when it is not, which sends an evicted page
// to the caller's callback (the safe way) or keeps an extra copy.
//
// Not thread-safe: the tier guards it with the lock that orders evictions
// and repairs.

#ifndef ZPAGED_CLIENT_TIER_DROPPED_COPIES_H_
#define ZPAGED_CLIENT_TIER_DROPPED_COPIES_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zpaged {

class DroppedCopies {
 public:
  // Records are kept `keep` long, and at most `max_records` of them (the
  // oldest go first): far longer and more than an ack takes to arrive or a
  // repair call to run.
  explicit DroppedCopies(absl::Duration keep = absl::Minutes(2),
                         size_t max_records = size_t{1} << 18);

  void Add(absl::string_view tenant, uint64_t key, absl::string_view member,
           absl::Time now);
  bool Contains(absl::string_view tenant, uint64_t key,
                absl::string_view member, absl::Time now);
  // The member stored the key again (a repair): its new copy is held. A
  // server reading the old copy's ack leaves a copy stored since alone.
  void Remove(absl::string_view tenant, uint64_t key, absl::string_view member);

  size_t size() const { return order_.size(); }

 private:
  static uint64_t Fingerprint(absl::string_view tenant, uint64_t key,
                              absl::string_view member);
  void Expire(absl::Time now);

  const absl::Duration keep_;
  const size_t max_records_;
  std::deque<std::pair<absl::Time, uint64_t>> order_;  // oldest first
  absl::flat_hash_map<uint64_t, absl::Time> latest_;   // fingerprint -> added
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_TIER_DROPPED_COPIES_H_
