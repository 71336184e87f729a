#include "client/tier/tier_client.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "contract/page.h"
#include "gtest/gtest.h"

namespace zpaged {
namespace {

// A member in memory whose faults the test sets: down (every call
// UNAVAILABLE, as a dead or cut-off server), hung (DEADLINE_EXCEEDED, as a
// stopped one past the call deadline) or full (Puts RESOURCE_EXHAUSTED).
class FakeMember final : public PageClient {
 public:
  enum class Fault { kNone, kDown, kHung, kFull };

  void set_fault(Fault fault) {
    std::lock_guard<std::mutex> lock(mu_);
    fault_ = fault;
  }
  bool Holds(const std::string& tenant, uint64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    return pages_.count({tenant, key}) > 0;
  }
  // Drops a copy, as an eviction or a restart without drain would.
  void Lose(const std::string& tenant, uint64_t key) {
    std::lock_guard<std::mutex> lock(mu_);
    pages_.erase({tenant, key});
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  // Pages that came encoded.
  int encoded_pages() {
    std::lock_guard<std::mutex> lock(mu_);
    return encoded_pages_;
  }
  // Hands `key`'s page to the watcher of `tenant`, if any, and drops it
  // once acked, as a server does when it reads the ack; with
  // ack_read = false the ack is still on its way, and the copy stays.
  bool Evict(const std::string& tenant, uint64_t key, bool ack_read = true) {
    EvictionCallback on_page;
    std::string page;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pages_.find({tenant, key});
      if (it == pages_.end() || !on_page_) return false;
      on_page = on_page_;
      page = it->second;
    }
    // As a client's watcher thread: no lock of the member held.
    if (!on_page(key, page)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    if (ack_read) pages_.erase({tenant, key});
    return true;
  }

  absl::StatusOr<PutReply> Put(absl::string_view, uint64_t,
                               absl::string_view) override {
    return absl::UnimplementedError("the tier uses PutMany");
  }
  absl::StatusOr<std::string> Get(absl::string_view, uint64_t) override {
    return absl::UnimplementedError("the tier uses GetMany");
  }
  absl::StatusOr<bool> Delete(absl::string_view, uint64_t) override {
    return absl::UnimplementedError("the tier uses DeleteMany");
  }
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> PutMany(
      absl::string_view tenant, absl::Span<const KeyedPage> pages) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (absl::Status down = CallFault(); !down.ok()) return down;
    std::vector<absl::StatusOr<PutReply>> results;
    for (const KeyedPage& p : pages) {
      // An encoded page is kept as a server keeps it: expanded on reads.
      std::string page(p.page);
      if (p.encoding.has_value()) {
        ++encoded_pages_;
        page.assign(kPageSize, '\0');
        if (!ExpandAtEdge(*p.encoding, p.page,
                          reinterpret_cast<uint8_t*>(page.data()))
                 .ok()) {
          page.clear();
        }
      }
      if (page.size() != kPageSize) {
        results.push_back(absl::InvalidArgumentError("not 4096 bytes"));
      } else if (fault_ == Fault::kFull) {
        results.push_back(absl::ResourceExhaustedError("full"));
      } else {
        pages_[{std::string(tenant), p.key}] = page;
        results.push_back(PutReply{p.encoding.value_or(PageEncoding::kRaw),
                                   static_cast<uint32_t>(p.page.size())});
      }
    }
    return results;
  }
  absl::StatusOr<std::vector<absl::Status>> GetMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys,
      absl::Span<uint8_t* const> outs) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (absl::Status down = CallFault(); !down.ok()) return down;
    std::vector<absl::Status> results;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = pages_.find({std::string(tenant), keys[i]});
      if (it == pages_.end()) {
        results.push_back(absl::NotFoundError("no page"));
        continue;
      }
      std::memcpy(outs[i], it->second.data(), kPageSize);
      results.push_back(absl::OkStatus());
    }
    return results;
  }
  absl::StatusOr<std::vector<bool>> DeleteMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (absl::Status down = CallFault(); !down.ok()) return down;
    std::vector<bool> existed;
    for (uint64_t key : keys) {
      existed.push_back(pages_.erase({std::string(tenant), key}) > 0);
    }
    return existed;
  }
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status down = CallFault(); !down.ok()) return down;
    uint64_t deleted = 0;
    for (auto it = pages_.begin(); it != pages_.end();) {
      if (it->first.first == tenant) {
        it = pages_.erase(it);
        ++deleted;
      } else {
        ++it;
      }
    }
    return deleted;
  }
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> Watch(
      absl::string_view, EvictionCallback on_page) override;
  absl::StatusOr<RepairResult> Repair(absl::string_view,
                                      absl::Span<const uint64_t>) override {
    return absl::UnimplementedError("a member is not repaired");
  }
  // Drops every copy, as a restart without a drain does.
  void LoseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    pages_.clear();
  }
  absl::StatusOr<bool> Serving() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status down = CallFault(); !down.ok()) return down;
    return true;
  }

 private:
  friend class FakeWatcher;

  absl::Status CallFault() const {
    if (fault_ == Fault::kDown)
      return absl::UnavailableError("connection refused");
    if (fault_ == Fault::kHung) return absl::DeadlineExceededError("deadline");
    return absl::OkStatus();
  }

  std::mutex mu_;
  Fault fault_ = Fault::kNone;
  int calls_ = 0;
  int encoded_pages_ = 0;
  std::map<std::pair<std::string, uint64_t>, std::string> pages_;
  EvictionCallback on_page_;
};

