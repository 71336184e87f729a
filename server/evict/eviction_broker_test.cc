#include "server/evict/eviction_broker.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/core/notification.h"

namespace zpaged {
namespace {

using Page = std::array<uint8_t, 16>;

struct Sent {
  std::string tenant;
  uint64_t key;
  uint64_t sequence;
};

// A watcher whose pages land in a list; it refuses pages while `full`.
class FakeChannel : public WatcherChannel {
 public:
  bool Send(const OutgoingPage& page) override {
    MutexLock lock(&mu_);
    if (full_ || closed_) return false;
    sent_.push_back(Sent{std::string(page.tenant), page.key, page.sequence});
    return true;
  }
  void Close(const absl::Status& status) override {
    MutexLock lock(&mu_);
    closed_ = true;
    close_status_ = status;
  }

  std::vector<Sent> sent() {
    MutexLock lock(&mu_);
    return sent_;
  }
  void set_full(bool full) {
    MutexLock lock(&mu_);
    full_ = full;
  }
  std::optional<absl::Status> close_status() {
    MutexLock lock(&mu_);
    if (!closed_) return std::nullopt;
    return close_status_;
  }

 private:
  Mutex mu_;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  bool full_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

// Where one delivery's outcome lands; waits for it without a time limit of
// its own (the test runner's timeout is the backstop).
class Outcome {
 public:
  DeliveryDone Done() {
    return [this](DeliveryOutcome outcome) {
      calls_.fetch_add(1);
      outcome_ = outcome;
      arrived_.Notify();
    };
  }
  DeliveryOutcome Wait() {
    arrived_.WaitForNotification();
    return outcome_;
  }
  bool arrived() { return arrived_.HasBeenNotified(); }
  int calls() const { return calls_.load(); }

 private:
  Notification arrived_;
  DeliveryOutcome outcome_;
  std::atomic<int> calls_{0};
};

class EvictionBrokerTest : public ::testing::Test {
 protected:
  void Make(absl::Duration ack_deadline) {
    BrokerOptions options;
    options.ack_deadline = ack_deadline;
    options.max_watchers_per_tenant = 3;
    options.on_ack = [this](absl::Duration) { acks_timed_.fetch_add(1); };
    options.log = [this](const std::string& line) {
      MutexLock lock(&log_mu_);
      log_.push_back(line);
    };
    broker_ = std::make_unique<EvictionBroker>(std::move(options));
  }
  void SetUp() override { Make(absl::Hours(1)); }

  EvictionBroker::WatcherId Attach(absl::string_view tenant,
                                   FakeChannel* channel) {
    absl::StatusOr<EvictionBroker::WatcherId> id =
        broker_->Attach(tenant, channel);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }
  absl::Status Deliver(absl::string_view tenant, uint64_t key,
                       Outcome* outcome) {
    return broker_->Deliver(tenant, key, page_, outcome->Done());
  }
  bool Logged(absl::string_view needle) {
    MutexLock lock(&log_mu_);
    for (const std::string& line : log_) {
      if (absl::StrContains(line, needle)) return true;
    }
    return false;
  }

