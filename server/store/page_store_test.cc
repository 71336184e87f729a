#include "server/store/page_store.h"

#include <array>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/page.h"

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

// An EvictionSink whose behaviour each test scripts.
class FakeSink : public EvictionSink {
 public:
  bool watching = true;
  // Runs before a delivery is decided; returns the delivery's outcome.
  std::function<absl::Status(absl::string_view, uint64_t)> on_deliver;
  std::vector<Delivered> delivered;

  bool CanAccept(absl::string_view) override { return watching; }
  absl::Status Deliver(absl::string_view tenant, uint64_t key,
                       absl::Span<const uint8_t> page) override {
    if (!watching) return absl::UnavailableError("no watcher");
    if (on_deliver) {
      if (absl::Status s = on_deliver(tenant, key); !s.ok()) return s;
    }
    Delivered d{std::string(tenant), key, {}};
    std::copy(page.begin(), page.end(), d.page.begin());
    delivered.push_back(d);
    return absl::OkStatus();
  }
};

class PageStoreTest : public ::testing::Test {
 protected:
  void Make(StoreOptions options) {
    store_ = std::make_unique<PageStore>(options, &sink_);
  }
  void SetUp() override { Make(StoreOptions{}); }

  PutResult MustPut(absl::string_view tenant, uint64_t key, const Page& page) {
    absl::StatusOr<PutResult> r = store_->Put(tenant, key, page, true);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(PutResult{});
  }
  absl::StatusOr<Page> GetPage(absl::string_view tenant, uint64_t key) {
    Page out;
    absl::Status s = store_->Get(tenant, key, absl::MakeSpan(out));
    if (!s.ok()) return s;
    return out;
  }
  PageStats StatsOf(absl::string_view tenant) {
    return store_->Stats(tenant).value();
  }