class FakeWatcher final : public EvictionWatcher {
 public:
  explicit FakeWatcher(FakeMember* member) : member_(member) {}
  ~FakeWatcher() override { Stop(); }
  void Stop() override {
    std::lock_guard<std::mutex> lock(member_->mu_);
    member_->on_page_ = nullptr;
  }
  absl::Status Wait() override { return absl::OkStatus(); }
  // A down member's stream has ended.
  bool WaitFor(absl::Duration) override {
    std::lock_guard<std::mutex> lock(member_->mu_);
    return member_->fault_ != FakeMember::Fault::kNone;
  }

 private:
  FakeMember* const member_;
};

absl::StatusOr<std::unique_ptr<EvictionWatcher>> FakeMember::Watch(
    absl::string_view, EvictionCallback on_page) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status down = CallFault(); !down.ok()) return down;
  on_page_ = std::move(on_page);
  return std::make_unique<FakeWatcher>(this);
}

std::string PageOf(uint64_t key) {
  std::string page(kPageSize, '\0');
  const std::string label = absl::StrCat("page ", key, ";");
  for (size_t i = 0; i < kPageSize; ++i) page[i] = label[i % label.size()];
  return page;
}

class TierClientTest : public ::testing::Test {
 protected:
  // A tier of `n` fake members named m0.., `replicas` copies; group_shift 0,
  // so that every key is its own group unless a test says otherwise.
  void Make(int n, int replicas, int group_shift = 0,
            EdgeCompressor compressor = EdgeCompressor::kNone) {
    std::vector<TierMember> members;
    fakes_.clear();
    for (int i = 0; i < n; ++i) {
      auto fake = std::make_unique<FakeMember>();
      fakes_.push_back(fake.get());
      members.push_back({absl::StrCat("m", i), std::move(fake), 1.0});
    }
    absl::StatusOr<std::unique_ptr<TierClient>> tier = TierClient::Create(
        std::move(members), TierOptions{.replicas = replicas,
                                        .group_shift = group_shift,
                                        .compression = {compressor}});
    ASSERT_TRUE(tier.ok()) << tier.status();
    tier_ = *std::move(tier);
  }
  // The fakes for `key` of "vm" in rank order.
  std::vector<FakeMember*> Ranked(uint64_t key) {
    std::vector<RankedMember> ranked;
    for (size_t i = 0; i < fakes_.size(); ++i) {
      ranked.push_back({absl::StrCat("m", i), 1.0});
    }
    std::vector<FakeMember*> out;
    for (size_t i : RankMembers(ranked, "vm", key)) out.push_back(fakes_[i]);
    return out;
  }
  std::string NameOf(const FakeMember* fake) const {
    for (size_t i = 0; i < fakes_.size(); ++i) {
      if (fakes_[i] == fake) return absl::StrCat("m", i);
    }
    return "";
  }
  int Holders(uint64_t key) {
    int n = 0;
    for (FakeMember* fake : fakes_) n += fake->Holds("vm", key);
    return n;
  }
  std::vector<absl::StatusOr<PutReply>> PutKeys(
      const std::vector<uint64_t>& keys) {
    pages_.clear();
    std::vector<KeyedPage> keyed;
    for (uint64_t key : keys) pages_.push_back(PageOf(key));
    for (size_t i = 0; i < keys.size(); ++i)
      keyed.push_back({keys[i], pages_[i]});
    absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
        tier_->PutMany("vm", keyed);
    EXPECT_TRUE(put.ok()) << put.status();
    return put.ok() ? *std::move(put) : std::vector<absl::StatusOr<PutReply>>();
  }

