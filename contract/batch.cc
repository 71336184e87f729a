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

absl::Status ValidateEncodedBatch(int keys, int encodings,
                                  absl::Span<const uint32_t> sizes,
                                  size_t pages_bytes) {
  if (encodings != keys || sizes.size() != static_cast<size_t>(keys)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "an encoded batch names one encoding and one size per "
        "key: ",
        keys, " keys, ", encodings, " encodings, ", sizes.size(), " sizes"));
  }
  uint64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > kPageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("page ", i, " is ", sizes[i], " bytes; no encoded page ",
                       "is more than ", kPageSize));
    }
    total += sizes[i];
  }
  if (total != pages_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the sizes add up to ", total, " bytes; pages is ", pages_bytes));
  }
  return absl::OkStatus();
}

}  // namespace zpaged
