#include "server/core/testing/zpool_shrink.h"

#include "absl/strings/str_cat.h"

namespace zpaged {

absl::Status ReclaimOneFrame(Zpool& pool, uint32_t retries,
                             EvictFunction evict) {
  if (retries == 0) {
    return absl::InvalidArgumentError("reclaim needs at least one retry");
  }
  for (uint32_t attempt = 0; attempt < retries; ++attempt) {
    absl::StatusOr<FrameReclaim> reclaim = pool.StartReclaim();
    if (!reclaim.ok()) return reclaim.status();
    // What a refusal says is the callback's business; the frame only needs
    // to know whether it emptied.
    for (ZpoolHandle handle : reclaim->handles) {
      if (!evict(handle).ok()) break;
    }
    if (pool.EndReclaim(*reclaim)) return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("no frame could be reclaimed in ",
                                         retries, " tries along the LRU"));
}

uint32_t Shrink(Zpool& pool, uint32_t frames, EvictFunction evict,
                uint32_t retries) {
  uint32_t reclaimed = 0;
  while (reclaimed < frames && ReclaimOneFrame(pool, retries, evict).ok()) {
    ++reclaimed;
  }
  return reclaimed;
}

}  // namespace zpaged