  std::vector<FakeMember*> fakes_;
  std::unique_ptr<TierClient> tier_;
  std::vector<std::string> pages_;
};

TEST_F(TierClientTest, APageIsEncodedOnceForAllItsCopies) {
  Make(3, 2, /*group_shift=*/0, EdgeCompressor::kLz4);
  std::vector<uint64_t> keys;
  // Labels of nine bytes: no page is one repeated 8-byte word.
  for (uint64_t key = 100; key < 164; ++key) keys.push_back(key);
  for (const absl::StatusOr<PutReply>& reply : PutKeys(keys)) {
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->encoding, PageEncoding::kLz4);
    EXPECT_LT(reply->stored_bytes, kPageSize / 4);
    EXPECT_EQ(reply->copies, 2u);
  }
  // Every copy reached its member encoded, and reads back whole.
  int encoded = 0;
  for (FakeMember* fake : fakes_) encoded += fake->encoded_pages();
  EXPECT_EQ(encoded, 2 * 64);
  for (uint64_t key : keys) EXPECT_EQ(*tier_->Get("vm", key), PageOf(key));
}

TEST_F(TierClientTest, EachPageGoesToTheFirstRInItsRank) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 200; ++key) keys.push_back(key);
  for (const absl::StatusOr<PutReply>& r : PutKeys(keys)) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->copies, 2u);
  }
  for (uint64_t key : keys) {
    const std::vector<FakeMember*> rank = Ranked(key);
    EXPECT_TRUE(rank[0]->Holds("vm", key)) << key;
    EXPECT_TRUE(rank[1]->Holds("vm", key)) << key;
    EXPECT_FALSE(rank[2]->Holds("vm", key)) << key;
    EXPECT_EQ(*tier_->Get("vm", key), PageOf(key));
  }
  EXPECT_EQ(tier_->counters().under_replicated_writes, 0u);
}

TEST_F(TierClientTest, ACopyAMemberCannotTakeGoesToTheNextInRank) {
  for (FakeMember::Fault fault :
       {FakeMember::Fault::kDown, FakeMember::Fault::kHung,
        FakeMember::Fault::kFull}) {
    Make(3, 2);
    const uint64_t key = 7;
    const std::vector<FakeMember*> rank = Ranked(key);
    rank[0]->set_fault(fault);
    absl::StatusOr<PutReply> put = tier_->Put("vm", key, PageOf(key));
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(put->copies, 2u);
    EXPECT_TRUE(rank[1]->Holds("vm", key));
    EXPECT_TRUE(rank[2]->Holds("vm", key));
    EXPECT_EQ(tier_->counters().write_failovers, 1u);
  }
}

