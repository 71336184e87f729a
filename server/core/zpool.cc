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

}  // namespace zpaged
