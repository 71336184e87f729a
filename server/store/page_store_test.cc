#include "server/store/page_store.h"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "contract/page.h"
#include "gtest/gtest.h"
#include "server/core/notification.h"
#include "server/evict/eviction_broker.h"

namespace zpaged {
namespace {

using Page = std::array<uint8_t, kPageSize>;

Page TextPage(int seed) {
  Page page;
  const std::string text = "page " + std::to_string(seed) + " of guest ram ";
  for (size_t i = 0; i < kPageSize; ++i) page[i] = text[i % text.size()];
  return page;
}
Page RandomPage(int seed) {
  Page page;
  std::mt19937_64 rng(seed);
  for (uint8_t& b : page) b = static_cast<uint8_t>(rng());
  return page;
}
Page WordPage(uint64_t word) {
  Page page;
  for (size_t i = 0; i < kPageSize; i += 8) std::memcpy(&page[i], &word, 8);
  return page;
}

struct Delivered {
  std::string tenant;
  uint64_t key;
  Page page;
};

// A watcher for the real EvictionBroker whose behaviour each test scripts.
// Pages are answered on a thread of its own, as a client would: `on_deliver`
// runs there first, and an OK from it acks the page; anything else leaves it
// unacked, so the broker's deadline passes.
class ScriptedWatcher : public WatcherChannel {
 public:
  explicit ScriptedWatcher(EvictionBroker* broker)
      : broker_(broker), answerer_([this] { Answer(); }) {}
  ~ScriptedWatcher() override {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      work_.SignalAll();
    }
    answerer_.join();
    Unwatch();
  }

  std::function<absl::Status(absl::string_view, uint64_t)> on_deliver;

  void Watch() { id_ = *broker_->Attach("vm", this); }
  void WatchTenant(absl::string_view tenant) {
    id_ = *broker_->Attach(tenant, this);
  }
  void Unwatch() {
    if (id_.has_value()) broker_->Detach(*std::exchange(id_, std::nullopt));
  }
  std::vector<Delivered> delivered() {
    MutexLock lock(&mu_);
    return delivered_;
  }

  bool Send(const OutgoingPage& page) override {
    MutexLock lock(&mu_);
    Delivered d{std::string(page.tenant), page.key, {}};
    // As a watcher that decodes nothing: the page whole.
    EXPECT_TRUE(ExpandEncodedPage(page.data.encoding, page.data.bytes,
                                  absl::MakeSpan(d.page))
                    .ok());
    delivered_.push_back(d);
    queue_.push_back({page.sequence, d.tenant, page.key});
    work_.SignalAll();
    return true;
  }
  void Close(const absl::Status&) override {}

 private:
  struct Pending {
    uint64_t sequence;
    std::string tenant;
    uint64_t key;
  };
  void Answer() {
    MutexLock lock(&mu_);
    for (;;) {
      while (!stopping_ && queue_.empty()) work_.Wait(&mu_);
      if (stopping_) return;
      const Pending next = queue_.front();
      queue_.erase(queue_.begin());
      const EvictionBroker::WatcherId id = *id_;
      mu_.Unlock();
      const absl::Status answer =
          on_deliver ? on_deliver(next.tenant, next.key) : absl::OkStatus();
      if (answer.ok()) broker_->Ack(id, next.sequence).IgnoreError();
      mu_.Lock();
    }
  }

  EvictionBroker* const broker_;
  std::optional<EvictionBroker::WatcherId> id_;
  Mutex mu_;
  CondVar work_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<Delivered> delivered_ ABSL_GUARDED_BY(mu_);
  std::thread answerer_;
};

BrokerOptions QuietBroker() {
  BrokerOptions options;
  options.ack_deadline = absl::Milliseconds(100);
  options.log = [](const std::string&) {};
  return options;
}

class PageStoreTest : public ::testing::Test {
 protected:
  void Make(StoreOptions options) {
    store_ = std::make_unique<PageStore>(options, &broker_);
  }
  void SetUp() override {
    Make(StoreOptions{});
    watcher_.Watch();
  }
  void TearDown() override {
    watcher_.Unwatch();
    broker_.Stop();  // no outcome reaches the store after this
  }

  PutResult MustPut(absl::string_view tenant, uint64_t key, const Page& page) {
    absl::StatusOr<PutResult> r = store_->PutAndWait(tenant, key, page);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(PutResult{});
  }
  absl::StatusOr<PutResult> Put(absl::string_view tenant, uint64_t key,
                                const Page& page, bool wait_for_room = true) {
    return store_->PutAndWait(tenant, key, page,
                              PutOptions{.wait_for_room = wait_for_room});
  }
  absl::StatusOr<ReclaimResult> Reclaim(absl::string_view tenant,
                                        uint32_t pages) {
    Notification finished;
    absl::StatusOr<ReclaimResult> result;
    store_->Reclaim(tenant, pages, [&](absl::StatusOr<ReclaimResult> r) {
      result = std::move(r);
      finished.Notify();
    });
    finished.WaitForNotification();
    return result;
  }
  absl::StatusOr<Page> GetPage(absl::string_view tenant, uint64_t key) {
    Page out;
    absl::Status s = store_->Get(tenant, key, absl::MakeSpan(out)).status();
    if (!s.ok()) return s;
    return out;
  }
  PageStats StatsOf(absl::string_view tenant) {
    return store_->Stats(tenant).value();
  }

