#include "contract/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

// `kind` names what the name is for ("tenant name") in the message.
absl::Status ValidateName(absl::string_view kind, absl::string_view name) {
  if (name.empty())
    return absl::InvalidArgumentError(absl::StrCat(kind, " is empty"));
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " is ", name.size(), " bytes; at most ",
                     kMaxNameBytes, " are allowed"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(absl::StrCat(
          kind, " may hold only [A-Za-z0-9._-]; byte 0x",
          absl::Hex(static_cast<unsigned char>(c)), " is not allowed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTenantName(absl::string_view name) {
  return ValidateName("tenant name", name);
}

absl::Status ValidateNodeName(absl::string_view name) {
  return ValidateName("node name", name);
}

}  // namespace zpaged
