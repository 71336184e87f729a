// FrameTable: the frame bookkeeping every pool driver needs, whatever it
// packs into a frame.
//
// A driver is a geometry (zbud's two buddies, dense's slotted page) on top
// of frames from an arena. Everything else about a frame is the same in
// every driver, and lives here: the side table entry of each frame (its
// kind, LRU links, the tag of a whole frame, the under-reclaim mark), the
// LRU, the tag counter, the handle layout, whole-frame allocations and the
// first half of StartReclaim. The driver keeps its geometry and whatever
// per-frame state that needs (in the frame, or in a table of its own
// indexed the same way).
//
// Handles are 64 bits: frame index (bits 0-31), then `slot_bits` of slot,
// then a tag in the remaining bits, drawn from a per-pool counter that
// starts at a random value. The highest slot names a whole frame; a driver
// numbers its own slots below it. A handle is accepted only if its slot is
// live and holds the same tag, so freed, foreign and garbage handles are
// rejected and never dereferenced outside the arena.
//
// Not thread-safe: the owning pool calls every method under its one lock.

#ifndef ZPAGED_SERVER_CORE_FRAME_TABLE_H_
#define ZPAGED_SERVER_CORE_FRAME_TABLE_H_

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/core/arena.h"
#include "server/core/frame_list.h"
#include "server/core/zpool.h"

namespace zpaged {

// kPacked: the driver's own layout; kWhole: one allocation of kPageSize.
enum class FrameKind : uint8_t { kFree, kPacked, kWhole };

// Side table entry, one per arena frame.
struct FrameEntry {
  FrameIndex lru_prev = kNoFrame;
  FrameIndex lru_next = kNoFrame;
  uint32_t whole_tag = 0;  // live tag of a whole frame, 0 once freed
  FrameKind kind = FrameKind::kFree;
  bool under_reclaim = false;
};
static_assert(sizeof(FrameEntry) == 16);

// A handle taken apart.
struct HandleFields {
  FrameIndex frame;
  uint32_t slot;
  uint32_t tag;
};

class FrameTable {
 public:
  // Requires ValidateArenaOptions(options.arena).ok() and 1 <= slot_bits
  // <= 8.
  FrameTable(const ZpoolOptions& options, int slot_bits);

  FrameTable(const FrameTable&) = delete;
  FrameTable& operator=(const FrameTable&) = delete;

  // The slot of a whole frame's handle.
  uint32_t whole_slot() const { return whole_slot_; }
  ZpoolHandle Encode(FrameIndex frame, uint32_t slot, uint32_t tag) const;
  // Takes `handle` apart; NOT_FOUND unless it names a live whole frame or
  // a slot below whole_slot() of a packed frame, whose tag the driver
  // still has to check.
  absl::StatusOr<HandleFields> Decode(ZpoolHandle handle) const;
  // A fresh non-zero tag.
  uint32_t NextTag();

  // A frame from the arena, its entry reset to `kind`; RESOURCE_EXHAUSTED
  // as Arena::AllocateFrame.
  absl::StatusOr<FrameIndex> NewFrame(FrameKind kind);
  // Back to the arena; the entry reads kFree.
  void ReleaseFrame(FrameIndex frame);
  uint8_t* Address(FrameIndex frame) const {
    return arena_.FrameAddress(frame);
  }
  FrameEntry& entry(FrameIndex frame) { return entries_[frame]; }
  const FrameEntry& entry(FrameIndex frame) const { return entries_[frame]; }
  // One past the highest frame the table has had; a driver's own table
  // follows it.
  size_t size() const { return entries_.size(); }

  // A whole frame, at the LRU head.
  absl::StatusOr<ZpoolHandle> AllocateWhole();
  // Clears the whole frame's tag; the driver decides when the frame goes.
  void FreeWhole(FrameIndex frame);

  void PushLru(FrameIndex frame) { lru_.PushHead(entries_, frame); }
  void RemoveLru(FrameIndex frame) { lru_.Remove(entries_, frame); }

  // Takes the LRU tail off the LRU and marks it under reclaim, listing a
  // whole frame's handle. A packed frame comes back with no handles: the
  // driver lists its allocations and takes it off its own lists.
  // NOT_FOUND when the LRU is empty.
  absl::StatusOr<FrameReclaim> StartReclaim();
  // Clears the mark StartReclaim set; the driver then releases or relists.
  void EndReclaim(FrameIndex frame);

  uint64_t pool_frames() const { return pool_frames_; }
  uint64_t whole_allocations() const { return whole_allocations_; }
  // The frame counts of ZpoolStats and the arena's; the driver adds its
  // allocations and bytes.
  ZpoolStats Stats() const;

  // Checks the counters against the entries and the arena, and that the
  // LRU holds exactly the frames that are neither free nor under reclaim
  // and for which `listed` is true, once each.
  absl::Status CheckConsistency(
      absl::FunctionRef<bool(FrameIndex)> listed) const;

 private:
  const int slot_bits_;
  const uint32_t whole_slot_;
  const uint32_t tag_mask_;
  Arena arena_;
  std::vector<FrameEntry> entries_;
  // Head: most recently allocated in; tail: next to reclaim.
  FrameList<FrameEntry, &FrameEntry::lru_prev, &FrameEntry::lru_next> lru_;
  uint32_t next_tag_;
  uint64_t pool_frames_ = 0;
  uint64_t whole_allocations_ = 0;
  uint64_t frames_under_reclaim_ = 0;
};

// NOT_FOUND naming `handle`, for one that names no live allocation.
absl::Status StaleHandle(ZpoolHandle handle);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_FRAME_TABLE_H_