TEST_F(TierClientTest, WithOneMemberLeftAPageIsStoredUnderReplicated) {
  Make(3, 2);
  const std::vector<FakeMember*> rank = Ranked(11);
  rank[0]->set_fault(FakeMember::Fault::kDown);
  rank[1]->set_fault(FakeMember::Fault::kDown);
  absl::StatusOr<PutReply> put = tier_->Put("vm", 11, PageOf(11));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->copies, 1u);
  EXPECT_EQ(tier_->counters().under_replicated_writes, 1u);
  rank[2]->set_fault(FakeMember::Fault::kDown);
  absl::StatusOr<PutReply> none = tier_->Put("vm", 12, PageOf(12));
  EXPECT_TRUE(absl::IsUnavailable(none.status())) << none.status();
}

TEST_F(TierClientTest, ReadsFallOverToTheNextCopy) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 100; ++key) keys.push_back(key);
  PutKeys(keys);
  fakes_[0]->set_fault(FakeMember::Fault::kDown);  // a third of first copies
  fakes_[1]->set_fault(FakeMember::Fault::kHung);
  std::vector<std::string> back(keys.size(), std::string(kPageSize, '\0'));
  std::vector<uint8_t*> outs;
  for (std::string& page : back)
    outs.push_back(reinterpret_cast<uint8_t*>(page.data()));
  // With two of three members gone, a page whose copies were both on them
  // cannot be read: its error, never NOT_FOUND.
  absl::StatusOr<std::vector<absl::Status>> got =
      tier_->GetMany("vm", keys, outs);
  ASSERT_TRUE(got.ok()) << got.status();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (fakes_[2]->Holds("vm", keys[i])) {
      ASSERT_TRUE((*got)[i].ok()) << keys[i] << ": " << (*got)[i];
      EXPECT_EQ(back[i], PageOf(keys[i]));
    } else {
      EXPECT_FALSE((*got)[i].ok());
      EXPECT_FALSE(absl::IsNotFound((*got)[i])) << (*got)[i];
    }
  }
  EXPECT_GT(tier_->counters().read_failovers, 0u);
}

TEST_F(TierClientTest, OneServerLostAtRTwoLosesNothing) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 300; ++key) keys.push_back(key);
  PutKeys(keys);
  for (FakeMember* lost : fakes_) {
    lost->set_fault(FakeMember::Fault::kDown);
    for (uint64_t key : keys) {
      absl::StatusOr<std::string> page = tier_->Get("vm", key);
      ASSERT_TRUE(page.ok()) << key << ": " << page.status();
      EXPECT_EQ(*page, PageOf(key));
    }
    lost->set_fault(FakeMember::Fault::kNone);
  }
}

