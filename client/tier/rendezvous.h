// Rendezvous (highest-random-weight) placement of page groups on the
// members of a tier, by member name.
//
// Every (tenant, group) ranks every member by a score drawn from a hash of
// the three; the group's copies go to the top R, and a copy that cannot be
// stored on one goes to the next in rank. A member joining takes from each
// group only what it outranks, and a member leaving gives up only its own
// places, so a change of one member among N moves about 1/N of the groups'
// copies, and nothing else. A member's weight (its memory, say) scales its
// share: with weights w_i, member i is first for a group with probability
// w_i / sum(w).
//
// The hash is fixed here (FNV-1a over the names, a SplitMix64 finalizer
// over the group), not the standard library's or Abseil's: clients on
// other hosts, other builds and after restarts must rank alike, or a
// restarted bridge would look for its pages on the wrong servers.

#ifndef ZPAGED_CLIENT_TIER_RENDEZVOUS_H_
#define ZPAGED_CLIENT_TIER_RENDEZVOUS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace zpaged {

struct RankedMember {
  std::string name;     // the server's --node_name
  double weight = 1.0;  // > 0
};

// The members' indexes, best first, for (tenant, group). Deterministic in
// its inputs; the members' order does not matter.
std::vector<size_t> RankMembers(absl::Span<const RankedMember> members,
                                absl::string_view tenant, uint64_t group);

// The score of `member` for (tenant, group): the higher, the earlier it
// ranks. Exposed for tests and for callers that rank a subset.
double RendezvousScore(const RankedMember& member, absl::string_view tenant,
                       uint64_t group);

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_TIER_RENDEZVOUS_H_
