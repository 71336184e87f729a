// Where a tier's members come from while a client runs, and how a change
// reaches the TierClient.
//
//   servers=A,B,C           a fixed list (no source to follow)
//   servers=dns:HOST:PORT   the addresses HOST resolves to, re-resolved: a
//                           Kubernetes headless Service lists every pod
//   servers_file=PATH       one NAME=HOST:PORT (or HOST:PORT) a line, re-read:
//                           a ConfigMap, or what configuration management
//                           writes
//
// MemberReconciler applies a fresh list to a TierClient: an entry it has not
// seen is connected (ConnectMember: its name asked or checked) and added; a
// member whose entry is gone is removed. An entry that cannot be connected
// now is tried again on the next list. The caller repairs after a change
// (the bridge does when reachability_changes() moves).

#ifndef ZPAGED_CLIENT_TIER_MEMBER_SOURCE_H_
#define ZPAGED_CLIENT_TIER_MEMBER_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/lib/zpaged_client.h"
#include "client/tier/tier_client.h"

namespace zpaged {

// The entries of a members file: one a line, blank lines and # comments
// skipped, CR LF as LF. NOT_FOUND (or the errno's message) if it cannot be
// read; INVALID_ARGUMENT if it lists no member.
absl::StatusOr<std::vector<std::string>> ReadMembersFile(
    const std::string& path);

// "IP:PORT" for each address `host_port` ("HOST:PORT") resolves to, IPv6
// as [IP]:PORT, in a stable order. UNAVAILABLE if it resolves to nothing.
absl::StatusOr<std::vector<std::string>> ResolveMembers(
    const std::string& host_port);

class MemberReconciler {
 public:
  // `tier` must outlive the reconciler; `known` are the entries it was made
  // with (Connect's `servers`), by the names they got.
  MemberReconciler(TierClient* tier, ClientOptions client, TierOptions options,
                   std::map<std::string, std::string> known);

  // Brings the tier's members to `servers`. What changed, as a sentence for
  // a log ("" if nothing did); entries that could not be connected are said.
  std::string Reconcile(const std::vector<std::string>& servers);

 private:
  TierClient* const tier_;
  const ClientOptions client_;
  const TierOptions options_;
  std::map<std::string, std::string> known_;  // entry -> member name
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_TIER_MEMBER_SOURCE_H_
