#include "server/store/fair_share.h"

#include <algorithm>

namespace zpaged {

uint64_t ShareOf(uint64_t target_bytes, absl::Span<const ShareClaim> claims) {
  const uint64_t holders =
      std::count_if(claims.begin(), claims.end(),
                    [](const ShareClaim& c) { return c.holds_pages; });
  return holders == 0 ? target_bytes : target_bytes / holders;
}

std::vector<size_t> AboveShare(uint64_t target_bytes,
                               absl::Span<const ShareClaim> claims) {
  const uint64_t share = ShareOf(target_bytes, claims);
  std::vector<size_t> above;
  for (size_t i = 0; i < claims.size(); ++i) {
    if (claims[i].holds_pages && claims[i].used_bytes > share) {
      above.push_back(i);
    }
  }
  std::stable_sort(above.begin(), above.end(), [&](size_t a, size_t b) {
    return claims[a].used_bytes > claims[b].used_bytes;
  });
  return above;
}

}  // namespace zpaged