  EvictionBroker broker_{QuietBroker()};
  std::unique_ptr<PageStore> store_;
  ScriptedWatcher watcher_{&broker_};
};

TEST_F(PageStoreTest, EachEncodingRoundTripsByteExact) {
  const Page zero = WordPage(0), same = WordPage(0xFEEDFACECAFEBEEF),
             text = TextPage(1), noise = RandomPage(1);
  PutResult r = MustPut("vm", 1, zero);
  EXPECT_EQ(r.encoding, PageEncoding::kSameFilled);
  EXPECT_EQ(r.stored_bytes, 0u);
  EXPECT_EQ(MustPut("vm", 2, same).encoding, PageEncoding::kSameFilled);
  r = MustPut("vm", 3, text);
  EXPECT_EQ(r.encoding, PageEncoding::kLz4);
  EXPECT_GT(r.stored_bytes, 0u);
  EXPECT_LT(r.stored_bytes, 1000u);
  EXPECT_EQ(r.stored_bytes % 64, 0u);
  r = MustPut("vm", 4, noise);
  EXPECT_EQ(r.encoding, PageEncoding::kRaw);
  EXPECT_EQ(r.stored_bytes, kPageSize);

  EXPECT_EQ(*GetPage("vm", 1), zero);
  EXPECT_EQ(*GetPage("vm", 2), same);
  EXPECT_EQ(*GetPage("vm", 3), text);
  EXPECT_EQ(*GetPage("vm", 4), noise);

  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.stored_pages, 4u);
  EXPECT_EQ(stats.same_filled_pages, 2u);
  EXPECT_EQ(stats.lz4_pages, 1u);
  EXPECT_EQ(stats.raw_pages, 1u);
  EXPECT_EQ(stats.pool_pages, 2u);  // the RAW frame and one buddy frame
  EXPECT_DOUBLE_EQ(stats.density(), 1.0);
  EXPECT_GT(stats.compressed_bytes, 0u);
}

TEST_F(PageStoreTest, ReplaceKeepsOnlyTheNewCopy) {
  MustPut("vm", 7, RandomPage(1));
  MustPut("vm", 7, TextPage(2));
  EXPECT_EQ(*GetPage("vm", 7), TextPage(2));
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.stored_pages, 1u);
  EXPECT_EQ(stats.raw_pages, 0u);
  EXPECT_EQ(stats.lz4_pages, 1u);
  EXPECT_EQ(stats.pool_pages, 1u);
  MustPut("vm", 7, WordPage(0));
  EXPECT_EQ(StatsOf("vm").pool_pages, 0u);
  EXPECT_EQ(*GetPage("vm", 7), WordPage(0));
}

