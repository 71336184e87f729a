// Fair share: who gives memory back when the server is at its limit.
//
// The server's memory is divided evenly among the tenants that hold pages:
// a tenant's share is the target divided by their number. Room for a Put
// is made by evicting from the tenants furthest above their share, so a
// tenant that stays within its share is never evicted for another's
// benefit, and one busy tenant cannot keep every other out. This unit is
// the rule alone, on numbers; the Reclaimer applies it to tenants.

#ifndef ZPAGED_SERVER_STORE_FAIR_SHARE_H_
#define ZPAGED_SERVER_STORE_FAIR_SHARE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace zpaged {

// One tenant's claim on the server's memory.
struct ShareClaim {
  uint64_t used_bytes = 0;
  bool holds_pages = false;  // only tenants that hold pages have a share
};

// Each holder's share of `target_bytes`: `target_bytes` over the number of
// holders; all of it with none.
uint64_t ShareOf(uint64_t target_bytes, absl::Span<const ShareClaim> claims);

// The indexes into `claims` of the holders above their share of
// `target_bytes`, furthest above first (ties: the lower index first).
std::vector<size_t> AboveShare(uint64_t target_bytes,
                               absl::Span<const ShareClaim> claims);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_FAIR_SHARE_H_
