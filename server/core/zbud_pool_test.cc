#include "server/core/zbud_pool.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/testing/zpool_shrink.h"

namespace zpaged {
namespace {

uintptr_t FrameOf(const MappedAllocation& m) {
  return reinterpret_cast<uintptr_t>(m.data) & ~(uintptr_t{kPageSize} - 1);
}

// A pool plus a scriptable evict callback that records what it was asked.
class ZbudPoolTest : public ::testing::Test {
 protected:
  // What the callback does with the next handle; default: accept.
  std::function<absl::Status(ZpoolHandle)> on_evict_;
  std::vector<ZpoolHandle> evicted_;
  std::unique_ptr<ZbudPool> pool_;

  void SetUp() override { pool_ = MakePool(ArenaOptions{}); }

  std::unique_ptr<ZbudPool> MakePool(const ArenaOptions& arena) {
    ZpoolOptions options;
    options.arena = arena;
    return std::make_unique<ZbudPool>(std::move(options));
  }

  absl::Status Evict(ZpoolHandle handle) {
    evicted_.push_back(handle);
    if (on_evict_) return on_evict_(handle);
    return pool_->Free(handle);
  }
  uint32_t ShrinkBy(uint32_t frames) {
    return Shrink(*pool_, frames,
                  [this](ZpoolHandle handle) { return Evict(handle); });
  }
  absl::Status ReclaimOne(uint32_t retries) {
    return ReclaimOneFrame(
        *pool_, retries, [this](ZpoolHandle handle) { return Evict(handle); });
  }

  ZpoolHandle Alloc(size_t size) {
    absl::StatusOr<ZpoolHandle> handle = pool_->Allocate(size);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.value_or(0);
  }
  MappedAllocation MapOf(ZpoolHandle handle) {
    absl::StatusOr<MappedAllocation> m = pool_->Map(handle);
    EXPECT_TRUE(m.ok()) << m.status();
    pool_->Unmap(handle);
    return m.value_or(MappedAllocation{});
  }
  uint64_t Frames() { return pool_->Stats().pool_frames; }
  void ExpectConsistent() {
    EXPECT_TRUE(pool_->CheckConsistency().ok()) << pool_->CheckConsistency();
  }
};

TEST_F(ZbudPoolTest, GeometryConstants) {
  EXPECT_EQ(kZbudChunkSize, 64u);
  EXPECT_EQ(kZbudChunks, 63);
  EXPECT_EQ(kZbudMaxAllocation, 3968u);
  EXPECT_EQ(pool_->MaxAllocationSize(), 3968u);
}

TEST_F(ZbudPoolTest, SizeZeroIsInvalidAndOneByteTooBigIsOutOfRange) {
  EXPECT_EQ(pool_->Allocate(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->Allocate(3969).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(pool_->Allocate(kPageSize).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Frames(), 0u);
}

TEST_F(ZbudPoolTest, ChunkArithmeticAtTheEdges) {
  struct Case {
    size_t size;
    size_t capacity;
  };
  for (Case c :
       {Case{1, 64}, Case{63, 64}, Case{64, 64}, Case{65, 128}, Case{128, 128},
        Case{129, 192}, Case{3905, 3968}, Case{3968, 3968}}) {
    ZpoolHandle handle = Alloc(c.size);
    EXPECT_EQ(MapOf(handle).capacity, c.capacity) << "size " << c.size;
    ASSERT_TRUE(pool_->Free(handle).ok());
  }
  EXPECT_EQ(Frames(), 0u);
}

TEST_F(ZbudPoolTest, FirstBuddyFollowsHeaderLastIsRightJustified) {
  ZpoolHandle first = Alloc(1000);
  ZpoolHandle last = Alloc(700);
  MappedAllocation a = MapOf(first);
  MappedAllocation b = MapOf(last);
  ASSERT_EQ(FrameOf(a), FrameOf(b));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) - FrameOf(a), kZbudHeaderSize);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data) + b.capacity,
            FrameOf(b) + kPageSize);
  EXPECT_EQ(Frames(), 1u);
}

