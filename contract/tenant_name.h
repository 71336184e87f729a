// The rule for tenant names.

#ifndef ZPAGED_CONTRACT_TENANT_NAME_H_
#define ZPAGED_CONTRACT_TENANT_NAME_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zpaged {

inline constexpr size_t kMaxTenantNameBytes = 128;

// OK for 1 to 128 bytes of [A-Za-z0-9._-]; otherwise INVALID_ARGUMENT saying
// which rule the name breaks. Names are safe as metric labels and file names.
absl::Status ValidateTenantName(absl::string_view name);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_TENANT_NAME_H_