// A member that does not answer costs one call: later calls try it last,
// until the prober finds it serving again.
TEST_F(TierClientTest, ASilentMemberIsTriedLastUntilItServesAgain) {
  Make(3, 2);
  PutKeys({21});
  FakeMember* first = Ranked(21)[0];
  first->set_fault(FakeMember::Fault::kHung);
  const int before = first->calls();
  EXPECT_EQ(*tier_->Get("vm", 21), PageOf(21));  // asked, then passed on
  EXPECT_EQ(first->calls(), before + 1);
  EXPECT_EQ(*tier_->Get("vm", 21), PageOf(21));  // found before it
  EXPECT_EQ(first->calls(), before + 1);
  EXPECT_TRUE(tier_->suspect(NameOf(first)));
  first->set_fault(FakeMember::Fault::kNone);
  for (int i = 0; i < 100 && tier_->suspect(NameOf(first)); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(tier_->suspect(NameOf(first)));
  EXPECT_EQ(*tier_->Get("vm", 21), PageOf(21));
  EXPECT_EQ(first->calls(), before + 2);  // first in rank again
}

TEST_F(TierClientTest, NotFoundOnlyWhenEveryCandidateSaysSo) {
  Make(3, 2);
  EXPECT_TRUE(absl::IsNotFound(tier_->Get("vm", 5).status()));
  Ranked(5)[2]->set_fault(FakeMember::Fault::kDown);
  // The down member might hold a copy written while the others were away.
  EXPECT_TRUE(absl::IsUnavailable(tier_->Get("vm", 5).status()));
}

TEST_F(TierClientTest, AReadFindsTheCopyAWriteFailedOverTo) {
  Make(4, 2);
  const std::vector<FakeMember*> rank = Ranked(9);
  rank[1]->set_fault(FakeMember::Fault::kDown);
  ASSERT_TRUE(tier_->Put("vm", 9, PageOf(9)).ok());  // on rank 0 and 2
  rank[1]->set_fault(FakeMember::Fault::kNone);
  rank[0]->Lose("vm", 9);  // say, evicted
  EXPECT_EQ(*tier_->Get("vm", 9), PageOf(9));
}

TEST_F(TierClientTest, ARequestErrorIsNotRetriedElsewhere) {
  Make(3, 2);
  absl::StatusOr<PutReply> put = tier_->Put("vm", 1, "short");
  EXPECT_TRUE(absl::IsInvalidArgument(put.status())) << put.status();
  EXPECT_EQ(tier_->counters().write_failovers, 0u);
  EXPECT_EQ(Holders(1), 0);
}

TEST_F(TierClientTest, NeighbouringKeysGoToEachMemberInOneCall) {
  Make(3, 2, /*group_shift=*/6);
  std::vector<uint64_t> keys;
  for (uint64_t key = 64; key < 128; ++key) keys.push_back(key);  // one group
  PutKeys(keys);
  int calls = 0;
  for (FakeMember* fake : fakes_) calls += fake->calls();
  EXPECT_EQ(calls, 2);  // one PutMany on each of the group's two members
}

TEST_F(TierClientTest, DeletesReachEveryCopy) {
  Make(4, 2);
  const std::vector<FakeMember*> rank = Ranked(3);
  rank[0]->set_fault(FakeMember::Fault::kDown);
  ASSERT_TRUE(tier_->Put("vm", 3, PageOf(3)).ok());  // ranks 1 and 2
  rank[0]->set_fault(FakeMember::Fault::kNone);
  EXPECT_TRUE(*tier_->Delete("vm", 3));
  EXPECT_EQ(Holders(3), 0);
  EXPECT_FALSE(*tier_->Delete("vm", 3));
}

TEST_F(TierClientTest, DeleteAllNeedsEveryMember) {
  Make(3, 2);
  PutKeys({1, 2, 3});
  uint64_t on_the_down_one = 0;
  for (uint64_t key : {1, 2, 3}) on_the_down_one += fakes_[1]->Holds("vm", key);
  fakes_[1]->set_fault(FakeMember::Fault::kDown);
  EXPECT_TRUE(absl::IsUnavailable(tier_->DeleteAll("vm").status()));
  fakes_[1]->set_fault(FakeMember::Fault::kNone);
  // The others' copies went the first time; the retry takes the rest.
  EXPECT_EQ(*tier_->DeleteAll("vm"), on_the_down_one);
  for (uint64_t key : {1, 2, 3}) EXPECT_EQ(Holders(key), 0) << key;
}

// Both copies evicted in turn, the first while the other member was down:
// the tier could not tell that the page had another copy, so both reach
// the callback.
TEST_F(TierClientTest, EvictionsFromEveryMemberReachTheCallback) {
  Make(3, 2);
  PutKeys({42});
  std::mutex mu;
  std::vector<std::pair<uint64_t, std::string>> seen;
  const std::vector<FakeMember*> rank = Ranked(42);
  rank[1]->set_fault(FakeMember::Fault::kDown);  // down when Watch starts
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
      tier_->Watch("vm", [&](uint64_t key, absl::string_view page) {
        std::lock_guard<std::mutex> lock(mu);
        seen.emplace_back(key, std::string(page));
        return true;
      });
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EXPECT_TRUE(rank[0]->Evict("vm", 42));
  rank[1]->set_fault(FakeMember::Fault::kNone);
  // The watcher subscribes to a member that comes back within a second.
  bool delivered = false;
  for (int attempt = 0; attempt < 50 && !delivered; ++attempt) {
    absl::SleepFor(absl::Milliseconds(100));
    delivered = rank[1]->Evict("vm", 42);
  }
  EXPECT_TRUE(delivered);
  (*watcher)->Stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [key, page] : seen) {
    EXPECT_EQ(key, 42u);
    EXPECT_EQ(page, PageOf(42));
  }
}

