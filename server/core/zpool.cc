#include "server/core/zpool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/dense_pool.h"
#include "server/core/zbud_pool.h"

namespace zpaged {

absl::Status ValidateZpoolDriver(absl::string_view driver) {
  for (absl::string_view known : kZpoolDrivers) {
    if (driver == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("no pool driver named '", driver,
                   "' (known: ", absl::StrJoin(kZpoolDrivers, ", "), ")"));
}

absl::StatusOr<std::unique_ptr<Zpool>> CreateZpool(absl::string_view driver,
                                                   ZpoolOptions options) {
  if (absl::Status valid = ValidateArenaOptions(options.arena); !valid.ok()) {
    return valid;
  }
  if (driver == "zbud") return std::make_unique<ZbudPool>(std::move(options));
  if (driver == "dense") {
    return std::make_unique<DensePool>(std::move(options));
  }
  return absl::NotFoundError(ValidateZpoolDriver(driver).message());
}

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
