#include "server/core/dense_pool.h"

#include <sys/mman.h>

#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/testing/zpool_shrink.h"

namespace zpaged {
namespace {

uintptr_t FrameOf(const MappedAllocation& m) {
  return reinterpret_cast<uintptr_t>(m.data) & ~(uintptr_t{kPageSize} - 1);
}
size_t OffsetOf(const MappedAllocation& m) {
  return reinterpret_cast<uintptr_t>(m.data) & (kPageSize - 1);
}

// The room an empty frame has for allocations that each take a new slot.
constexpr size_t RoomFor(int allocations) {
  return kPageSize - allocations * kDenseSlotBytes;
}

class DensePoolTest : public ::testing::Test {
 protected:
  std::function<absl::Status(ZpoolHandle)> on_evict_;
  std::vector<ZpoolHandle> evicted_;
  std::unique_ptr<DensePool> pool_;

  void SetUp() override { pool_ = MakePool(ArenaOptions{}); }

  static std::unique_ptr<DensePool> MakePool(const ArenaOptions& arena) {
    ZpoolOptions options;
    options.arena = arena;
    return std::make_unique<DensePool>(std::move(options));
  }

  uint32_t ShrinkBy(uint32_t frames) {
    return Shrink(*pool_, frames, [this](ZpoolHandle handle) {
      evicted_.push_back(handle);
      return on_evict_ ? on_evict_(handle) : pool_->Free(handle);
    });
  }

