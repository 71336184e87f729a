#include "server/core/arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

// Resident set size of this process, from /proc/self/statm.
uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Bytes of [address, address + length) that are resident, from mincore.
uint64_t ResidentBytes(uint8_t* address, size_t length) {
  std::vector<unsigned char> pages(length / kPageSize);
  if (mincore(address, length, pages.data()) != 0) return length;
  uint64_t resident = 0;
  for (unsigned char page : pages) resident += (page & 1) * kPageSize;
  return resident;
}

ArenaOptions SmallRegions(uint64_t frames_per_region) {
  ArenaOptions options;
  options.region_bytes = frames_per_region * kPageSize;
  return options;
}

TEST(ArenaTest, FramesAreDistinctAlignedAndWritable) {
  Arena arena(SmallRegions(4), nullptr);
  std::set<uint8_t*> addresses;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<FrameIndex> frame = arena.AllocateFrame();
    ASSERT_TRUE(frame.ok()) << frame.status();
    uint8_t* address = arena.FrameAddress(*frame);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(address) % kPageSize, 0u);
    std::memset(address, i, kPageSize);
    addresses.insert(address);
  }
  EXPECT_EQ(addresses.size(), 10u);
  // Ten frames at four a region take three regions.
  EXPECT_EQ(arena.Stats().mapped_bytes, 3 * 4 * kPageSize);
  EXPECT_EQ(arena.Stats().frames_in_use, 10u);
}

TEST(ArenaTest, ByteLimitRefusesAndRecovers) {
  ArenaOptions options;
  options.max_bytes = 3 * kPageSize;
  Arena arena(options, nullptr);
  std::vector<FrameIndex> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(*arena.AllocateFrame());
  absl::StatusOr<FrameIndex> over = arena.AllocateFrame();
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(arena.Stats().frames_in_use, 3u);
  arena.FreeFrame(frames[1]);
  EXPECT_TRUE(arena.AllocateFrame().ok());
}

TEST(ArenaTest, SharedBudgetLimitsAllArenas) {
  MemoryBudget budget(3 * kPageSize);
  Arena a(ArenaOptions{}, &budget);
  Arena b(ArenaOptions{}, &budget);
  FrameIndex a0 = *a.AllocateFrame();
  ASSERT_TRUE(b.AllocateFrame().ok());
  ASSERT_TRUE(a.AllocateFrame().ok());
  EXPECT_EQ(b.AllocateFrame().status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(budget.used_bytes(), 3 * kPageSize);
  a.FreeFrame(a0);
  EXPECT_EQ(budget.used_bytes(), 2 * kPageSize);
  EXPECT_TRUE(b.AllocateFrame().ok());
}

TEST(ArenaTest, ATinyArenaPopulatesLittleAhead) {
  Arena arena(ArenaOptions{}, nullptr);
  ASSERT_TRUE(arena.AllocateFrame().ok());
  // Resident: the frame in use and one populated ahead, not a whole batch.
  EXPECT_LE(ResidentBytes(arena.FrameAddress(0), 64 * kPageSize),
            2 * kPageSize);
}

TEST(ArenaTest, FreedFramesAreReusedBeforeNewOnes) {
  Arena arena(ArenaOptions{}, nullptr);
  FrameIndex first = *arena.AllocateFrame();
  FrameIndex second = *arena.AllocateFrame();
  arena.FreeFrame(first);
  EXPECT_EQ(arena.Stats().free_frames, 1u);
  EXPECT_EQ(*arena.AllocateFrame(), first);
  EXPECT_NE(*arena.AllocateFrame(), second);
  EXPECT_EQ(arena.Stats().free_frames, 0u);
}

TEST(ArenaTest, ColdFreedFrameComesBackZeroed) {
  ArenaOptions options;
  options.warm_free_frames = 0;
  Arena arena(options, nullptr);
  FrameIndex frame = *arena.AllocateFrame();
  std::memset(arena.FrameAddress(frame), 0xAB, kPageSize);
  arena.FreeFrame(frame);
  ASSERT_EQ(*arena.AllocateFrame(), frame);
  const uint8_t* bytes = arena.FrameAddress(frame);
  for (size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(bytes[i], 0) << i;
}

TEST(ArenaTest, ResidentMemoryFallsAfterMassFree) {
  constexpr int kFrames = 16384;  // 64 MiB
  Arena arena(ArenaOptions{}, nullptr);
  std::vector<FrameIndex> frames;
  for (int i = 0; i < kFrames; ++i) {
    frames.push_back(*arena.AllocateFrame());
    std::memset(arena.FrameAddress(frames.back()), 0x5A, kPageSize);
  }
  const uint64_t full = ResidentBytes();
  for (FrameIndex frame : frames) arena.FreeFrame(frame);
  const uint64_t emptied = ResidentBytes();
  const uint64_t warm_bytes = arena.Stats().warm_free_frames * kPageSize;
  // Everything beyond the warm set went back to the kernel; allow 4 MiB of
  // slack for whatever else the process touched meanwhile.
  EXPECT_GE(full - emptied, kFrames * kPageSize - warm_bytes - (4u << 20))
      << "resident before free " << full << ", after " << emptied;
  EXPECT_EQ(arena.Stats().frames_in_use, 0u);
  EXPECT_EQ(arena.Stats().free_frames, static_cast<uint64_t>(kFrames));
}

TEST(ArenaTest, ValidatesOptions) {
  EXPECT_TRUE(ValidateArenaOptions(ArenaOptions{}).ok());
  EXPECT_FALSE(ValidateArenaOptions(SmallRegions(3)).ok());
  ArenaOptions tiny;
  tiny.region_bytes = 1024;
  EXPECT_EQ(ValidateArenaOptions(tiny).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zpaged
