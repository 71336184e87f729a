// Flags from the environment, for containers: ZPAGED_<FLAG> sets --<flag>.

#ifndef ZPAGED_SERVER_CONFIG_ENV_FLAGS_H_
#define ZPAGED_SERVER_CONFIG_ENV_FLAGS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zpaged {

// For every flag defined in a file whose path ends in `defining_file`, sets
// it from the environment variable ZPAGED_<NAME IN UPPER CASE> if that is set.
// Call before parsing the command line, so that the command line wins.
// INVALID_ARGUMENT naming the variable if a value does not parse.
absl::Status ApplyFlagsFromEnvironment(absl::string_view defining_file);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CONFIG_ENV_FLAGS_H_