TEST_F(PageStoreTest, MissingPagesAndDeletes) {
  EXPECT_EQ(GetPage("nobody", 1).status().code(), absl::StatusCode::kNotFound);
  MustPut("vm", 1, TextPage(1));
  EXPECT_EQ(GetPage("vm", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->Delete("vm", 1), true);
  EXPECT_EQ(*store_->Delete("vm", 1), false);
  EXPECT_EQ(*store_->Delete("nobody", 1), false);
  EXPECT_EQ(GetPage("vm", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatsOf("vm").pool_pages, 0u);
}

TEST_F(PageStoreTest, BadRequestsAreInvalidArgument) {
  const Page page = TextPage(1);
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("a/b"),
        std::string("a b"), std::string("t\xC3\xA9")}) {
    EXPECT_EQ(store_->PutAndWait(bad, 1, page).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(GetPage(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Delete(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Reclaim(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_->PutAndWait(std::string(128, 'a'), 1, page).ok());
  EXPECT_TRUE(store_->PutAndWait("A-z_0.9", 1, page).ok());

  MustPut("vm", 1, page);
  EXPECT_EQ(store_->PutAndWait("vm", 1, absl::MakeConstSpan(page.data(), 4095))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> long_page(kPageSize + 1);
  EXPECT_EQ(store_->PutAndWait("vm", 2, long_page).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*GetPage("vm", 1), page);
  EXPECT_EQ(StatsOf("vm").rejected_puts_invalid, 2u);
}

TEST_F(PageStoreTest, TenantsAreIsolatedAndSummed) {
  MustPut("a", 1, TextPage(10));
  MustPut("b", 1, TextPage(20));
  MustPut("b", 2, WordPage(0));
  EXPECT_EQ(*GetPage("a", 1), TextPage(10));
  EXPECT_EQ(*GetPage("b", 1), TextPage(20));
  EXPECT_EQ(GetPage("a", 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(*store_->Delete("a", 1));
  EXPECT_EQ(*GetPage("b", 1), TextPage(20));

  PageStats total = StatsOf("");
  EXPECT_EQ(total.tenants, 2u);
  EXPECT_EQ(total.stored_pages, 2u);
  EXPECT_EQ(StatsOf("a").stored_pages, 0u);
  EXPECT_EQ(StatsOf("never").tenants, 0u);
}

TEST_F(PageStoreTest, ReclaimNeedsAWatcher) {
  MustPut("vm", 1, TextPage(1));
  watcher_.Unwatch();
  EXPECT_EQ(Reclaim("vm", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*GetPage("vm", 1), TextPage(1));
}

TEST_F(PageStoreTest, ReclaimDeliversLeastRecentPagesThenDropsThem) {
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  MustPut("other", 1, RandomPage(99));
  absl::StatusOr<ReclaimResult> r = Reclaim("vm", 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 2u);
  EXPECT_EQ(r->evicted_pages, 2u);
  const std::vector<Delivered> delivered = watcher_.delivered();
  ASSERT_EQ(delivered.size(), 2u);
  for (const Delivered& d : delivered) {
    EXPECT_EQ(d.tenant, "vm");
    EXPECT_EQ(d.page, RandomPage(d.key));
    EXPECT_EQ(GetPage("vm", d.key).status().code(),
              absl::StatusCode::kNotFound);
  }
  // The two least recently used frames; in parallel, so in either order.
  EXPECT_EQ(delivered[0].key + delivered[1].key, 3u);
  EXPECT_EQ(*GetPage("vm", 3), RandomPage(3));
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.evicted_pages, 2u);
  EXPECT_EQ(stats.deliveries_acked, 2u);
  EXPECT_EQ(stats.reclaimed_pool_pages, 2u);
  EXPECT_EQ(stats.stored_pages, 2u);
  EXPECT_EQ(*GetPage("other", 1), RandomPage(99));
}

TEST_F(PageStoreTest, UnackedEvictionsKeepEveryPage) {
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, TextPage(key));
  watcher_.on_deliver = [](absl::string_view, uint64_t) {
    return absl::DeadlineExceededError("no ack");
  };
  absl::StatusOr<ReclaimResult> r = Reclaim("vm", 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 0u);
  EXPECT_EQ(r->evicted_pages, 0u);
  for (uint64_t key = 1; key <= 4; ++key) {
    EXPECT_EQ(*GetPage("vm", key), TextPage(key));
  }
  // Both frames (two pages each) went out at once; the third try found no
  // frame left on the LRU. All four pages timed out.
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.pool_pages, 2u);
  EXPECT_EQ(stats.deliveries_timed_out, 4u);
  EXPECT_EQ(stats.deliveries_acked, 0u);
}

TEST_F(PageStoreTest, FullTenantEvictsToAWatcherToMakeRoom) {
  Make(StoreOptions{.tenant_max_bytes = 4 * kPageSize});
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  PutResult r = MustPut("vm", 5, RandomPage(5));
  EXPECT_EQ(r.encoding, PageEncoding::kRaw);
  const std::vector<Delivered> delivered = watcher_.delivered();
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].key, 1u);
  EXPECT_EQ(delivered[0].page, RandomPage(1));
  EXPECT_EQ(*GetPage("vm", 5), RandomPage(5));
  EXPECT_EQ(StatsOf("vm").pool_pages, 4u);
  EXPECT_EQ(StatsOf("vm").rejected_puts_limit, 0u);
}

TEST_F(PageStoreTest, FullTenantWithoutWatcherRefusesAndLosesNothing) {
  Make(StoreOptions{.tenant_max_bytes = 4 * kPageSize});
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  watcher_.Unwatch();
  absl::StatusOr<PutResult> r = Put("vm", 5, RandomPage(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("no eviction watcher"),
            absl::string_view::npos)
      << r.status();
  // Replacing an existing key needs room for the new copy too.
  EXPECT_EQ(Put("vm", 1, RandomPage(50)).status().code(),
            absl::StatusCode::kResourceExhausted);
  for (uint64_t key = 1; key <= 4; ++key) {
    EXPECT_EQ(*GetPage("vm", key), RandomPage(key));
  }
  EXPECT_EQ(StatsOf("vm").rejected_puts_limit, 2u);
  // Same-filled pages cost no pool memory, so they still go in.
  EXPECT_TRUE(Put("vm", 6, WordPage(0)).ok());
}

TEST_F(PageStoreTest, FullTenantWhoseWatcherNeverAcksRefuses) {
  Make(StoreOptions{.tenant_max_bytes = 2 * kPageSize});
  MustPut("vm", 1, RandomPage(1));
  MustPut("vm", 2, RandomPage(2));
  watcher_.on_deliver = [](absl::string_view, uint64_t) {
    return absl::DeadlineExceededError("ack deadline passed");
  };
  absl::StatusOr<PutResult> r = Put("vm", 3, RandomPage(3));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("did not acknowledge"),
            absl::string_view::npos)
      << r.status();
  EXPECT_EQ(*GetPage("vm", 1), RandomPage(1));
  EXPECT_EQ(*GetPage("vm", 2), RandomPage(2));
  EXPECT_EQ(StatsOf("vm").rejected_puts_limit, 1u);
}

TEST_F(PageStoreTest, APutThatMayNotWaitDoesNotReclaim) {
  Make(StoreOptions{.tenant_max_bytes = kPageSize});
  MustPut("vm", 1, RandomPage(1));
  absl::StatusOr<PutResult> r = Put("vm", 2, RandomPage(2), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(watcher_.delivered().empty());
  // Counted like every other refusal: one rule for all callers.
  EXPECT_EQ(StatsOf("vm").rejected_puts_limit, 1u);
}

TEST_F(PageStoreTest, APutPastItsDeadlineEvictsNothingAndStoresNothing) {
  Make(StoreOptions{.tenant_max_bytes = kPageSize});
  MustPut("vm", 1, RandomPage(1));
  absl::StatusOr<PutResult> r = store_->PutAndWait(
      "vm", 2, RandomPage(2), PutOptions{.deadline = absl::InfinitePast()});
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_TRUE(absl::IsNotFound(GetPage("vm", 2).status()));
  EXPECT_EQ(*GetPage("vm", 1), RandomPage(1));
  EXPECT_EQ(watcher_.delivered().size(), 0u);
}

TEST_F(PageStoreTest, ServerWideLimitIsSharedByTenants) {
  // Two tenants, three frames, and index entries for one page more: the
  // fourth page is refused for its frame.
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(2, 3, 4)});
  watcher_.Unwatch();
  MustPut("a", 1, RandomPage(1));
  MustPut("a", 2, RandomPage(2));
  MustPut("b", 1, RandomPage(3));
  EXPECT_EQ(Put("b", 2, RandomPage(4)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(*store_->Delete("a", 1));
  EXPECT_TRUE(Put("b", 2, RandomPage(4)).ok());
}

// The headroom takes eviction off the Puts' own path: once the background
// thread has made room, Puts near the limit store without waiting, where
// without a headroom each one waits for an eviction of its own.
class HeadroomTest : public PageStoreTest {
 protected:
  static constexpr uint64_t kHeadroomFrames = 8;
  static constexpr uint64_t kLimit = PageStore::MemoryFor(1, 32, 128);

  // Fills the store to its limit, lets the headroom thread (if any) make
  // its room, then Puts half a headroom's worth of pages; returns how many
  // of those had to wait for room.
  uint64_t RoomWaitsAtTheLimit(uint64_t headroom) {
    Make(StoreOptions{.max_memory_bytes = kLimit,
                      .reclaim_headroom_bytes = headroom});
    // Random pages are RAW: one frame each, so the limit is reached.
    for (uint64_t key = 0; key < 64; ++key) MustPut("vm", key, RandomPage(key));
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (StatsOf("vm").used_bytes + headroom > kLimit &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_LE(StatsOf("vm").used_bytes + headroom, kLimit)
        << "the headroom thread did not make room";
    const uint64_t waits_before = StatsOf("vm").room_waits;
    for (uint64_t key = 64; key < 64 + kHeadroomFrames / 2; ++key) {
      MustPut("vm", key, RandomPage(key));
    }
    return StatsOf("vm").room_waits - waits_before;
  }
};

TEST_F(HeadroomTest, WithoutOneEveryPutAtTheLimitWaits) {
  EXPECT_EQ(RoomWaitsAtTheLimit(0), kHeadroomFrames / 2);
  EXPECT_EQ(StatsOf("vm").evicted_headroom, 0u);
}

TEST_F(HeadroomTest, WithOnePutsAtTheLimitStoreWithoutWaiting) {
  EXPECT_EQ(RoomWaitsAtTheLimit(kHeadroomFrames * kPageSize), 0u);
  EXPECT_GT(StatsOf("vm").evicted_headroom, 0u);
}

TEST_F(PageStoreTest, TenantCapRefusesNewTenantsOnly) {
  Make(StoreOptions{.max_tenants = 2});
  MustPut("a", 1, TextPage(1));
  MustPut("b", 1, TextPage(2));
  absl::Status s = Put("c", 1, TextPage(3)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("--max_tenants"), absl::string_view::npos);
  EXPECT_EQ(store_->rejected_new_tenants(), 1u);
  MustPut("a", 2, TextPage(4));
  EXPECT_EQ(StatsOf("").tenants, 2u);
}

TEST_F(PageStoreTest, AZstdStoreKeepsCompressiblePagesAsZstd) {
  Make(StoreOptions{.codec = {.compressor = PageCompressor::kZstd}});
  const Page text = TextPage(1), noise = RandomPage(1);
  PutResult r = MustPut("vm", 1, text);
  EXPECT_EQ(r.encoding, PageEncoding::kZstd);
  EXPECT_GT(r.stored_bytes, 0u);
  EXPECT_EQ(MustPut("vm", 2, noise).encoding, PageEncoding::kRaw);
  EXPECT_EQ(MustPut("vm", 3, WordPage(7)).encoding, PageEncoding::kSameFilled);
  EXPECT_EQ(*GetPage("vm", 1), text);
  EXPECT_EQ(*GetPage("vm", 2), noise);
  const PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.zstd_pages, 1u);
  EXPECT_EQ(stats.lz4_pages, 0u);
  EXPECT_DOUBLE_EQ(stats.density(), 1.0);  // a buddy frame and a RAW frame
}

TEST_F(PageStoreTest, SameFilledPagesAreChargedForTheirIndexEntries) {
  // Room for the tenant and ten index entries, and no pool frame.
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(1, 0, 10)});
  watcher_.Unwatch();
  const Page zeros{};
  for (uint64_t key = 1; key <= 10; ++key) MustPut("vm", key, zeros);
  absl::Status refused = Put("vm", 11, zeros).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("server memory limit"),
            absl::string_view::npos)
      << refused;
  MustPut("vm", 10, zeros);  // a replaced key costs nothing more
  EXPECT_TRUE(*store_->Delete("vm", 1));
  MustPut("vm", 11, zeros);
}

TEST_F(PageStoreTest, ATenantCostsItsFixedBytes) {
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(2, 0, 2)});
  watcher_.Unwatch();
  const Page zeros{};
  MustPut("a", 1, zeros);
  MustPut("b", 1, zeros);
  absl::Status refused = Put("c", 1, zeros).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("no room for a new tenant"),
            absl::string_view::npos)
      << refused;
  // Once a tenant is empty it is retired to make room.
  EXPECT_TRUE(*store_->Delete("a", 1));
  MustPut("c", 1, zeros);
  EXPECT_EQ(store_->retired_tenants(), 1u);
}

