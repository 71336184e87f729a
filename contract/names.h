// The rule for the names clients and servers exchange: tenants, and the
// stable names of servers (nodes) that clients place pages by.

#ifndef ZPAGED_CONTRACT_NAMES_H_
#define ZPAGED_CONTRACT_NAMES_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zpaged {

inline constexpr size_t kMaxNameBytes = 128;
inline constexpr size_t kMaxTenantNameBytes = kMaxNameBytes;

// OK for 1 to 128 bytes of [A-Za-z0-9._-]; otherwise INVALID_ARGUMENT saying
// which rule the name breaks. Names are safe as metric labels and file names.
absl::Status ValidateTenantName(absl::string_view name);

// The same rule for a server's --node_name (a host name, a pod name such as
// zpaged-0), which clients hash to place pages and check on connecting.
absl::Status ValidateNodeName(absl::string_view name);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_NAMES_H_
