// The whole-call rules of PutBatch and GetBatch.

#ifndef ZPAGED_CONTRACT_BATCH_H_
#define ZPAGED_CONTRACT_BATCH_H_

#include <cstddef>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace zpaged {

// OK when `tenant` is a valid tenant name, there are 1 to kMaxBatchPages
// keys, and (for a PutBatch, which passes `pages_bytes`) the pages are
// exactly keys x kPageSize bytes; otherwise INVALID_ARGUMENT saying which.
absl::Status ValidateBatch(absl::string_view tenant, int keys,
                           std::optional<size_t> pages_bytes);

// The layout of a PutBatch of pages its client encoded: OK when there is
// one encoding and one size per key, no size above kPageSize (no encoding
// makes a page larger), and the sizes add up to `pages_bytes`; otherwise
// INVALID_ARGUMENT saying which.
absl::Status ValidateEncodedBatch(int keys, int encodings,
                                  absl::Span<const uint32_t> sizes,
                                  size_t pages_bytes);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_BATCH_H_