TEST_F(ZbudPoolTest, TwoBuddiesShareAFrameOnlyWhenTheirChunksFit) {
  // 31 + 32 chunks = 63: fits exactly.
  ZpoolHandle a = Alloc(31 * 64);
  ZpoolHandle b = Alloc(32 * 64);
  EXPECT_EQ(FrameOf(MapOf(a)), FrameOf(MapOf(b)));
  // 32 + 32 chunks do not.
  ZpoolHandle c = Alloc(32 * 64);
  ZpoolHandle d = Alloc(32 * 64);
  EXPECT_NE(FrameOf(MapOf(c)), FrameOf(MapOf(d)));
  EXPECT_EQ(Frames(), 3u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, NeverMoreThanTwoBuddiesInAFrame) {
  for (int i = 0; i < 6; ++i) Alloc(1);
  EXPECT_EQ(Frames(), 3u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, AllocationIsBestFit) {
  // Frame X keeps 40 free chunks, frame Y 20.
  ZpoolHandle x = Alloc(23 * 64);
  ZpoolHandle y = Alloc(43 * 64);
  ASSERT_NE(FrameOf(MapOf(x)), FrameOf(MapOf(y)));
  // 15 chunks fit both; best fit picks Y, the one with the fewest free.
  ZpoolHandle z = Alloc(15 * 64);
  EXPECT_EQ(FrameOf(MapOf(z)), FrameOf(MapOf(y)));
  // 30 chunks fit only X now.
  ZpoolHandle w = Alloc(30 * 64);
  EXPECT_EQ(FrameOf(MapOf(w)), FrameOf(MapOf(x)));
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, FreeingEitherBuddyLeavesOneContiguousRegion) {
  ZpoolHandle first = Alloc(20 * 64);
  ZpoolHandle last = Alloc(40 * 64);
  ASSERT_TRUE(pool_->Free(first).ok());
  // The freed 20 chunks and the 3 of slack make one 23-chunk region.
  ZpoolHandle refill = Alloc(23 * 64);
  EXPECT_EQ(FrameOf(MapOf(refill)), FrameOf(MapOf(last)));
  EXPECT_EQ(Frames(), 1u);
  ASSERT_TRUE(pool_->Free(last).ok());
  ZpoolHandle other = Alloc(40 * 64);
  EXPECT_EQ(FrameOf(MapOf(other)), FrameOf(MapOf(refill)));
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, FrameIsReleasedWhenItsLastBuddyIsFreed) {
  ZpoolHandle a = Alloc(100);
  ZpoolHandle b = Alloc(100);
  ASSERT_TRUE(pool_->Free(a).ok());
  EXPECT_EQ(Frames(), 1u);
  ASSERT_TRUE(pool_->Free(b).ok());
  EXPECT_EQ(Frames(), 0u);
  EXPECT_EQ(pool_->TotalSizeBytes(), 0u);
  EXPECT_EQ(pool_->Stats().arena.frames_in_use, 0u);
}

TEST_F(ZbudPoolTest, DataSurvivesNeighbourTraffic) {
  ZpoolHandle a = Alloc(1500);
  std::memset(MapOf(a).data, 0x11, 1500);
  ZpoolHandle b = Alloc(2400);
  std::memset(MapOf(b).data, 0x22, 2400);
  ASSERT_TRUE(pool_->Free(b).ok());
  ZpoolHandle c = Alloc(2400);
  std::memset(MapOf(c).data, 0x33, 2400);
  const uint8_t* bytes = MapOf(a).data;
  for (int i = 0; i < 1500; ++i) ASSERT_EQ(bytes[i], 0x11) << i;
}

TEST_F(ZbudPoolTest, StaleForeignAndGarbageHandlesAreRejected) {
  ZpoolHandle live = Alloc(100);
  ZpoolHandle freed = Alloc(100);
  ASSERT_TRUE(pool_->Free(freed).ok());
  EXPECT_EQ(pool_->Free(freed).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->Map(freed).status().code(), absl::StatusCode::kNotFound);

  std::unique_ptr<ZbudPool> other = MakePool(ArenaOptions{});
  absl::StatusOr<ZpoolHandle> foreign = other->Allocate(100);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(pool_->Free(*foreign).code(), absl::StatusCode::kNotFound);

  const ZpoolHandle garbage_handles[] = {
      0,        ~ZpoolHandle{0},   live ^ (ZpoolHandle{1} << 40),
      live + 1, live & 0xFFFFFFFF, 0xDEADBEEFCAFEF00D};
  for (ZpoolHandle garbage : garbage_handles) {
    EXPECT_EQ(pool_->Free(garbage).code(), absl::StatusCode::kNotFound)
        << std::hex << garbage;
    EXPECT_FALSE(pool_->Map(garbage).ok());
  }
  EXPECT_TRUE(pool_->Map(live).ok());
  EXPECT_EQ(pool_->Stats().allocations, 1u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, ReusedSlotDoesNotRevalidateOldHandle) {
  ZpoolHandle old = Alloc(100);
  uint8_t* old_data = MapOf(old).data;
  ASSERT_TRUE(pool_->Free(old).ok());
  ZpoolHandle reused = Alloc(100);
  ASSERT_EQ(MapOf(reused).data, old_data);  // same frame, same slot
  EXPECT_NE(old, reused);
  EXPECT_EQ(pool_->Free(old).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(pool_->Free(reused).ok());
}

TEST_F(ZbudPoolTest, WholeFrameTakesAFrameAndIsOnTheLru) {
  absl::StatusOr<ZpoolHandle> whole = pool_->AllocateWholeFrame();
  ASSERT_TRUE(whole.ok());
  MappedAllocation m = MapOf(*whole);
  EXPECT_EQ(m.capacity, kPageSize);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.data) % kPageSize, 0u);
  std::memset(m.data, 0x7E, kPageSize);
  EXPECT_EQ(Frames(), 1u);
  ZpoolHandle small = Alloc(64);  // never placed in a whole frame
  EXPECT_EQ(Frames(), 2u);
  EXPECT_EQ(pool_->Stats().whole_frame_allocations, 1u);

  EXPECT_EQ(ShrinkBy(1), 1u);
  EXPECT_EQ(evicted_, std::vector<ZpoolHandle>{*whole});
  EXPECT_EQ(Frames(), 1u);
  EXPECT_TRUE(pool_->Map(small).ok());
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, ReclaimTakesTheLeastRecentlyAllocatedFrame) {
  ZpoolHandle a = Alloc(2000);  // leaves 31 free chunks
  ZpoolHandle b = Alloc(3000);  // leaves 16
  Alloc(3000);
  // Only a's frame has room for 19 chunks; the allocation moves it to the
  // LRU head, so b's frame is now the oldest.
  ZpoolHandle a2 = Alloc(1200);
  ASSERT_EQ(FrameOf(MapOf(a2)), FrameOf(MapOf(a)));
  ASSERT_EQ(ShrinkBy(1), 1u);
  EXPECT_EQ(evicted_, std::vector<ZpoolHandle>{b});
  EXPECT_EQ(pool_->Map(b).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, ReclaimEvictsBothBuddiesAndReleasesTheFrame) {
  ZpoolHandle a = Alloc(1000);
  ZpoolHandle b = Alloc(1000);
  ASSERT_EQ(ShrinkBy(1), 1u);
  EXPECT_EQ(evicted_, (std::vector<ZpoolHandle>{a, b}));
  EXPECT_EQ(Frames(), 0u);
  EXPECT_EQ(pool_->Stats().allocations, 0u);
}

TEST_F(ZbudPoolTest, RefusedFrameGoesBackToTheHeadAndTheNextIsTried) {
  ZpoolHandle oldest = Alloc(3000);
  ZpoolHandle newer = Alloc(3000);
  on_evict_ = [&](ZpoolHandle h) {
    if (h == oldest) return absl::UnavailableError("not now");
    return pool_->Free(h);
  };
  ASSERT_TRUE(ReclaimOne(8).ok());
  EXPECT_EQ(evicted_, (std::vector<ZpoolHandle>{oldest, newer}));
  EXPECT_TRUE(pool_->Map(oldest).ok());
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, ReclaimGivesUpAfterRetriesAndKeepsEverything) {
  ZpoolHandle a = Alloc(3000);
  ZpoolHandle b = Alloc(3000);
  on_evict_ = [](ZpoolHandle) { return absl::UnavailableError("refused"); };
  EXPECT_EQ(ReclaimOne(3).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(evicted_.size(), 3u);  // b's frame, a's frame, b's frame again
  EXPECT_EQ(ShrinkBy(5), 0u);
  EXPECT_TRUE(pool_->Map(a).ok());
  EXPECT_TRUE(pool_->Map(b).ok());
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, PartialEvictionKeepsTheFrameWithOneBuddy) {
  ZpoolHandle first = Alloc(1000);
  ZpoolHandle last = Alloc(1000);
  on_evict_ = [&](ZpoolHandle h) {
    if (h == last) return absl::UnavailableError("keep");
    return pool_->Free(h);
  };
  EXPECT_EQ(ReclaimOne(1).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(pool_->Map(first).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(pool_->Map(last).ok());
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
  // The freed first slot is usable again.
  ZpoolHandle refill = Alloc(1000);
  EXPECT_EQ(FrameOf(MapOf(refill)), FrameOf(MapOf(last)));
}

TEST_F(ZbudPoolTest, FreeDuringReclaimOnlyClearsTheSizeAndReclaimReleases) {
  ZpoolHandle first = Alloc(1000);
  ZpoolHandle last = Alloc(1000);
  // While `first` is being evicted, someone else frees `last` (a client's
  // Delete racing the reclaim); the frame must not be released under the
  // reclaimer's feet, and must be released by it once both are gone.
  on_evict_ = [&](ZpoolHandle h) -> absl::Status {
    if (h == first) {
      EXPECT_TRUE(pool_->Free(last).ok());
      EXPECT_EQ(Frames(), 1u);
      EXPECT_EQ(pool_->Stats().frames_under_reclaim, 1u);
      EXPECT_EQ(pool_->Stats().allocations, 1u);
      return pool_->Free(first);
    }
    // `last` was encoded before the lock dropped, as in the kernel, so it is
    // still offered; a callback finds it gone and declines.
    return pool_->Map(h).status();
  };
  EXPECT_TRUE(ReclaimOne(1).ok());
  EXPECT_EQ(Frames(), 0u);
  EXPECT_EQ(evicted_, (std::vector<ZpoolHandle>{first, last}));
}

TEST_F(ZbudPoolTest, ReclaimPreconditions) {
  EXPECT_EQ(ReclaimOne(8).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ShrinkBy(3), 0u);
  Alloc(10);
  EXPECT_EQ(ReclaimOne(0).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ZbudPoolTest, StartedReclaimsAreOffTheLruUntilTheyEnd) {
  ZpoolHandle a = Alloc(3000);
  ZpoolHandle b = Alloc(3000);
  absl::StatusOr<FrameReclaim> first = pool_->StartReclaim();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->handles, (absl::InlinedVector<ZpoolHandle, 2>{a}));
  absl::StatusOr<FrameReclaim> second = pool_->StartReclaim();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->handles, (absl::InlinedVector<ZpoolHandle, 2>{b}));
  EXPECT_EQ(pool_->StartReclaim().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->Stats().frames_under_reclaim, 2u);
  // Nothing is placed in a frame under reclaim, though a's has room.
  ZpoolHandle c = Alloc(500);
  EXPECT_NE(FrameOf(MapOf(c)), FrameOf(MapOf(a)));
  ExpectConsistent();

  // The caller frees in its own time, from any thread, then ends.
  ASSERT_TRUE(pool_->Free(a).ok());
  EXPECT_TRUE(pool_->EndReclaim(*first));
  EXPECT_FALSE(pool_->EndReclaim(*second));  // b is still live: back on the LRU
  EXPECT_TRUE(pool_->Map(b).ok());
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
  // b's frame went back at the head, so c's frame is now the oldest.
  absl::StatusOr<FrameReclaim> next = pool_->StartReclaim();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->handles, (absl::InlinedVector<ZpoolHandle, 2>{c}));
  EXPECT_FALSE(pool_->EndReclaim(*next));
}

TEST_F(ZbudPoolTest, ArenaLimitRefusesNewFramesOnly) {
  ArenaOptions arena;
  arena.max_bytes = 2 * kPageSize;
  pool_ = MakePool(arena);
  ZpoolHandle a = Alloc(3000);
  Alloc(3000);
  EXPECT_EQ(pool_->Allocate(3000).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool_->AllocateWholeFrame().status().code(),
            absl::StatusCode::kResourceExhausted);
  // Room left in an existing frame is still usable.
  EXPECT_TRUE(pool_->Allocate(900).ok());
  ASSERT_TRUE(pool_->Free(a).ok());
  EXPECT_TRUE(pool_->Allocate(3000).ok());
  ExpectConsistent();
}

TEST_F(ZbudPoolTest, StatsAddUp) {
  Alloc(100);   // 2 chunks
  Alloc(1000);  // 16 chunks, same frame
  ASSERT_TRUE(pool_->AllocateWholeFrame().ok());
  ZpoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.pool_frames, 2u);
  EXPECT_EQ(stats.allocations, 3u);
  EXPECT_EQ(stats.whole_frame_allocations, 1u);
  EXPECT_EQ(stats.allocated_bytes, 18 * 64 + kPageSize);
  EXPECT_EQ(pool_->TotalSizeBytes(), 2 * kPageSize);
  EXPECT_GT(stats.arena.mapped_bytes, 0u);
}

TEST(ZpoolFactoryTest, KnowsEveryDriverAndRejectsTheRest) {
  for (absl::string_view driver : kZpoolDrivers) {
    EXPECT_TRUE(ValidateZpoolDriver(driver).ok()) << driver;
    EXPECT_TRUE(CreateZpool(driver, ZpoolOptions{}).ok()) << driver;
  }
  EXPECT_EQ(CreateZpool("zsmalloc", ZpoolOptions{}).status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status unknown = ValidateZpoolDriver("zsmalloc");
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("zbud, dense"), std::string::npos)
      << unknown;
  ZpoolOptions bad;
  bad.arena.region_bytes = 3 * kPageSize;
  EXPECT_EQ(CreateZpool("zbud", std::move(bad)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zpaged
