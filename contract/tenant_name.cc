#include "contract/tenant_name.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace zpaged {

absl::Status ValidateTenantName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("tenant name is empty");
  if (name.size() > kMaxTenantNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant name is ", name.size(), " bytes; at most ",
                     kMaxTenantNameBytes, " are allowed"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          "tenant name may hold only [A-Za-z0-9._-]; byte 0x",
          absl::Hex(static_cast<unsigned char>(c)), " is not allowed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace zpaged