  ZpoolHandle Alloc(size_t size) {
    absl::StatusOr<ZpoolHandle> handle = pool_->Allocate(size);
    EXPECT_TRUE(handle.ok()) << handle.status();
    return handle.value_or(0);
  }
  // Allocates and fills with `byte`.
  ZpoolHandle Filled(size_t size, uint8_t byte) {
    const ZpoolHandle handle = Alloc(size);
    absl::StatusOr<MappedAllocation> m = pool_->Map(handle);
    EXPECT_TRUE(m.ok());
    if (m.ok()) std::memset(m->data, byte, m->capacity);
    pool_->Unmap(handle);
    return handle;
  }
  bool Holds(ZpoolHandle handle, uint8_t byte) {
    absl::StatusOr<MappedAllocation> m = pool_->Map(handle);
    if (!m.ok()) return false;
    bool same = true;
    for (size_t i = 0; i < m->capacity; ++i) same &= m->data[i] == byte;
    pool_->Unmap(handle);
    return same;
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

TEST_F(DensePoolTest, SizeZeroIsInvalidAndOneByteTooBigIsOutOfRange) {
  EXPECT_EQ(pool_->MaxAllocationSize(), kDenseMaxAllocation);
  EXPECT_EQ(pool_->Allocate(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool_->Allocate(kDenseMaxAllocation + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(pool_->Allocate(kDenseMaxAllocation).ok());
  ExpectConsistent();
}

TEST_F(DensePoolTest, AllocationsRoundToEightBytesAndPackAgainstTheEnd) {
  const MappedAllocation one = MapOf(Alloc(1));
  const MappedAllocation thirteen = MapOf(Alloc(13));
  const MappedAllocation sixteen = MapOf(Alloc(16));
  EXPECT_EQ(one.capacity, 8u);
  EXPECT_EQ(thirteen.capacity, 16u);
  EXPECT_EQ(sixteen.capacity, 16u);
  EXPECT_EQ(OffsetOf(one), kPageSize - 8);
  EXPECT_EQ(OffsetOf(thirteen), kPageSize - 24);
  EXPECT_EQ(OffsetOf(sixteen), kPageSize - 40);
  EXPECT_EQ(FrameOf(one), FrameOf(sixteen));
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, AFrameTakesAllocationsUntilItsBytesAndSlotTableMeet) {
  // Two allocations that fill a frame to the byte with their two slots.
  const ZpoolHandle a = Alloc(RoomFor(2) / 2);
  const ZpoolHandle b = Alloc(RoomFor(2) / 2);
  EXPECT_EQ(FrameOf(MapOf(a)), FrameOf(MapOf(b)));
  EXPECT_EQ(Frames(), 1u);
  // Nothing more fits, not even 8 bytes with its slot.
  Alloc(1);
  EXPECT_EQ(Frames(), 2u);

  // One granule too many for the second: it opens a frame of its own.
  const ZpoolHandle c = Alloc(RoomFor(2) / 2);
  const ZpoolHandle d = Alloc(RoomFor(2) / 2 + 1);
  EXPECT_NE(FrameOf(MapOf(c)), FrameOf(MapOf(d)));
  ExpectConsistent();
}

TEST_F(DensePoolTest, AFrameHoldsAtMostTheSlotTableBound) {
  std::set<uintptr_t> frames;
  for (int i = 0; i < kDenseMaxSlots; ++i)
    frames.insert(FrameOf(MapOf(Alloc(8))));
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_EQ(Frames(), 1u);
  Alloc(8);  // room for the bytes, but no slot left
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, AllocationIsBestFitOnRoom) {
  // Frame A keeps 1,008 bytes of room for a new slot, frame B 512.
  const ZpoolHandle in_a = Alloc(RoomFor(2) - 1008);
  const ZpoolHandle in_b = Alloc(RoomFor(2) - 512);
  ASSERT_EQ(Frames(), 2u);
  const uintptr_t a = FrameOf(MapOf(in_a));
  const uintptr_t b = FrameOf(MapOf(in_b));
  // 400 fits both: it goes to the tighter B. 600 fits only A.
  EXPECT_EQ(FrameOf(MapOf(Alloc(400))), b);
  EXPECT_EQ(FrameOf(MapOf(Alloc(600))), a);
  // Exactly B's remaining room less a slot: still B.
  EXPECT_EQ(FrameOf(MapOf(Alloc(512 - 400 - 8))), b);
  EXPECT_EQ(Frames(), 2u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, FreeCompactsSoTheFreedBytesAreRoomAgain) {
  const ZpoolHandle first = Filled(1300, 0xA1);
  const ZpoolHandle middle = Filled(1300, 0xB2);
  const ZpoolHandle last = Filled(1300, 0xC3);
  const uintptr_t frame = FrameOf(MapOf(first));
  ASSERT_TRUE(pool_->Free(middle).ok());
  EXPECT_TRUE(Holds(first, 0xA1));
  EXPECT_TRUE(Holds(last, 0xC3));
  // The allocation below the hole moved up to close it.
  EXPECT_EQ(OffsetOf(MapOf(last)), kPageSize - 2 * 1304);
  // The middle slot is free, so the freed bytes come back with no new slot.
  EXPECT_EQ(FrameOf(MapOf(Alloc(RoomFor(3) - 2 * 1304))), frame);
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, FreeingTheTopSlotShrinksTheSlotTable) {
  // Three allocations that fill a frame to the byte with their slots.
  static_assert(RoomFor(3) == 1360 + 1360 + 1352);
  const ZpoolHandle a = Alloc(1360);
  Alloc(1360);
  const ZpoolHandle c = Alloc(1352);
  const uintptr_t frame = FrameOf(MapOf(a));
  ASSERT_EQ(Frames(), 1u);
  ASSERT_TRUE(pool_->Free(c).ok());
  // Two slots left, so c's bytes are room again, with its slot's 8 for
  // the slot a new allocation needs.
  EXPECT_EQ(FrameOf(MapOf(Alloc(1352))), frame);
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, APinnedFrameMovesNothingUntilItsLastUnmap) {
  const ZpoolHandle first = Filled(1300, 0xA1);
  const ZpoolHandle middle = Filled(1300, 0xB2);
  const ZpoolHandle last = Filled(1300, 0xC3);
  const uintptr_t frame = FrameOf(MapOf(first));

  absl::StatusOr<MappedAllocation> pinned = pool_->Map(last);
  ASSERT_TRUE(pinned.ok());
  absl::StatusOr<MappedAllocation> pinned_again = pool_->Map(last);
  ASSERT_TRUE(pinned_again.ok());
  ASSERT_TRUE(pool_->Free(first).ok());
  ASSERT_TRUE(pool_->Free(middle).ok());
  // Not moved, not overwritten; the holes are not room while pinned.
  EXPECT_EQ(MapOf(last).data, pinned->data);
  for (size_t i = 0; i < pinned->capacity; ++i)
    ASSERT_EQ(pinned->data[i], 0xC3);
  EXPECT_NE(FrameOf(MapOf(Alloc(1300))), frame);

  pool_->Unmap(last);
  EXPECT_EQ(MapOf(last).data, pinned->data);  // one pin still held
  pool_->Unmap(last);
  // Compacted by the last Unmap: moved to the end, intact, and the bytes
  // it left are room again (its slot, the third, keeps the table at three).
  EXPECT_EQ(OffsetOf(MapOf(last)), kPageSize - 1304);
  EXPECT_TRUE(Holds(last, 0xC3));
  EXPECT_EQ(FrameOf(MapOf(Alloc(RoomFor(3) - 1304))), frame);
  ExpectConsistent();
}

TEST_F(DensePoolTest, AllocationIntoAPinnedFrameLeavesTheMappedBytesAlone) {
  const ZpoolHandle held = Filled(1000, 0x5A);
  const ZpoolHandle neighbour = Filled(1000, 0x6B);
  absl::StatusOr<MappedAllocation> pinned = pool_->Map(held);
  ASSERT_TRUE(pinned.ok());
  ASSERT_TRUE(pool_->Free(neighbour).ok());
  const ZpoolHandle added = Filled(1000, 0x7C);
  EXPECT_EQ(FrameOf(MapOf(added)), FrameOf(*pinned));
  for (size_t i = 0; i < pinned->capacity; ++i)
    ASSERT_EQ(pinned->data[i], 0x5A);
  pool_->Unmap(held);
  EXPECT_TRUE(Holds(held, 0x5A));
  EXPECT_TRUE(Holds(added, 0x7C));
  ExpectConsistent();
}

TEST_F(DensePoolTest, AFrameEmptiedUnderReclaimWhileMappedGoesAtItsLastUnmap) {
  const ZpoolHandle only = Alloc(100);
  absl::StatusOr<FrameReclaim> reclaim = pool_->StartReclaim();
  ASSERT_TRUE(reclaim.ok());
  ASSERT_TRUE(pool_->Map(only).ok());
  ASSERT_TRUE(pool_->Free(only).ok());
  EXPECT_TRUE(pool_->EndReclaim(*reclaim));  // nothing left in it
  EXPECT_EQ(Frames(), 1u);                   // but still mapped
  pool_->Unmap(only);
  EXPECT_EQ(Frames(), 0u);
  EXPECT_EQ(pool_->Stats().arena.frames_in_use, 0u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, StaleForeignAndGarbageHandlesAreRejected) {
  const ZpoolHandle live = Alloc(100);
  const ZpoolHandle freed = Alloc(100);
  ASSERT_TRUE(pool_->Free(freed).ok());
  const ZpoolHandle whole = *pool_->AllocateWholeFrame();
  const uint64_t frame_and_slot = live & ((uint64_t{1} << 38) - 1);
  const ZpoolHandle wrong_tag = frame_and_slot | ((live >> 38) + 1) << 38;
  const ZpoolHandle slot_past_table = live + (uint64_t{5} << 32);
  const ZpoolHandle whole_slot_on_packed = live | (uint64_t{63} << 32);
  const ZpoolHandle packed_slot_on_whole = whole & ~(uint64_t{63} << 32);
  const ZpoolHandle frame_past_end = (live >> 32 << 32) | 999;
  for (ZpoolHandle bad :
       {ZpoolHandle{0}, freed, wrong_tag, slot_past_table, whole_slot_on_packed,
        packed_slot_on_whole, frame_past_end, ~ZpoolHandle{0}}) {
    EXPECT_EQ(pool_->Free(bad).code(), absl::StatusCode::kNotFound) << bad;
    EXPECT_EQ(pool_->Map(bad).status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(pool_->Stats().allocations, 2u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, AReusedSlotDoesNotRevalidateTheOldHandle) {
  const ZpoolHandle keep = Alloc(100);
  const ZpoolHandle old = Alloc(100);
  ASSERT_TRUE(pool_->Free(old).ok());
  const ZpoolHandle fresh = Alloc(100);
  EXPECT_EQ(fresh & ((uint64_t{1} << 38) - 1), old & ((uint64_t{1} << 38) - 1))
      << "same frame and slot";
  EXPECT_NE(fresh, old);
  EXPECT_EQ(pool_->Free(old).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(pool_->Free(fresh).ok());
  EXPECT_TRUE(pool_->Free(keep).ok());
  EXPECT_EQ(Frames(), 0u);
}

TEST_F(DensePoolTest, WholeFrameTakesAFrameAndIsReclaimedLikeAnyOther) {
  const ZpoolHandle whole = *pool_->AllocateWholeFrame();
  const MappedAllocation m = MapOf(whole);
  EXPECT_EQ(m.capacity, kPageSize);
  EXPECT_EQ(OffsetOf(m), 0u);
  Alloc(100);  // a packed frame, more recent
  EXPECT_EQ(ShrinkBy(1), 1u);
  EXPECT_EQ(evicted_, std::vector<ZpoolHandle>{whole});
  EXPECT_EQ(Frames(), 1u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, ReclaimEvictsEveryAllocationOfTheLeastRecentFrame) {
  std::vector<ZpoolHandle> oldest;
  for (int i = 0; i < 5; ++i) oldest.push_back(Alloc(700));
  Alloc(3000);  // fits no more in the first frame: a second, more recent
  ASSERT_EQ(Frames(), 2u);
  const uint64_t in_use = pool_->Stats().arena.frames_in_use;
  EXPECT_EQ(ShrinkBy(1), 1u);
  EXPECT_EQ(std::set<ZpoolHandle>(evicted_.begin(), evicted_.end()),
            std::set<ZpoolHandle>(oldest.begin(), oldest.end()));
  // The reclaimed frame went back to the arena.
  EXPECT_EQ(pool_->Stats().arena.frames_in_use, in_use - 1);
  ExpectConsistent();
}

TEST_F(DensePoolTest, EveryReclaimedFrameReturnsToTheArena) {
  for (int i = 0; i < 3000; ++i) Alloc(100 + (i * 37) % 3000);
  const uint64_t frames = Frames();
  EXPECT_EQ(ShrinkBy(static_cast<uint32_t>(frames)), frames);
  EXPECT_EQ(Frames(), 0u);
  EXPECT_EQ(pool_->Stats().allocations, 0u);
  EXPECT_EQ(pool_->Stats().arena.frames_in_use, 0u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, PartlyEvictedFrameGoesBackCompactedAndTakesAllocations) {
  const ZpoolHandle a = Filled(1000, 0x11);
  const ZpoolHandle b = Filled(1000, 0x22);
  const ZpoolHandle c = Filled(1000, 0x33);
  Alloc(3500);  // a second, more recent frame
  on_evict_ = [&](ZpoolHandle h) -> absl::Status {
    if (h == b) return absl::UnavailableError("not now");
    return pool_->Free(h);
  };
  // Eviction stops at the frame's first refusal; b is in slot 1.
  EXPECT_EQ(
      ReclaimOneFrame(*pool_, 1, [this](ZpoolHandle h) { return on_evict_(h); })
          .code(),
      absl::StatusCode::kAborted);
  EXPECT_TRUE(Holds(b, 0x22));
  EXPECT_FALSE(pool_->Map(a).ok());
  EXPECT_TRUE(Holds(c, 0x33));
  // Back at the LRU head: the next reclaim tries the other frame first.
  evicted_.clear();
  on_evict_ = nullptr;
  EXPECT_EQ(ShrinkBy(1), 1u);
  EXPECT_NE(evicted_.front(), b);
  EXPECT_EQ(FrameOf(MapOf(Alloc(1900))), FrameOf(MapOf(b)));
  ExpectConsistent();
}

TEST_F(DensePoolTest, FreesDuringReclaimAreHonouredAndEndReclaimReleases) {
  const ZpoolHandle a = Alloc(1000);
  const ZpoolHandle b = Alloc(1000);
  absl::StatusOr<FrameReclaim> reclaim = pool_->StartReclaim();
  ASSERT_TRUE(reclaim.ok());
  EXPECT_EQ(reclaim->handles.size(), 2u);
  EXPECT_EQ(pool_->Stats().frames_under_reclaim, 1u);
  // Nothing is allocated into a frame under reclaim.
  const ZpoolHandle elsewhere = Alloc(100);
  EXPECT_NE(FrameOf(MapOf(elsewhere)), FrameOf(MapOf(a)));
  ASSERT_TRUE(pool_->Free(a).ok());
  ASSERT_TRUE(pool_->Free(b).ok());
  EXPECT_EQ(pool_->StartReclaim()->frame,
            static_cast<FrameIndex>(elsewhere));  // the other frame
  ExpectConsistent();
}

TEST_F(DensePoolTest, ArenaLimitRefusesNewFramesOnly) {
  ArenaOptions arena;
  arena.max_bytes = kPageSize;
  pool_ = MakePool(arena);
  Alloc(2000);
  EXPECT_EQ(pool_->Allocate(2100).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool_->AllocateWholeFrame().status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(pool_->Allocate(2000).ok());  // still fits the frame
  EXPECT_EQ(pool_->Stats().allocations, 2u);
  ExpectConsistent();
}

TEST_F(DensePoolTest, StatsAddUp) {
  Alloc(100);
  Alloc(1001);
  ASSERT_TRUE(pool_->AllocateWholeFrame().ok());
  const ZpoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.pool_frames, 2u);
  EXPECT_EQ(stats.allocations, 3u);
  EXPECT_EQ(stats.whole_frame_allocations, 1u);
  EXPECT_EQ(stats.allocated_bytes, 104 + 1008 + kPageSize);
  EXPECT_EQ(pool_->TotalSizeBytes(), 2 * kPageSize);
}

TEST_F(DensePoolTest, FreedFramesLeaveMemoryAfterAMassFree) {
  std::vector<ZpoolHandle> handles;
  std::set<uintptr_t> frames;
  for (int i = 0; i < 40'000; ++i) {
    handles.push_back(Filled(200 + (i * 131) % 2500, 0xEE));
    frames.insert(FrameOf(MapOf(handles.back())));
  }
  ASSERT_GT(frames.size(), 10'000u);
  for (ZpoolHandle h : handles) ASSERT_TRUE(pool_->Free(h).ok());
  EXPECT_EQ(Frames(), 0u);
  // Only the arena's warm frames (8) may still be resident.
  size_t resident = 0;
  for (uintptr_t frame : frames) {
    unsigned char in_core = 0;
    ASSERT_EQ(mincore(reinterpret_cast<void*>(frame), kPageSize, &in_core), 0);
    resident += in_core & 1;
  }
  EXPECT_LE(resident, pool_->Stats().arena.warm_free_frames);
}

}  // namespace
}  // namespace zpaged