TEST_F(PageStoreTest, AnEmptyTenantIsRetiredAtTheCapAndItsCountersKept) {
  Make(StoreOptions{.max_tenants = 2});
  watcher_.Unwatch();
  MustPut("a", 1, TextPage(1));
  EXPECT_EQ(Put("a", 2, Page{}).status().code(), absl::StatusCode::kOk);
  MustPut("b", 1, TextPage(2));
  EXPECT_TRUE(*store_->Delete("a", 1));
  EXPECT_TRUE(*store_->Delete("a", 2));
  MustPut("c", 1, TextPage(3));  // "a" holds nothing: retired for "c"
  EXPECT_EQ(store_->retired_tenants(), 1u);
  EXPECT_EQ(StatsOf("a").stored_pages, 0u);
  const PageStats total = StatsOf("");
  EXPECT_EQ(total.tenants, 2u);
  EXPECT_EQ(total.stored_pages, 2u);
  // "a" comes back as a new tenant, at the cost of another empty one: none.
  EXPECT_EQ(Put("a", 1, TextPage(4)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(PageStoreTest, ATenantWithWorkInFlightIsNotRetired) {
  Make(StoreOptions{.max_tenants = 2});
  MustPut("vm", 1, RandomPage(1));
  MustPut("other", 1, TextPage(1));
  absl::Status while_evicting;
  watcher_.on_deliver = [&](absl::string_view, uint64_t key) {
    // The page leaves the index, but the reclaim still holds the tenant.
    EXPECT_TRUE(*store_->Delete("vm", key));
    while_evicting = Put("new", 1, TextPage(2)).status();
    return absl::OkStatus();
  };
  ASSERT_TRUE(Reclaim("vm", 1).ok());
  EXPECT_EQ(while_evicting.code(), absl::StatusCode::kResourceExhausted)
      << while_evicting;
  // Once the reclaim lets go of "vm" (its last outcome's callback may still
  // be unwinding on the broker's side), "vm" goes.
  absl::Status after;
  for (int i = 0; i < 1000; ++i) {
    after = Put("new", 1, TextPage(2)).status();
    if (after.ok()) break;
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(after.ok()) << after;
  EXPECT_EQ(store_->retired_tenants(), 1u);
}

TEST_F(PageStoreTest, DeleteDuringEvictionIsNotFreedTwice) {
  for (uint64_t key = 1; key <= 3; ++key) MustPut("vm", key, RandomPage(key));
  watcher_.on_deliver = [&](absl::string_view, uint64_t key) {
    EXPECT_TRUE(*store_->Delete("vm", key));  // the client deletes it now
    return absl::OkStatus();
  };
  absl::StatusOr<ReclaimResult> r = Reclaim("vm", 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 1u);
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.stored_pages, 2u);
  EXPECT_EQ(stats.pool_pages, 2u);
}

TEST_F(PageStoreTest, PutDuringEvictionKeepsTheNewCopy) {
  MustPut("vm", 1, TextPage(1));
  MustPut("vm", 2, RandomPage(2));
  watcher_.on_deliver = [&](absl::string_view, uint64_t key) {
    if (key == 1) {
      EXPECT_TRUE(Put("vm", 1, TextPage(100)).ok());
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(Reclaim("vm", 1).ok());
  EXPECT_EQ(*GetPage("vm", 1), TextPage(100));
}

// The copy of a key a watcher acks last is what its backing store keeps, so
// an older copy must never be delivered after a newer one. Here the client
// stores a new copy while the old one is being delivered, and a second
// reclaim (nested, to make the interleaving certain) reaches the new copy
// before the first delivery is acked.
TEST_F(PageStoreTest, AnOlderCopyIsNeverAckedAfterANewerOne) {
  MustPut("vm", 1, TextPage(1));
  bool first_delivery = true;
  watcher_.on_deliver = [&](absl::string_view, uint64_t) {
    if (std::exchange(first_delivery, false)) {
      MustPut("vm", 1, RandomPage(2));
      absl::StatusOr<ReclaimResult> nested = Reclaim("vm", 1);
      EXPECT_TRUE(nested.ok()) << nested.status();
      EXPECT_EQ(nested->evicted_pages, 0u)
          << "the new copy was evicted while the old one was in flight";
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(Reclaim("vm", 1).ok());
  ASSERT_EQ(watcher_.delivered().size(), 1u);
  EXPECT_EQ(watcher_.delivered()[0].page, TextPage(1));
  EXPECT_EQ(*GetPage("vm", 1), RandomPage(2));
  // The nested reclaim tried the one frame kTriesPerFrame times.
  EXPECT_EQ(StatsOf("vm").deliveries_refused, Reclaimer::kTriesPerFrame);

  // Once the old copy is acked, the new one can go.
  ASSERT_EQ(Reclaim("vm", 1)->evicted_pages, 1u);
  ASSERT_EQ(watcher_.delivered().size(), 2u);
  EXPECT_EQ(watcher_.delivered()[1].page, RandomPage(2));
  EXPECT_EQ(GetPage("vm", 1).status().code(), absl::StatusCode::kNotFound);
}

// The same for a drain, whose same-filled pages take a path of their own.
TEST_F(PageStoreTest, DrainNeverAcksAnOlderSameFilledCopyAfterANewerOne) {
  MustPut("vm", 1, WordPage(7));
  bool first_delivery = true;
  watcher_.on_deliver = [&](absl::string_view, uint64_t) {
    if (std::exchange(first_delivery, false)) {
      MustPut("vm", 1, TextPage(3));
      EXPECT_EQ(Reclaim("vm", 1)->evicted_pages, 0u)
          << "the new copy was evicted while the old one was in flight";
    }
    return absl::OkStatus();
  };
  store_->DrainToWatchers(absl::InfiniteFuture());
  ASSERT_EQ(watcher_.delivered().size(), 1u);
  EXPECT_EQ(watcher_.delivered()[0].page, WordPage(7));
  EXPECT_EQ(*GetPage("vm", 1), TextPage(3));

  PageStore::DrainReport second =
      store_->DrainToWatchers(absl::InfiniteFuture());
  EXPECT_EQ(second.drained_pages, 1u);
  ASSERT_EQ(watcher_.delivered().size(), 2u);
  EXPECT_EQ(watcher_.delivered()[1].page, TextPage(3));
  EXPECT_TRUE(second.left.empty());
}

TEST_F(PageStoreTest, DrainEvictsEverythingAndReportsWhatIsLeft) {
  for (uint64_t key = 1; key <= 40; ++key) {
    MustPut("vm", key, key % 4 == 0 ? WordPage(key) : TextPage(key));
  }
  MustPut("unwatched", 1, TextPage(1));
  PageStore::DrainReport report =
      store_->DrainToWatchers(absl::InfiniteFuture());
  EXPECT_EQ(report.drained_pages, 40u);
  EXPECT_EQ(StatsOf("vm").stored_pages, 0u);
  EXPECT_EQ(StatsOf("vm").pool_pages, 0u);
  ASSERT_EQ(report.left.size(), 1u);
  EXPECT_EQ(report.left[0].tenant, "unwatched");
  EXPECT_EQ(report.left[0].pages, 1u);
  EXPECT_FALSE(report.left[0].watched);
  EXPECT_EQ(watcher_.delivered().size(), 40u);
}

// A Put's result, whenever it comes.
struct LaterPut {
  Notification finished;
  std::optional<absl::StatusOr<PutResult>> result;
};

std::shared_ptr<LaterPut> PutLater(PageStore& store, absl::string_view tenant,
                                   uint64_t key, const Page& page,
                                   PutOptions options = {}) {
  auto later = std::make_shared<LaterPut>();
  std::optional<absl::StatusOr<PutResult>> now =
      store.Put(tenant, key, page, options, [&]() -> PutDone {
        return [later](absl::StatusOr<PutResult> r) {
          later->result = std::move(r);
          later->finished.Notify();
        };
      });
  if (now.has_value()) {
    later->result = std::move(now);
    later->finished.Notify();
  }
  return later;
}

TEST_F(PageStoreTest, ABusyTenantIsEvictedForANewcomerDownToItsShare) {
  // Room for 60 frames; "vm" fills it all, then "vm-b" comes.
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(2, 60, 200)});
  ScriptedWatcher b_watcher(&broker_);
  b_watcher.WatchTenant("vm-b");
  for (int key = 1; key <= 200; ++key) MustPut("vm", key, RandomPage(key));
  const uint64_t a_evicted_alone = StatsOf("vm").evicted_pages;
  EXPECT_GT(a_evicted_alone, 0u);  // it made room from its own LRU
  for (int key = 1; key <= 25; ++key) {
    MustPut("vm-b", key, RandomPage(1000 + key));
  }
  const PageStats a = StatsOf("vm"), b = StatsOf("vm-b");
  EXPECT_EQ(b.stored_pages, 25u);
  EXPECT_EQ(b.evicted_pages, 0u);  // below its share: never evicted
  EXPECT_GE(a.evicted_pages - a_evicted_alone, 25u);
  EXPECT_EQ(a.evicted_server_limit, a.evicted_pages);
  // Nothing of A is lost: each page is readable or was acked to its watcher.
  std::set<uint64_t> acked;
  for (const Delivered& d : watcher_.delivered()) {
    EXPECT_EQ(d.page, RandomPage(static_cast<int>(d.key)));
    acked.insert(d.key);
  }
  for (int key = 1; key <= 200; ++key) {
    absl::StatusOr<Page> page = GetPage("vm", key);
    if (page.ok()) {
      EXPECT_EQ(*page, RandomPage(key));
    } else {
      EXPECT_TRUE(acked.contains(key)) << key;
    }
  }
}

TEST_F(PageStoreTest, ATenantWithinItsShareIsNotEvictedForAnother) {
  // 90 frames: "vm" takes 20, the hog fills the rest, a newcomer takes 20.
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(3, 90, 300)});
  ScriptedWatcher hog(&broker_), newcomer(&broker_);
  hog.WatchTenant("hog");
  newcomer.WatchTenant("new");
  for (int key = 1; key <= 20; ++key) MustPut("vm", key, RandomPage(key));
  for (int key = 1; key <= 150; ++key) MustPut("hog", key, RandomPage(key));
  for (int key = 1; key <= 20; ++key) MustPut("new", key, RandomPage(key));
  EXPECT_EQ(StatsOf("vm").evicted_pages, 0u);
  EXPECT_EQ(StatsOf("vm").stored_pages, 20u);
  EXPECT_EQ(StatsOf("new").stored_pages, 20u);
  EXPECT_GT(StatsOf("hog").evicted_server_limit, 0u);
}

TEST_F(PageStoreTest, AHogWithoutAWatcherIsPassedOverForTheNextAboveShare) {
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(3, 300, 600)});
  watcher_.Unwatch();
  ScriptedWatcher second(&broker_), newcomer(&broker_);
  second.WatchTenant("second");
  newcomer.WatchTenant("new");
  for (int key = 1; key <= 250; ++key) MustPut("second", key, RandomPage(key));
  // The hog takes room from "second" down to its share, then is refused:
  // it has no watcher to evict to.
  int hog_pages = 0;
  while (Put("hog", hog_pages + 1, RandomPage(hog_pages + 1)).ok()) {
    ++hog_pages;
  }
  ASSERT_GT(hog_pages, 20);
  for (int key = 1; key <= 10; ++key) MustPut("new", key, RandomPage(key));
  EXPECT_EQ(StatsOf("hog").stored_pages, uint64_t(hog_pages));  // untouched
  EXPECT_GT(StatsOf("second").evicted_server_limit, 0u);
  for (int key = 1; key <= hog_pages; ++key) {
    EXPECT_EQ(*GetPage("hog", key), RandomPage(key));
  }
}

TEST_F(PageStoreTest, WithNobodyAbleToGiveRoomAPutIsRefusedAndNothingLost) {
  Make(StoreOptions{.max_memory_bytes = PageStore::MemoryFor(2, 10, 40)});
  watcher_.Unwatch();
  int a = 0, b = 0;
  while (Put("a", a + 1, RandomPage(a + 1)).ok()) ++a;
  absl::StatusOr<PutResult> refused = Put("b", 1, RandomPage(7));
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status()));
  EXPECT_NE(refused.status().message().find("above its share"),
            std::string::npos)
      << refused.status();
  while (Put("b", b + 1, RandomPage(b + 1)).ok()) ++b;
  EXPECT_EQ(b, 0);
  EXPECT_GE(store_->rejected_new_tenants(), 1u);
  EXPECT_EQ(StatsOf("a").stored_pages, uint64_t(a));
  for (int key = 1; key <= a; ++key) {
    EXPECT_EQ(*GetPage("a", key), RandomPage(key));
  }
}