class EvictionTest : public TierClientTest {
 protected:
  void SetUp() override {
    Make(3, 2);
    PutKeys({42});
    rank_ = Ranked(42);
    absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
        tier_->Watch("vm", [this](uint64_t key, absl::string_view page) {
          std::lock_guard<std::mutex> lock(mu_);
          seen_.emplace_back(key, std::string(page));
          return true;
        });
    ASSERT_TRUE(watcher.ok()) << watcher.status();
    watcher_ = *std::move(watcher);
  }
  void TearDown() override { watcher_->Stop(); }
  size_t seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.size();
  }
  // A third copy, beyond the two targets', on the next member in rank.
  void PutExtraCopy() {
    const KeyedPage extra{42, pages_[0]};
    ASSERT_TRUE(rank_[2]->PutMany("vm", absl::MakeConstSpan(&extra, 1)).ok());
  }

  std::vector<FakeMember*> rank_;
  std::unique_ptr<EvictionWatcher> watcher_;
  std::mutex mu_;
  std::vector<std::pair<uint64_t, std::string>> seen_;
};

// Two copies: the evicted one goes to the caller, and the other is then
// deleted, so what the caller keeps is held nowhere else; counting on the
// other copy alone would leave the page on one member.
TEST_F(EvictionTest, ALastCopyGoesToTheCallerAndTheOtherIsDeleted) {
  EXPECT_TRUE(rank_[0]->Evict("vm", 42));
  ASSERT_EQ(seen(), 1u);
  EXPECT_EQ(seen_[0], std::make_pair(uint64_t{42}, PageOf(42)));
  EXPECT_EQ(Holders(42), 0);
  EXPECT_EQ(tier_->counters().spare_copies_evicted, 0u);
}

// Three copies (a write failed over, say): one evicted is a spare, acked
// and forgotten, and counted so that a repair makes it again.
TEST_F(EvictionTest, ACopyBesideTwoOthersIsAckedAndForgotten) {
  PutExtraCopy();
  EXPECT_TRUE(rank_[0]->Evict("vm", 42));
  EXPECT_EQ(seen(), 0u);
  EXPECT_FALSE(rank_[0]->Holds("vm", 42));
  EXPECT_EQ(Holders(42), 2);
  EXPECT_EQ(tier_->counters().spare_copies_evicted, 1u);
}

// The first member's server has not read its ack yet, so it still answers
// for the copy: the second eviction must not count on it.
TEST_F(EvictionTest, TwoMembersEvictingOnePageCannotEachCountOnTheOther) {
  PutExtraCopy();
  EXPECT_TRUE(rank_[0]->Evict("vm", 42, /*ack_read=*/false));
  EXPECT_TRUE(rank_[1]->Evict("vm", 42, /*ack_read=*/false));
  ASSERT_EQ(seen(), 1u);
  EXPECT_EQ(seen_[0].second, PageOf(42));
  EXPECT_EQ(tier_->counters().spare_copies_evicted, 1u);
}

