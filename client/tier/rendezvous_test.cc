#include "client/tier/rendezvous.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

std::vector<RankedMember> Members(std::vector<std::string> names) {
  std::vector<RankedMember> members;
  for (std::string& name : names) members.push_back({std::move(name), 1.0});
  return members;
}

// The names of the top `r` members for (tenant, group).
std::vector<std::string> Top(const std::vector<RankedMember>& members,
                             const std::string& tenant, uint64_t group,
                             size_t r) {
  std::vector<std::string> top;
  for (size_t i : RankMembers(members, tenant, group)) {
    if (top.size() == r) break;
    top.push_back(members[i].name);
  }
  return top;
}

constexpr uint64_t kGroups = 20000;

TEST(RendezvousTest, TheRankIsTheSameWhateverTheMembersOrder) {
  const std::vector<RankedMember> abc = Members({"a", "b", "c", "d"});
  const std::vector<RankedMember> dcba = Members({"d", "c", "b", "a"});
  for (uint64_t group = 0; group < 1000; ++group) {
    EXPECT_EQ(Top(abc, "vm", group, 4), Top(dcba, "vm", group, 4)) << group;
  }
}

// Clients on other hosts and builds must rank alike: these ranks are part of
// where pages are, and a change to the hash would strand every stored page.
TEST(RendezvousTest, RanksArePinned) {
  const std::vector<RankedMember> members =
      Members({"zpaged-0", "zpaged-1", "zpaged-2"});
  std::vector<std::string> firsts;
  for (uint64_t group = 0; group < 8; ++group) {
    firsts.push_back(Top(members, "vm-1", group, 1)[0]);
  }
  EXPECT_EQ(firsts, (std::vector<std::string>{
                        "zpaged-0", "zpaged-1", "zpaged-2", "zpaged-1",
                        "zpaged-2", "zpaged-1", "zpaged-1", "zpaged-0"}));
}

TEST(RendezvousTest, GroupsSpreadEvenly) {
  const std::vector<RankedMember> members = Members({"a", "b", "c"});
  std::map<std::string, int> first;
  for (uint64_t group = 0; group < kGroups; ++group) {
    first[Top(members, "vm", group, 1)[0]]++;
  }
  for (const auto& [name, count] : first) {
    EXPECT_NEAR(count, kGroups / 3.0, kGroups * 0.02) << name;
  }
}

TEST(RendezvousTest, TenantsArePlacedIndependently) {
  const std::vector<RankedMember> members = Members({"a", "b", "c"});
  int same = 0;
  for (uint64_t group = 0; group < kGroups; ++group) {
    same += Top(members, "vm-1", group, 1) == Top(members, "vm-2", group, 1);
  }
  EXPECT_NEAR(same, kGroups / 3.0, kGroups * 0.02);
}

// A fourth server takes about a quarter of the copies (R = 2), each from
// one of the three, and no copy moves between the three.
TEST(RendezvousTest, AJoiningMemberTakesAboutOneNthAndNothingElseMoves) {
  const std::vector<RankedMember> three = Members({"a", "b", "c"});
  const std::vector<RankedMember> four = Members({"a", "b", "c", "d"});
  int moved = 0;
  for (uint64_t group = 0; group < kGroups; ++group) {
    const std::vector<std::string> before = Top(three, "vm", group, 2);
    const std::vector<std::string> after = Top(four, "vm", group, 2);
    const std::set<std::string> was(before.begin(), before.end());
    for (const std::string& name : after) {
      if (was.count(name)) continue;
      EXPECT_EQ(name, "d") << group;  // only the new member gains copies
      ++moved;
    }
  }
  EXPECT_NEAR(moved, 2 * kGroups / 4.0, 2 * kGroups * 0.02);
}

// A member leaving gives up exactly its own copies, each to the next in
// rank; every other copy stays.
TEST(RendezvousTest, ALeavingMemberMovesOnlyItsOwnCopies) {
  const std::vector<RankedMember> four = Members({"a", "b", "c", "d"});
  const std::vector<RankedMember> three = Members({"a", "b", "d"});
  int moved = 0;
  for (uint64_t group = 0; group < kGroups; ++group) {
    const std::vector<std::string> before = Top(four, "vm", group, 2);
    const std::vector<std::string> after = Top(three, "vm", group, 2);
    const bool held = std::count(before.begin(), before.end(), "c") > 0;
    if (!held) {
      EXPECT_EQ(before, after) << group;
      continue;
    }
    ++moved;
    for (const std::string& name : before) {
      if (name != "c") {
        EXPECT_NE(std::find(after.begin(), after.end(), name), after.end());
      }
    }
    // The replacement is the old third in rank.
    EXPECT_EQ(
        std::count(after.begin(), after.end(), Top(four, "vm", group, 3)[2]), 1)
        << group;
  }
  EXPECT_NEAR(moved, 2 * kGroups / 4.0, 2 * kGroups * 0.02);
}

TEST(RendezvousTest, WeightsScaleTheShare) {
  std::vector<RankedMember> members = Members({"small", "big"});
  members[1].weight = 3.0;
  int big_first = 0;
  for (uint64_t group = 0; group < kGroups; ++group) {
    big_first += Top(members, "vm", group, 1)[0] == "big";
  }
  EXPECT_NEAR(big_first, kGroups * 0.75, kGroups * 0.02);
}

}  // namespace
}  // namespace zpaged
