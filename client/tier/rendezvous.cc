#include "client/tier/rendezvous.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace zpaged {
namespace {

uint64_t Fnv1a(absl::string_view bytes, uint64_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;

}  // namespace

double RendezvousScore(const RankedMember& member, absl::string_view tenant,
                       uint64_t group) {
  // A 0 byte between the names: ("ab", "c") and ("a", "bc") differ.
  uint64_t h = Fnv1a(member.name, kFnvOffset);
  h = Fnv1a(absl::string_view("\0", 1), h);
  h = Fnv1a(tenant, h);
  h = SplitMix64(h ^ SplitMix64(group));
  // A uniform draw in (0, 1) from the top 53 bits; -w / ln(u) is the
  // weighted rendezvous score (larger wins, in proportion to w).
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
  return -member.weight / std::log(u);
}

std::vector<size_t> RankMembers(absl::Span<const RankedMember> members,
                                absl::string_view tenant, uint64_t group) {
  std::vector<double> scores(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    scores[i] = RendezvousScore(members[i], tenant, group);
  }
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  // Ties (equal scores: the same name twice) fall to the name, then the
  // index, so the order never depends on the sort.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    if (members[a].name != members[b].name) {
      return members[a].name < members[b].name;
    }
    return a < b;
  });
  return order;
}

}  // namespace zpaged