// The zombie Put: a Put waits for room while its eviction's ack is held
// back; a later write of the key comes; the held ack then lets room be
// made. The old Put must store nothing.
class ZombiePutTest : public PageStoreTest {
 protected:
  void SetUp() override {
    // Two frames, each holding one incompressible page: a waiting Put
    // takes one frame under reclaim, so two can wait at once.
    Make(StoreOptions{.tenant_max_bytes = 2 * kPageSize});
    watcher_.on_deliver = [this](absl::string_view, uint64_t) {
      release_.WaitForNotification();
      return absl::OkStatus();
    };
    watcher_.Watch();
    MustPut("vm", 1, RandomPage(1));
    MustPut("vm", 3, RandomPage(3));
  }
  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    PageStoreTest::TearDown();
  }
  Notification release_;
};

TEST_F(ZombiePutTest, ADeleteWhileItWaitsWins) {
  auto old_put = PutLater(*store_, "vm", 1, RandomPage(2));
  ASSERT_FALSE(old_put->finished.HasBeenNotified());  // waiting for room
  EXPECT_TRUE(*store_->Delete("vm", 1));
  release_.Notify();
  old_put->finished.WaitForNotification();
  EXPECT_TRUE(absl::IsAborted(old_put->result->status()))
      << old_put->result->status();
  EXPECT_TRUE(absl::IsNotFound(GetPage("vm", 1).status()));
  EXPECT_EQ(StatsOf("vm").rejected_puts_abandoned, 1u);
}

