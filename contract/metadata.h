// The call metadata keys zpaged's server and clients agree on.

#ifndef ZPAGED_CONTRACT_METADATA_H_
#define ZPAGED_CONTRACT_METADATA_H_

namespace zpaged {

// Request metadata: "Bearer TOKEN", checked against --auth_tokens_file.
inline constexpr char kAuthorizationMetadata[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";

// Initial metadata the server sends on a WatchEvictions stream once it is
// subscribed and ready for pages; its value is the tenant. Clients wait for
// it before they count on evictions reaching them.
inline constexpr char kSubscribedMetadata[] = "zpaged-subscribed";

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_METADATA_H_
