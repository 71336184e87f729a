#include "server/auth/authorizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "contract/metadata.h"

namespace zpaged {

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromFile(
    const std::string& path) {
  std::unique_ptr<Authorizer> authorizer(new Authorizer(path));
  absl::StatusOr<size_t> loaded = authorizer->Reload();
  if (!loaded.ok()) return loaded.status();
  return authorizer;
}

absl::StatusOr<size_t> Authorizer::Reload() {
  absl::StatusOr<TokenTable> table = TokenTable::Load(path_);
  if (!table.ok()) return table.status();
  const size_t size = table->size();
  auto fresh = std::make_shared<const TokenTable>(*std::move(table));
  MutexLock lock(&mu_);
  table_ = std::move(fresh);
  return size;
}

std::shared_ptr<const TokenTable> Authorizer::table() const {
  MutexLock lock(&mu_);
  return table_;
}

absl::StatusOr<const std::vector<std::string>*> Authorizer::Grant(
    std::optional<absl::string_view> authorization, const TokenTable& table) {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this server needs 'authorization: Bearer TOKEN' metadata");
  }
  if (!absl::StartsWithIgnoreCase(*authorization, kBearerPrefix)) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be 'Bearer TOKEN'");
  }
  const absl::string_view token = absl::StripAsciiWhitespace(
      authorization->substr(absl::string_view(kBearerPrefix).size()));
  const std::vector<std::string>* tenants = table.TenantsOf(token);
  if (tenants == nullptr) {
    return absl::UnauthenticatedError("unknown token");
  }
  return tenants;
}

absl::StatusOr<std::optional<std::vector<std::string>>> Authorizer::TenantsOf(
    std::optional<absl::string_view> authorization) const {
  if (!enabled()) return std::optional<std::vector<std::string>>();
  const std::shared_ptr<const TokenTable> snapshot = table();
  absl::StatusOr<const std::vector<std::string>*> tenants =
      Grant(authorization, *snapshot);
  if (!tenants.ok()) return tenants.status();
  return std::optional<std::vector<std::string>>(**tenants);
}

absl::Status Authorizer::Check(std::optional<absl::string_view> authorization,
                               absl::string_view tenant) const {
  if (!enabled()) return absl::OkStatus();
  // Every call of an authenticated server passes here, stream items
  // included, so the granted list is searched in place, not copied.
  const std::shared_ptr<const TokenTable> snapshot = table();
  absl::StatusOr<const std::vector<std::string>*> allowed =
      Grant(authorization, *snapshot);
  if (!allowed.ok()) return allowed.status();
  if (std::find((*allowed)->begin(), (*allowed)->end(), tenant) ==
      (*allowed)->end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("this token may not use tenant '", tenant, "'"));
  }
  return absl::OkStatus();
}

}  // namespace zpaged
