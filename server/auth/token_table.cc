#include "server/auth/token_table.h"

#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "contract/names.h"

namespace zpaged {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference = difference | (static_cast<unsigned char>(a[i]) ^
                               static_cast<unsigned char>(b[i]));
  }
  return difference == 0;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view contents) {
  TokenTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": expected 'TOKEN TENANT[,TENANT...]'"));
    }
    Grant grant{std::string(fields[0]), {}};
    for (absl::string_view tenant : absl::StrSplit(fields[1], ',')) {
      if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, ": ", valid.message()));
      }
      grant.tenants.emplace_back(tenant);
    }
    if (table.TenantsOf(grant.token) != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": this token was already given a line"));
    }
    table.grants_.push_back(std::move(grant));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  const std::string contents((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  absl::StatusOr<TokenTable> table = Parse(contents);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

const std::vector<std::string>* TokenTable::TenantsOf(
    absl::string_view token) const {
  // Every entry is compared, match or not, so that the time taken does not
  // depend on where (or whether) the token is found.
  const std::vector<std::string>* found = nullptr;
  for (const Grant& grant : grants_) {
    if (ConstantTimeEquals(grant.token, token) && found == nullptr) {
      found = &grant.tenants;
    }
  }
  return found;
}

}  // namespace zpaged