  FakeSink sink_;
  std::unique_ptr<PageStore> store_;
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
    EXPECT_EQ(store_->Put(bad, 1, page, true).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(GetPage(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Delete(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Reclaim(bad, 1).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_->Put(std::string(128, 'a'), 1, page, true).ok());
  EXPECT_TRUE(store_->Put("A-z_0.9", 1, page, true).ok());

  MustPut("vm", 1, page);
  EXPECT_EQ(store_->Put("vm", 1, absl::MakeConstSpan(page.data(), 4095), true)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> long_page(kPageSize + 1);
  EXPECT_EQ(store_->Put("vm", 2, long_page, true).status().code(),
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
  sink_.watching = false;
  EXPECT_EQ(store_->Reclaim("vm", 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*GetPage("vm", 1), TextPage(1));
}

TEST_F(PageStoreTest, ReclaimDeliversLeastRecentPagesThenDropsThem) {
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  MustPut("other", 1, RandomPage(99));
  absl::StatusOr<ReclaimResult> r = store_->Reclaim("vm", 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 2u);
  EXPECT_EQ(r->evicted_pages, 2u);
  ASSERT_EQ(sink_.delivered.size(), 2u);
  for (const Delivered& d : sink_.delivered) {
    EXPECT_EQ(d.tenant, "vm");
    EXPECT_EQ(d.page, RandomPage(d.key));
    EXPECT_EQ(GetPage("vm", d.key).status().code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(sink_.delivered[0].key, 1u);  // LRU tail first
  EXPECT_EQ(sink_.delivered[1].key, 2u);
  EXPECT_EQ(*GetPage("vm", 3), RandomPage(3));
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.evicted_pages, 2u);
  EXPECT_EQ(stats.reclaimed_pool_pages, 2u);
  EXPECT_EQ(stats.stored_pages, 2u);
  EXPECT_EQ(*GetPage("other", 1), RandomPage(99));
}

TEST_F(PageStoreTest, RefusedEvictionsKeepEveryPage) {
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, TextPage(key));
  sink_.on_deliver = [](absl::string_view, uint64_t) {
    return absl::DeadlineExceededError("no ack");
  };
  absl::StatusOr<ReclaimResult> r = store_->Reclaim("vm", 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 0u);
  EXPECT_EQ(r->evicted_pages, 0u);
  for (uint64_t key = 1; key <= 4; ++key) {
    EXPECT_EQ(*GetPage("vm", key), TextPage(key));
  }
}

TEST_F(PageStoreTest, FullTenantEvictsToAWatcherToMakeRoom) {
  Make(StoreOptions{.tenant_max_bytes = 4 * kPageSize});
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  PutResult r = MustPut("vm", 5, RandomPage(5));
  EXPECT_EQ(r.encoding, PageEncoding::kRaw);
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].key, 1u);
  EXPECT_EQ(sink_.delivered[0].page, RandomPage(1));
  EXPECT_EQ(*GetPage("vm", 5), RandomPage(5));
  EXPECT_EQ(StatsOf("vm").pool_pages, 4u);
}

TEST_F(PageStoreTest, FullTenantWithoutWatcherRefusesAndLosesNothing) {
  Make(StoreOptions{.tenant_max_bytes = 4 * kPageSize});
  for (uint64_t key = 1; key <= 4; ++key) MustPut("vm", key, RandomPage(key));
  sink_.watching = false;
  absl::StatusOr<PutResult> r = store_->Put("vm", 5, RandomPage(5), true);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("no eviction watcher"),
            absl::string_view::npos)
      << r.status();
  // Replacing an existing key needs room for the new copy too.
  EXPECT_EQ(store_->Put("vm", 1, RandomPage(50), true).status().code(),
            absl::StatusCode::kResourceExhausted);
  for (uint64_t key = 1; key <= 4; ++key) {
    EXPECT_EQ(*GetPage("vm", key), RandomPage(key));
  }
  EXPECT_EQ(StatsOf("vm").rejected_puts_limit, 2u);
  // Same-filled pages cost no pool memory, so they still go in.
  EXPECT_TRUE(store_->Put("vm", 6, WordPage(0), true).ok());
}

TEST_F(PageStoreTest, FullTenantWhoseWatcherNeverAcksRefuses) {
  Make(StoreOptions{.tenant_max_bytes = 2 * kPageSize});
  MustPut("vm", 1, RandomPage(1));
  MustPut("vm", 2, RandomPage(2));
  sink_.on_deliver = [](absl::string_view, uint64_t) {
    return absl::DeadlineExceededError("ack deadline passed");
  };
  EXPECT_EQ(store_->Put("vm", 3, RandomPage(3), true).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*GetPage("vm", 1), RandomPage(1));
  EXPECT_EQ(*GetPage("vm", 2), RandomPage(2));
}

TEST_F(PageStoreTest, NonBlockingPutDoesNotReclaim) {
  Make(StoreOptions{.tenant_max_bytes = kPageSize});
  MustPut("vm", 1, RandomPage(1));
  EXPECT_EQ(store_->Put("vm", 2, RandomPage(2), false).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(sink_.delivered.empty());
  EXPECT_TRUE(store_->CanReclaim("vm"));
}

TEST_F(PageStoreTest, ServerWideLimitIsSharedByTenants) {
  Make(StoreOptions{.max_memory_bytes = 3 * kPageSize});
  sink_.watching = false;
  MustPut("a", 1, RandomPage(1));
  MustPut("a", 2, RandomPage(2));
  MustPut("b", 1, RandomPage(3));
  EXPECT_EQ(store_->Put("b", 2, RandomPage(4), true).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(*store_->Delete("a", 1));
  EXPECT_TRUE(store_->Put("b", 2, RandomPage(4), true).ok());
}

TEST_F(PageStoreTest, TenantCapRefusesNewTenantsOnly) {
  Make(StoreOptions{.max_tenants = 2});
  MustPut("a", 1, TextPage(1));
  MustPut("b", 1, TextPage(2));
  absl::Status s = store_->Put("c", 1, TextPage(3), true).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("--max_tenants"), absl::string_view::npos);
  EXPECT_EQ(store_->rejected_new_tenants(), 1u);
  MustPut("a", 2, TextPage(4));
  EXPECT_EQ(StatsOf("").tenants, 2u);
}

TEST_F(PageStoreTest, DeleteDuringEvictionIsNotFreedTwice) {
  for (uint64_t key = 1; key <= 3; ++key) MustPut("vm", key, RandomPage(key));
  sink_.on_deliver = [&](absl::string_view, uint64_t key) {
    EXPECT_TRUE(*store_->Delete("vm", key));  // the client deletes it now
    return absl::OkStatus();
  };
  absl::StatusOr<ReclaimResult> r = store_->Reclaim("vm", 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reclaimed_pool_pages, 1u);
  PageStats stats = StatsOf("vm");
  EXPECT_EQ(stats.stored_pages, 2u);
  EXPECT_EQ(stats.pool_pages, 2u);
}

TEST_F(PageStoreTest, PutDuringEvictionKeepsTheNewCopy) {
  MustPut("vm", 1, TextPage(1));
  MustPut("vm", 2, RandomPage(2));
  sink_.on_deliver = [&](absl::string_view, uint64_t key) {
    if (key == 1) {
      EXPECT_TRUE(store_->Put("vm", 1, TextPage(100), true).ok());
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(store_->Reclaim("vm", 1).ok());
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
  sink_.on_deliver = [&](absl::string_view, uint64_t) {
    if (std::exchange(first_delivery, false)) {
      MustPut("vm", 1, RandomPage(2));
      absl::StatusOr<ReclaimResult> nested = store_->Reclaim("vm", 1);
      EXPECT_TRUE(nested.ok()) << nested.status();
      EXPECT_EQ(nested->evicted_pages, 0u)
          << "the new copy was evicted while the old one was in flight";
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(store_->Reclaim("vm", 1).ok());
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].page, TextPage(1));
  EXPECT_EQ(*GetPage("vm", 1), RandomPage(2));

  // Once the old copy is acked, the new one can go.
  ASSERT_EQ(store_->Reclaim("vm", 1)->evicted_pages, 1u);
  ASSERT_EQ(sink_.delivered.size(), 2u);
  EXPECT_EQ(sink_.delivered[1].page, RandomPage(2));
  EXPECT_EQ(GetPage("vm", 1).status().code(), absl::StatusCode::kNotFound);
}

// The same for a drain, whose same-filled pages take a path of their own.
TEST_F(PageStoreTest, DrainNeverAcksAnOlderSameFilledCopyAfterANewerOne) {
  MustPut("vm", 1, WordPage(7));
  bool first_delivery = true;
  sink_.on_deliver = [&](absl::string_view, uint64_t) {
    if (std::exchange(first_delivery, false)) {
      MustPut("vm", 1, TextPage(3));
      EXPECT_EQ(store_->Reclaim("vm", 1)->evicted_pages, 0u)
          << "the new copy was evicted while the old one was in flight";
    }
    return absl::OkStatus();
  };
  store_->DrainToWatchers();
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].page, WordPage(7));
  EXPECT_EQ(*GetPage("vm", 1), TextPage(3));

  PageStore::DrainReport second = store_->DrainToWatchers();
  EXPECT_EQ(second.drained_pages, 1u);
  ASSERT_EQ(sink_.delivered.size(), 2u);
  EXPECT_EQ(sink_.delivered[1].page, TextPage(3));
  EXPECT_TRUE(second.left.empty());
}

}  // namespace
}  // namespace zpaged
