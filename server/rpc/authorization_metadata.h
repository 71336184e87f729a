// The bearer token a call carries, as its "authorization" metadata.

#ifndef ZPAGED_SERVER_RPC_AUTHORIZATION_METADATA_H_
#define ZPAGED_SERVER_RPC_AUTHORIZATION_METADATA_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "contract/metadata.h"
#include "grpcpp/server_context.h"

namespace zpaged {

// The value of a call's "authorization" metadata, if it has one. Points into
// the call's metadata: valid while the call is.
inline std::optional<absl::string_view> AuthorizationOf(
    const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kAuthorizationMetadata);
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_AUTHORIZATION_METADATA_H_