TEST_F(ZombiePutTest, DeleteAllWhileItWaitsWins) {
  auto old_put = PutLater(*store_, "vm", 2, RandomPage(2));
  ASSERT_FALSE(old_put->finished.HasBeenNotified());
  EXPECT_EQ(*store_->DeleteAll("vm"), 2u);
  release_.Notify();
  old_put->finished.WaitForNotification();
  EXPECT_TRUE(absl::IsAborted(old_put->result->status()));
  EXPECT_TRUE(absl::IsNotFound(GetPage("vm", 2).status()));
  EXPECT_EQ(StatsOf("vm").stored_pages, 0u);
}

TEST_F(ZombiePutTest, ANewerPutOfTheKeyWins) {
  auto old_put = PutLater(*store_, "vm", 2, RandomPage(2));
  auto new_put = PutLater(*store_, "vm", 2, RandomPage(3));
  ASSERT_FALSE(old_put->finished.HasBeenNotified());
  release_.Notify();
  old_put->finished.WaitForNotification();
  new_put->finished.WaitForNotification();
  EXPECT_TRUE(absl::IsAborted(old_put->result->status()));
  ASSERT_TRUE(new_put->result->ok()) << new_put->result->status();
  EXPECT_EQ(*GetPage("vm", 2), RandomPage(3));
}

TEST_F(ZombiePutTest, APutWhoseDeadlinePassedWhileItWaitedNeverLands) {
  auto old_put =
      PutLater(*store_, "vm", 2, RandomPage(2),
               PutOptions{.deadline = absl::Now() + absl::Milliseconds(50)});
  absl::SleepFor(absl::Milliseconds(100));
  release_.Notify();
  old_put->finished.WaitForNotification();
  EXPECT_TRUE(absl::IsDeadlineExceeded(old_put->result->status()))
      << old_put->result->status();
  EXPECT_TRUE(absl::IsNotFound(GetPage("vm", 2).status()));
}

TEST_F(ZombiePutTest, ACancelledPutNeverLands) {
  std::atomic<bool> cancelled{false};
  auto old_put = PutLater(
      *store_, "vm", 2, RandomPage(2),
      PutOptions{.cancelled = [&cancelled] { return cancelled.load(); }});
  cancelled = true;
  release_.Notify();
  old_put->finished.WaitForNotification();
  EXPECT_TRUE(absl::IsCancelled(old_put->result->status()));
  EXPECT_TRUE(absl::IsNotFound(GetPage("vm", 2).status()));
}

}  // namespace
}  // namespace zpaged