// A page held by both targets and by a third member. One target evicts it
// as a spare, its ack not yet read: a repair that reads the targets then
// must not delete the third copy as an extra, or the page would be left on
// one member.
TEST_F(EvictionTest, RepairKeepsTheCopyAnEvictionCountedOn) {
  PutExtraCopy();
  EXPECT_TRUE(rank_[0]->Evict("vm", 42, /*ack_read=*/false));
  EXPECT_EQ(seen(), 0u);
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", {42});
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->dropped, 0u);
  EXPECT_TRUE(rank_[2]->Holds("vm", 42));
  // The ack is read; the next repair copies the page back to its target
  // and only then drops the extra.
  rank_[0]->Lose("vm", 42);
  repaired = tier_->Repair("vm", {42});
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->copied, 1u);
  EXPECT_EQ(repaired->dropped, 1u);
  EXPECT_TRUE(rank_[0]->Holds("vm", 42) && rank_[1]->Holds("vm", 42));
  EXPECT_EQ(*tier_->Get("vm", 42), PageOf(42));
}

// Repair after a loss: every page back to two copies on the two members
// left, so a second loss takes nothing.
TEST_F(TierClientTest, RepairMakesASecondLossHarmless) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 300; ++key) keys.push_back(key);
  PutKeys(keys);
  fakes_[0]->set_fault(FakeMember::Fault::kDown);
  const uint64_t changes = tier_->reachability_changes();
  for (uint64_t key : keys) tier_->Get("vm", key).IgnoreError();  // finds it
  ASSERT_TRUE(tier_->suspect("m0"));
  EXPECT_EQ(tier_->reachability_changes(), changes + 1);
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", keys);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->checked, 300u);
  EXPECT_EQ(repaired->lost, 0u);
  EXPECT_EQ(repaired->short_of_copies, 0u);
  EXPECT_GT(repaired->copied, 50u);  // about two thirds of the pages had m0
  for (uint64_t key : keys) {
    EXPECT_TRUE(fakes_[1]->Holds("vm", key) && fakes_[2]->Holds("vm", key))
        << key;
  }
  fakes_[1]->set_fault(FakeMember::Fault::kDown);
  for (uint64_t key : keys) {
    absl::StatusOr<std::string> page = tier_->Get("vm", key);
    ASSERT_TRUE(page.ok()) << key << ": " << page.status();
    EXPECT_EQ(*page, PageOf(key));
  }
}

TEST_F(TierClientTest, RepairRefillsAMemberThatCameBackEmpty) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 100; ++key) keys.push_back(key);
  PutKeys(keys);
  int had = 0;
  for (uint64_t key : keys) had += fakes_[2]->Holds("vm", key);
  fakes_[2]->LoseAll();  // restarted without a drain
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", keys);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->copied, static_cast<uint64_t>(had));
  for (uint64_t key : keys) EXPECT_EQ(Holders(key), 2) << key;
  EXPECT_EQ(tier_->Repair("vm", keys)->copied, 0u);  // nothing left to do
}

// Two members at R=2, one down: every key has one copy, and repair can
// make no second one; it says so, until the member is back.
TEST_F(TierClientTest, RepairCountsKeysItCannotBringBackToR) {
  Make(2, 2);
  PutKeys({1, 2, 3});
  fakes_[1]->set_fault(FakeMember::Fault::kDown);
  fakes_[1]->LoseAll();
  for (uint64_t key : {1, 2, 3}) tier_->Get("vm", key).IgnoreError();
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", {1, 2, 3});
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->short_of_copies, 3u);
  EXPECT_EQ(repaired->lost, 0u);
  fakes_[1]->set_fault(FakeMember::Fault::kNone);
  absl::SleepFor(absl::Milliseconds(500));  // a probe finds it serving
  repaired = tier_->Repair("vm", {1, 2, 3});
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->short_of_copies, 0u);
  EXPECT_EQ(repaired->copied, 3u);
}

