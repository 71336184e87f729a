#include "server/core/zpool.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/zbud_pool.h"

namespace zpaged {

absl::StatusOr<std::unique_ptr<Zpool>> CreateZpool(absl::string_view driver,
                                                   ZpoolOptions options) {
  if (absl::Status valid = ValidateArenaOptions(options.arena); !valid.ok()) {
    return valid;
  }
  if (driver == "zbud") return std::make_unique<ZbudPool>(std::move(options));
  return absl::NotFoundError(
      absl::StrCat("no zpool driver named '", driver, "' (known: zbud)"));
}

}  // namespace zpaged
