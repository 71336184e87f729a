// Arena: the 4 KiB frames one pool draws from.
//
// An arena reserves address space in large anonymous mappings (regions) and
// hands it out one frame at a time. Frames are named by a dense 32-bit index,
// so a pool can link frames into lists and encode them in handles without
// storing pointers. A freed frame is kept for reuse; beyond a small warm set,
// its memory is given back to the kernel with madvise(MADV_DONTNEED), so the
// process' resident size falls when pages are deleted while the address space
// stays reserved and frame indices stay valid.
//
//   Arena ── regions (mmap, MAP_NORESERVE, region_bytes each)
//         ├─ warm free frames (still resident, reused first)
//         └─ cold free frames (madvised, zero-filled on next touch)
//
// The budget is charged for frames in use. What an arena keeps resident
// beyond them is bounded and small, so that it can be stated as a per-pool
// overhead: up to warm_free_frames warm frames, and frames populated ahead
// of use, never more than 8 and never more than the frames created before.
//
// Not thread-safe: the owning pool serialises every call under its lock.

#ifndef ZPAGED_SERVER_CORE_ARENA_H_
#define ZPAGED_SERVER_CORE_ARENA_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/statusor.h"
#include "contract/page.h"
#include "server/core/memory_budget.h"

namespace zpaged {

using FrameIndex = uint32_t;
inline constexpr FrameIndex kNoFrame = std::numeric_limits<FrameIndex>::max();

struct ArenaOptions {
  // Frames in use never exceed this many bytes.
  uint64_t max_bytes = MemoryBudget::kUnlimited;
  // Size of one mapping; a power of two and a multiple of kPageSize.
  uint64_t region_bytes = uint64_t{64} << 20;
  // Freed frames kept resident for quick reuse before the rest are madvised.
  uint32_t warm_free_frames = 8;
};

struct ArenaStats {
  uint64_t mapped_bytes = 0;      // address space the regions hold
  uint64_t frames_in_use = 0;     // frames handed out and not yet freed
  uint64_t free_frames = 0;       // freed frames kept for reuse (warm + cold)
  uint64_t warm_free_frames = 0;  // of those, still resident
};

// OK if `options` can make an arena; INVALID_ARGUMENT saying why not.
absl::Status ValidateArenaOptions(const ArenaOptions& options);

class Arena {
 public:
  // `shared_budget`, if not null, is charged kPageSize for every frame in use
  // and must outlive the arena. Requires ValidateArenaOptions(options).ok().
  Arena(const ArenaOptions& options, MemoryBudget* shared_budget);
  ~Arena();

  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Returns a frame for exclusive use. Its content is unspecified. Fails with
  // RESOURCE_EXHAUSTED when the arena's or the shared budget's limit would be
  // passed, or when the kernel refuses a new mapping; nothing changes then.
  absl::StatusOr<FrameIndex> AllocateFrame();

  // Returns a frame obtained from AllocateFrame. Requires `frame` to be in use.
  void FreeFrame(FrameIndex frame);

  // Returns the address of `frame`. Requires IsCreated(frame).
  uint8_t* FrameAddress(FrameIndex frame) const {
    return regions_[frame >> frames_per_region_shift_] +
           (static_cast<uint64_t>(frame & frames_per_region_mask_)
            << kPageShift);
  }

  // True if `frame` was ever handed out by this arena (in use or free now).
  bool IsCreated(FrameIndex frame) const { return frame < frames_created_; }

  ArenaStats Stats() const;

 private:
  absl::Status MapRegion();
  // Backs `frame` and frames after it with memory in one system call: as
  // many as were created before it, up to a cap.
  void PopulateAfter(FrameIndex frame);

  const ArenaOptions options_;
  MemoryBudget* const shared_budget_;
  const int frames_per_region_shift_;
  const uint32_t frames_per_region_mask_;

  std::vector<uint8_t*> regions_;
  FrameIndex frames_created_ = 0;  // frames [0, frames_created_) exist
  // Frames [frames_created_, frames_populated_) are already backed by memory.
  FrameIndex frames_populated_ = 0;
  uint64_t frames_in_use_ = 0;
  std::vector<FrameIndex> warm_free_;
  std::vector<FrameIndex> cold_free_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_ARENA_H_
