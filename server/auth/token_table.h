// TokenTable: which bearer token may use which tenants.
//
// The file format, one grant a line:
//
//   # comment
//   TOKEN TENANT[,TENANT...]
//
// Tokens are compared in constant time, against every entry, so the time a
// lookup takes does not tell how much of a guess was right. Tokens never
// appear in error messages.

#ifndef ZPAGED_SERVER_AUTH_TOKEN_TABLE_H_
#define ZPAGED_SERVER_AUTH_TOKEN_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace zpaged {

class TokenTable {
 public:
  // Parses the file's contents. INVALID_ARGUMENT naming the line (never the
  // token) for a line without tenants, a bad tenant name, or a token given
  // twice.
  static absl::StatusOr<TokenTable> Parse(absl::string_view contents);

  // Reads and parses `path`; NOT_FOUND if it cannot be read.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The tenants `token` may use; null if it is not a known token.
  const std::vector<std::string>* TenantsOf(absl::string_view token) const;

  size_t size() const { return grants_.size(); }

 private:
  struct Grant {
    std::string token;
    std::vector<std::string> tenants;
  };
  std::vector<Grant> grants_;
};

// True if `a` and `b` are equal, taking time that depends only on their
// lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_AUTH_TOKEN_TABLE_H_
