#include "contract/batch.h"

#include "absl/strings/str_cat.h"
#include "contract/names.h"
#include "contract/page.h"

namespace zpaged {

absl::Status ValidateBatch(absl::string_view tenant, int keys,
                           std::optional<size_t> pages_bytes) {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  if (keys < 1 || keys > kMaxBatchPages) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch names 1 to ", kMaxBatchPages, " keys, not ", keys));
  }
  if (pages_bytes.has_value() && *pages_bytes != keys * kPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("pages is ", *pages_bytes, " bytes; ", keys,
                     " keys need exactly ", keys * kPageSize));
  }
  return absl::OkStatus();
}

}  // namespace zpaged