TEST_F(TierClientTest, RepairCountsAKeyNoMemberHasAsLost) {
  Make(3, 2);
  PutKeys({5});
  for (FakeMember* fake : fakes_) fake->Lose("vm", 5);
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", {5});
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(repaired->lost, 1u);
  EXPECT_EQ(repaired->copied, 0u);
}

// A fourth member joins: before repair every page reads from its old
// copies; repair moves about a quarter of the copies to it (R = 2), each
// from one old owner, and nothing else.
TEST_F(TierClientTest, AJoiningMemberTakesItsGroupsAndReadsStayRight) {
  Make(3, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 400; ++key) keys.push_back(key);
  PutKeys(keys);
  auto fresh = std::make_unique<FakeMember>();
  FakeMember* joined = fresh.get();
  ASSERT_TRUE(tier_->AddMember({"m3", std::move(fresh), 1.0}).ok());
  fakes_.push_back(joined);
  for (uint64_t key : keys) ASSERT_EQ(*tier_->Get("vm", key), PageOf(key));
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", keys);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_NEAR(static_cast<double>(repaired->copied), 2 * 400 / 4.0, 40);
  EXPECT_EQ(repaired->dropped, repaired->copied);
  for (uint64_t key : keys) {
    const std::vector<FakeMember*> rank = Ranked(key);
    EXPECT_TRUE(rank[0]->Holds("vm", key) && rank[1]->Holds("vm", key)) << key;
    EXPECT_EQ(Holders(key), 2) << key;
    ASSERT_EQ(*tier_->Get("vm", key), PageOf(key));
  }
  EXPECT_EQ(tier_->Repair("vm", keys)->copied, 0u);  // nothing left to move
}

// A member leaves cleanly: removed first, its groups repaired onto the
// others, then its server stops: nothing is lost.
TEST_F(TierClientTest, AMemberRemovedAndRepairedCanStopWithNothingLost) {
  Make(4, 2);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 300; ++key) keys.push_back(key);
  PutKeys(keys);
  ASSERT_TRUE(tier_->RemoveMember("m1").ok());
  EXPECT_EQ(tier_->member_names(),
            (std::vector<std::string>{"m0", "m2", "m3"}));
  absl::StatusOr<RepairResult> repaired = tier_->Repair("vm", keys);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_GT(repaired->copied, 0u);
  // The tier dropped its connection to m1 (the fake is gone): every page
  // must now be on the three left, twice.
  for (uint64_t key : keys) {
    int held = 0;
    for (int m : {0, 2, 3}) held += fakes_[m]->Holds("vm", key);
    EXPECT_EQ(held, 2) << key;
    ASSERT_EQ(*tier_->Get("vm", key), PageOf(key));
  }
  EXPECT_TRUE(absl::IsNotFound(tier_->RemoveMember("m1")));
  EXPECT_TRUE(tier_->RemoveMember("m0").ok());
  EXPECT_TRUE(tier_->RemoveMember("m2").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(tier_->RemoveMember("m3")));
}

TEST(TierClientCreateTest, RefusesWhatCannotBePlaced) {
  auto tier_of = [](std::vector<std::string> names, int replicas) {
    std::vector<TierMember> members;
    for (std::string& name : names) {
      members.push_back({std::move(name), std::make_unique<FakeMember>(), 1.0});
    }
    return TierClient::Create(std::move(members), {.replicas = replicas})
        .status();
  };
  EXPECT_TRUE(absl::IsInvalidArgument(tier_of({}, 2)));
  EXPECT_TRUE(absl::IsInvalidArgument(tier_of({"a", "a"}, 2)));
  EXPECT_TRUE(absl::IsInvalidArgument(tier_of({"a", "b/c"}, 2)));
  EXPECT_TRUE(absl::IsInvalidArgument(tier_of({"a", "b"}, 0)));
  EXPECT_TRUE(absl::IsInvalidArgument(tier_of({"a", "b"}, 4)));
  EXPECT_TRUE(tier_of({"a"}, 2).ok());  // one copy: all there is
}

}  // namespace
}  // namespace zpaged
