// Authorizer: decides whether a call's bearer token may use a tenant.
//
// Built from --auth_tokens_file; with no file, authentication is off and
// every call may use every tenant. Reload (on SIGHUP) swaps in a new table
// atomically and keeps the old one if the file is bad, so a typo never locks
// every client out. Thread-safe.

#ifndef ZPAGED_SERVER_AUTH_AUTHORIZER_H_
#define ZPAGED_SERVER_AUTH_AUTHORIZER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/token_table.h"
#include "server/core/mutex.h"

namespace zpaged {

class Authorizer {
 public:
  // Authentication off.
  Authorizer() = default;

  // Loads `path`; the error of TokenTable::Load if it cannot.
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromFile(
      const std::string& path);

  bool enabled() const { return !path_.empty(); }

  // Reads the file again. On error the current table stays in force.
  // Returns the number of tokens loaded.
  absl::StatusOr<size_t> Reload();

  // OK if the `authorization` metadata value ("Bearer TOKEN") may use
  // `tenant`. UNAUTHENTICATED when the value is missing, malformed or names
  // no known token; PERMISSION_DENIED when the token does not list `tenant`.
  absl::Status Check(std::optional<absl::string_view> authorization,
                     absl::string_view tenant) const;

  // The tenants the caller may use: nullopt when authentication is off (all
  // of them); errors as Check.
  absl::StatusOr<std::optional<std::vector<std::string>>> TenantsOf(
      std::optional<absl::string_view> authorization) const;

 private:
  explicit Authorizer(std::string path) : path_(std::move(path)) {}
  std::shared_ptr<const TokenTable> table() const;
  // The tenants `table` grants to `authorization`; errors as Check.
  static absl::StatusOr<const std::vector<std::string>*> Grant(
      std::optional<absl::string_view> authorization, const TokenTable& table);

  const std::string path_;
  mutable Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_AUTH_AUTHORIZER_H_