  Page page_{};
  std::atomic<int> acks_timed_{0};
  Mutex log_mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(log_mu_);
  std::unique_ptr<EvictionBroker> broker_;
};

TEST_F(EvictionBrokerTest, APageGoesOnlyToItsOwnTenantAndAnAckResolvesIt) {
  FakeChannel mine, other;
  const auto id = Attach("vm-1", &mine);
  Attach("vm-2", &other);
  Outcome outcome;
  ASSERT_TRUE(Deliver("vm-1", 7, &outcome).ok());
  ASSERT_EQ(mine.sent().size(), 1u);
  EXPECT_EQ(mine.sent()[0].tenant, "vm-1");
  EXPECT_EQ(mine.sent()[0].key, 7u);
  EXPECT_TRUE(other.sent().empty());
  EXPECT_FALSE(outcome.arrived());  // never resolved inside Deliver

  ASSERT_TRUE(broker_->Ack(id, mine.sent()[0].sequence).ok());
  EXPECT_EQ(outcome.Wait(), DeliveryOutcome::kAcked);
  EXPECT_EQ(outcome.calls(), 1);
  EXPECT_EQ(acks_timed_.load(), 1);
  EXPECT_TRUE(Logged("eviction watcher 1 of tenant 'vm-1' connected"));
}

TEST_F(EvictionBrokerTest, NoWatcherOrADifferentTenantsWatcherRefuses) {
  Outcome outcome;
  EXPECT_FALSE(broker_->CanAccept("vm-1"));
  EXPECT_EQ(Deliver("vm-1", 1, &outcome).code(),
            absl::StatusCode::kUnavailable);
  FakeChannel other;
  Attach("vm-2", &other);
  EXPECT_FALSE(broker_->CanAccept("vm-1"));
  EXPECT_EQ(Deliver("vm-1", 1, &outcome).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(other.sent().empty());
  EXPECT_EQ(outcome.calls(), 0);
}

TEST_F(EvictionBrokerTest, AcksMayComeInAnyOrder) {
  FakeChannel channel;
  const auto id = Attach("vm", &channel);
  Outcome first, second, third;
  ASSERT_TRUE(Deliver("vm", 1, &first).ok());
  ASSERT_TRUE(Deliver("vm", 2, &second).ok());
  ASSERT_TRUE(Deliver("vm", 3, &third).ok());
  const std::vector<Sent> sent = channel.sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].sequence, 1u);
  EXPECT_EQ(sent[2].sequence, 3u);
  ASSERT_TRUE(broker_->Ack(id, 3).ok());
  ASSERT_TRUE(broker_->Ack(id, 1).ok());
  EXPECT_EQ(third.Wait(), DeliveryOutcome::kAcked);
  EXPECT_EQ(first.Wait(), DeliveryOutcome::kAcked);
  EXPECT_FALSE(second.arrived());
  EXPECT_EQ(broker_->CountsByTenant()[0].second.in_flight, 1u);
  ASSERT_TRUE(broker_->Ack(id, 2).ok());
  EXPECT_EQ(second.Wait(), DeliveryOutcome::kAcked);
}

TEST_F(EvictionBrokerTest, AcksOfSequencesNotOutAreInvalid) {
  FakeChannel channel;
  const auto id = Attach("vm", &channel);
  Outcome outcome;
  ASSERT_TRUE(Deliver("vm", 1, &outcome).ok());
  EXPECT_EQ(broker_->Ack(id, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker_->Ack(id, 2).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(broker_->Ack(id, 1).ok());
  const absl::Status again = broker_->Ack(id, 1);
  EXPECT_EQ(again.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(again.message().find("acked already"), absl::string_view::npos);
  EXPECT_EQ(outcome.calls(), 1);
  broker_->Detach(id);
  EXPECT_EQ(broker_->Ack(id, 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(EvictionBrokerTest, ANewerCopyWaitsUntilTheOlderOneIsAcked) {
  FakeChannel a, b;
  const auto id_a = Attach("vm", &a);
  Attach("vm", &b);
  Outcome older, newer, other_key;
  ASSERT_TRUE(Deliver("vm", 5, &older).ok());
  // Held across every watcher of the tenant, not just the one it went to.
  EXPECT_EQ(Deliver("vm", 5, &newer).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(newer.calls(), 0);
  EXPECT_TRUE(Deliver("vm", 6, &other_key).ok());
  ASSERT_TRUE(broker_->Ack(id_a, a.sent()[0].sequence).ok());
  EXPECT_EQ(older.Wait(), DeliveryOutcome::kAcked);
  EXPECT_TRUE(Deliver("vm", 5, &newer).ok());
}

TEST_F(EvictionBrokerTest, AMissedDeadlineStallsTheWatcherAndHoldsTheKey) {
  Make(absl::Milliseconds(20));
  FakeChannel slow, quick;
  const auto slow_id = Attach("vm", &slow);
  const auto quick_id = Attach("vm", &quick);
  Outcome late;
  ASSERT_TRUE(Deliver("vm", 9, &late).ok());
  ASSERT_EQ(slow.sent().size(), 1u);  // round robin starts at the first
  EXPECT_EQ(late.Wait(), DeliveryOutcome::kTimedOut);
  EXPECT_TRUE(Logged("eviction watcher 1 of tenant 'vm' stalled"));

  // The stalled watcher is skipped; the other one still takes pages.
  EXPECT_TRUE(broker_->CanAccept("vm"));
  EXPECT_EQ(broker_->CountsByTenant()[0].second.stalled, 1u);
  Outcome next;
  ASSERT_TRUE(Deliver("vm", 10, &next).ok());
  EXPECT_EQ(quick.sent().size(), 1u);
  ASSERT_TRUE(broker_->Ack(quick_id, quick.sent()[0].sequence).ok());
  EXPECT_EQ(next.Wait(), DeliveryOutcome::kAcked);
  Outcome after;
  ASSERT_TRUE(Deliver("vm", 11, &after).ok());
  EXPECT_EQ(slow.sent().size(), 1u);
  EXPECT_EQ(quick.sent().size(), 2u);

  // The slow watcher may still write key 9 and ack late, so no newer copy
  // of 9 goes out, to anyone, until it does.
  Outcome newer;
  EXPECT_EQ(Deliver("vm", 9, &newer).code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(broker_->Ack(slow_id, slow.sent()[0].sequence).ok());
  EXPECT_EQ(late.calls(), 1);  // the late ack resolves nothing twice
  EXPECT_TRUE(Logged("eviction watcher 1 of tenant 'vm' recovered"));
  EXPECT_EQ(broker_->CountsByTenant()[0].second.stalled, 0u);
  EXPECT_TRUE(Deliver("vm", 9, &newer).ok());
}

TEST_F(EvictionBrokerTest, AllStalledMeansNoneCanAccept) {
  Make(absl::Milliseconds(10));
  FakeChannel channel;
  Attach("vm", &channel);
  Outcome outcome;
  ASSERT_TRUE(Deliver("vm", 1, &outcome).ok());
  EXPECT_EQ(outcome.Wait(), DeliveryOutcome::kTimedOut);
  EXPECT_FALSE(broker_->CanAccept("vm"));
  Outcome refused;
  EXPECT_EQ(Deliver("vm", 2, &refused).code(), absl::StatusCode::kUnavailable);
}

TEST_F(EvictionBrokerTest, DisconnectResolvesWhatIsOutAndLetsTheKeysGo) {
  FakeChannel leaving, staying;
  const auto id = Attach("vm", &leaving);
  Attach("vm", &staying);
  Outcome out;
  ASSERT_TRUE(Deliver("vm", 2, &out).ok());
  ASSERT_EQ(leaving.sent().back().key, 2u);
  broker_->Detach(id);
  EXPECT_EQ(out.Wait(), DeliveryOutcome::kDisconnected);
  EXPECT_TRUE(Logged("disconnected with 1 pages unacked"));
  broker_->Detach(id);  // idempotent
  EXPECT_EQ(out.calls(), 1);
  Outcome again;
  ASSERT_TRUE(Deliver("vm", 2, &again).ok());
  EXPECT_EQ(staying.sent().back().key, 2u);
}

TEST_F(EvictionBrokerTest, DisconnectLetsAnOverdueKeyGo) {
  Make(absl::Milliseconds(10));
  FakeChannel a, b;
  const auto id_a = Attach("vm", &a);
  Attach("vm", &b);
  Outcome overdue;
  ASSERT_TRUE(Deliver("vm", 4, &overdue).ok());
  EXPECT_EQ(overdue.Wait(), DeliveryOutcome::kTimedOut);
  Outcome refused;
  EXPECT_EQ(Deliver("vm", 4, &refused).code(), absl::StatusCode::kUnavailable);
  broker_->Detach(id_a);
  EXPECT_EQ(overdue.calls(), 1);
  Outcome fresh;
  EXPECT_TRUE(Deliver("vm", 4, &fresh).ok());
  EXPECT_EQ(b.sent().back().key, 4u);
}

TEST_F(EvictionBrokerTest, RoundRobinSkipsAFullChannel) {
  FakeChannel a, b, c;
  Attach("vm", &a);
  Attach("vm", &b);
  Attach("vm", &c);
  std::vector<Outcome> outcomes(7);
  b.set_full(true);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Deliver("vm", i, &outcomes[i]).ok());
  EXPECT_EQ(a.sent().size(), 2u);
  EXPECT_EQ(b.sent().size(), 0u);
  EXPECT_EQ(c.sent().size(), 2u);
  a.set_full(true);
  c.set_full(true);
  EXPECT_EQ(Deliver("vm", 4, &outcomes[4]).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(outcomes[4].calls(), 0);
  // Its own per-watcher sequences: a full channel consumed none.
  b.set_full(false);
  ASSERT_TRUE(Deliver("vm", 5, &outcomes[5]).ok());
  EXPECT_EQ(b.sent()[0].sequence, 1u);
}

TEST_F(EvictionBrokerTest, WatchersPerTenantAreCapped) {
  FakeChannel channels[4];
  for (int i = 0; i < 3; ++i) Attach("vm", &channels[i]);
  EXPECT_EQ(broker_->Attach("vm", &channels[3]).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(broker_->Attach("other", &channels[3]).ok());
  EXPECT_EQ(broker_->WatcherCount("vm"), 3u);
}

// The NBD bridge's watcher is exclusive: a tenant has one writer.
TEST_F(EvictionBrokerTest, AnExclusiveWatcherIsItsTenantsOnlyOne) {
  FakeChannel bridge, second, plain, other;
  const absl::StatusOr<EvictionBroker::WatcherId> first =
      broker_->Attach("vm", &bridge, /*exclusive=*/true);
  ASSERT_TRUE(first.ok()) << first.status();
  const absl::Status refused =
      broker_->Attach("vm", &second, /*exclusive=*/true).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("exclusive"), absl::string_view::npos);
  EXPECT_EQ(broker_->Attach("vm", &plain).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(broker_->Attach("other", &other, /*exclusive=*/true).ok());
  EXPECT_EQ(broker_->WatcherCount("vm"), 1u);
  broker_->Detach(*first);  // the bridge stopped: the tenant is free
  const auto id_plain = Attach("vm", &plain);
  EXPECT_EQ(broker_->Attach("vm", &second, /*exclusive=*/true).status().code(),
            absl::StatusCode::kFailedPrecondition);
  broker_->Detach(id_plain);
  EXPECT_TRUE(broker_->Attach("vm", &second, /*exclusive=*/true).ok());
}

TEST_F(EvictionBrokerTest, WatchedTenantsAreCapped) {
  BrokerOptions options;
  options.max_watched_tenants = 2;
  options.log = [](const std::string&) {};
  broker_ = std::make_unique<EvictionBroker>(std::move(options));
  FakeChannel a, b, c, d;
  const auto id_a = Attach("t1", &a);
  Attach("t2", &b);
  const absl::Status refused = broker_->Attach("t3", &c).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("--max_tenants"), absl::string_view::npos);
  const auto id_d = Attach("t1", &d);  // a watched tenant: fine
  broker_->Detach(id_a);
  EXPECT_FALSE(broker_->Attach("t3", &c).ok());  // t1 still has d
  broker_->Detach(id_d);
  EXPECT_TRUE(broker_->Attach("t3", &c).ok());  // t1 has none left
  EXPECT_EQ(broker_->CountsByTenant().size(), 2u);
}

// 1,024 watchers on made-up tenant names held every slot, and a real
// tenant's watcher was refused, so its Puts at the limit failed. Now a
// tenant that holds pages takes the slot of one that holds none.
TEST_F(EvictionBrokerTest, TenantsThatHoldNothingGiveWayToOnesThatDo) {
  BrokerOptions options;
  options.max_watched_tenants = 2;
  options.holds_pages = [](absl::string_view tenant) {
    return absl::StartsWith(tenant, "real");
  };
  options.log = [](const std::string&) {};
  broker_ = std::make_unique<EvictionBroker>(std::move(options));
  FakeChannel junk1, junk2, another_junk, real, real2, late;
  const auto id_junk1 = Attach("junk1", &junk1);
  Attach("junk2", &junk2);
  // A tenant that holds nothing does not displace another.
  EXPECT_EQ(broker_->Attach("junk3", &another_junk).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(junk1.close_status().has_value());
  // One that holds pages does: one idle tenant's watchers are closed.
  ASSERT_TRUE(broker_->Attach("real", &real).ok());
  EXPECT_NE(junk1.close_status().has_value(), junk2.close_status().has_value());
  FakeChannel& closed = junk1.close_status().has_value() ? junk1 : junk2;
  EXPECT_EQ(closed.close_status()->code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(broker_->Attach("real2", &real2).ok());  // the other idle one
  // Only tenants that hold pages are left: the limit holds.
  EXPECT_EQ(broker_->Attach("real3", &late).status().code(),
            absl::StatusCode::kResourceExhausted);
  broker_->Detach(id_junk1);
}

TEST_F(EvictionBrokerTest, VisitChannelsSeesEachWatcherWithItsTenant) {
  FakeChannel a, b;
  Attach("t1", &a);
  Attach("t2", &b);
  std::vector<std::string> seen;
  broker_->VisitChannels([&](absl::string_view tenant, WatcherChannel& c) {
    if (tenant == "t2") c.Close(absl::PermissionDeniedError("revoked"));
    seen.push_back(std::string(tenant));
  });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_FALSE(a.close_status().has_value());
  ASSERT_TRUE(b.close_status().has_value());
  EXPECT_EQ(b.close_status()->code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(EvictionBrokerTest, ShutdownClosesEveryChannelAndRefusesMore) {
  FakeChannel a, b;
  const auto id = Attach("vm-1", &a);
  Attach("vm-2", &b);
  Outcome out;
  ASSERT_TRUE(Deliver("vm-1", 1, &out).ok());
  broker_->Shutdown();
  ASSERT_TRUE(a.close_status().has_value());
  EXPECT_EQ(a.close_status()->code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(b.close_status().has_value());
  EXPECT_FALSE(broker_->CanAccept("vm-2"));
  FakeChannel late;
  EXPECT_EQ(broker_->Attach("vm-1", &late).status().code(),
            absl::StatusCode::kUnavailable);
  Outcome refused;
  EXPECT_EQ(Deliver("vm-2", 1, &refused).code(),
            absl::StatusCode::kUnavailable);
  // What was out resolves when the channel's owner detaches it.
  broker_->Detach(id);
  EXPECT_EQ(out.Wait(), DeliveryOutcome::kDisconnected);
}

// Many threads deliver, ack (in and out of order) and detach at once; every
// accepted delivery resolves exactly once. Meant to run under TSan too.
TEST(EvictionBrokerConcurrencyTest, EveryDeliveryResolvesExactlyOnce) {
  BrokerOptions options;
  options.ack_deadline = absl::Milliseconds(2);
  options.log = [](const std::string&) {};
  EvictionBroker broker(std::move(options));
  constexpr int kWatchers = 4;
  constexpr int kDeliverers = 3;
  constexpr int kPagesEach = 3000;
  std::array<FakeChannel, kWatchers> channels;
  std::array<std::atomic<uint64_t>, kWatchers> ids;
  for (int w = 0; w < kWatchers; ++w) {
    ids[w] = *broker.Attach("vm", &channels[w]);
  }
  std::atomic<int> accepted{0}, resolved{0}, twice{0};
  std::vector<std::unique_ptr<std::atomic<int>>> calls;
  for (int i = 0; i < kDeliverers * kPagesEach; ++i) {
    calls.push_back(std::make_unique<std::atomic<int>>(0));
  }
  std::atomic<bool> delivering{true};
  std::vector<std::thread> threads;
  const Page page{};
  for (int d = 0; d < kDeliverers; ++d) {
    threads.emplace_back([&, d] {
      for (int i = 0; i < kPagesEach; ++i) {
        const int n = d * kPagesEach + i;
        std::atomic<int>* count = calls[n].get();
        absl::Status s =
            broker.Deliver("vm", n % 50, page, [&, count](DeliveryOutcome) {
              if (count->fetch_add(1) != 0) twice.fetch_add(1);
              resolved.fetch_add(1);
            });
        if (s.ok()) accepted.fetch_add(1);
      }
    });
  }
  // Ackers: each acks what its watchers were sent, newest first, and now
  // and then one watcher leaves and another takes its place.
  threads.emplace_back([&] {
    std::mt19937 rng(1);
    std::array<size_t, kWatchers> acked_upto{};
    while (delivering.load()) {
      const int w = static_cast<int>(rng() % kWatchers);
      const std::vector<Sent> sent = channels[w].sent();
      for (size_t i = sent.size(); i > acked_upto[w]; --i) {
        broker.Ack(ids[w], sent[i - 1].sequence).IgnoreError();
      }
      acked_upto[w] = sent.size();
      if (rng() % 64 == 0) {
        broker.Detach(ids[w]);
        absl::StatusOr<EvictionBroker::WatcherId> id =
            broker.Attach("vm", &channels[w]);
        ASSERT_TRUE(id.ok());
        ids[w] = *id;
        acked_upto[w] = channels[w].sent().size();
      }
    }
  });
  for (int d = 0; d < kDeliverers; ++d) threads[d].join();
  delivering = false;
  threads.back().join();
  for (int w = 0; w < kWatchers; ++w) broker.Detach(ids[w]);
  // The timer may still be handing out outcomes it took before the last
  // Detach: once stopped, it has handed them all.
  broker.Stop();
  EXPECT_GT(accepted.load(), 0);
  EXPECT_EQ(resolved.load(), accepted.load());
  EXPECT_EQ(twice.load(), 0);
  EXPECT_TRUE(broker.CountsByTenant().empty());
}

}  // namespace
}  // namespace zpaged
