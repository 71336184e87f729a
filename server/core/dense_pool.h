// DensePool: a pool driver that packs as many compressed pages into a frame
// as their bytes allow.
//
// zbud keeps two allocations a frame whatever their size, which caps density
// at 2 and in practice leaves a third of the pool empty. This driver keeps
// zbud's frame-at-a-time shape (one LRU of frames, the same reclaim protocol,
// a reclaimed frame is certainly free once its allocations are), and fills
// each frame like a database's slotted page:
//
//   frame: | slot table -> |        free gap        | <- allocations      |
//          0     8 * slots              data_start                     4096
//
// The slot table grows from the front, 8 bytes a slot (offset, length, tag);
// allocations are packed against the end of the frame, each rounded up to 8
// bytes. A frame holds at most kDenseMaxSlots allocations. The free space of
// a frame is kept in one piece, the gap between table and data, so the room
// a frame has is one number: the gap, less a table slot when none is free.
//
// Placement is best fit on that room: frames sit on one of kPageSize / 8
// fit lists by their room in 8-byte granules, a bitmap says which lists are
// non-empty, and an allocation takes a frame from the first non-empty list
// that fits it, else a new frame from the arena.
//
// Free keeps the gap contiguous by compaction: the allocations below the
// freed one move up to close its hole (one memmove in the common case).
// Moving bytes is safe only when no one reads them, so Map pins the frame
// (a count in its side-table entry) and Unmap unpins it; z3fold's
// MIDDLE_CHUNK_MAPPED is the precedent. How the four actors interleave, all
// under the pool's one mutex:
//   - Map pins, Unmap unpins. The bytes of a pinned frame never move: while
//     the caller holds a pointer, that allocation stays where Map found it.
//   - Free in a pinned frame clears the slot and marks the frame as holed;
//     the hole is not counted as room until the last Unmap compacts the
//     frame. Allocation into a pinned frame is allowed: it writes only into
//     the gap, which no mapped allocation overlaps.
//   - A frame that empties is released to the arena once it is neither
//     pinned nor under reclaim: by Free, by the last Unmap, or by
//     EndReclaim, whichever comes last.
//   - Reclaim takes a frame off the LRU and the fit lists; frees during
//     reclaim compact as above; EndReclaim compacts if it must and returns
//     the frame to the lists, or releases it.
// No method waits on anything but the mutex, and none calls out of the pool.
//
// Beyond the slotted page: RAW pages get whole frames (AllocateWholeFrame),
// as with zbud, so incompressible pages are reclaimed like the rest. The
// state every frame has in any driver (kind, LRU links, the whole frame's
// tag, the under-reclaim mark) is in the shared frame table (frame_table.h);
// this driver's own (fit-list links, the live-slot bitmap, the data start,
// pins) is in a 24-byte table of its own beside it.
//
// Handles are the frame table's, with six slot bits (slot 63 names a whole
// frame) and a 26-bit tag.

#ifndef ZPAGED_SERVER_CORE_DENSE_POOL_H_
#define ZPAGED_SERVER_CORE_DENSE_POOL_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "contract/page.h"
#include "server/core/arena.h"
#include "server/core/frame_list.h"
#include "server/core/frame_table.h"
#include "server/core/mutex.h"
#include "server/core/zpool.h"

namespace zpaged {

// Allocations are rounded up to this many bytes.
inline constexpr size_t kDenseGranule = 8;
inline constexpr size_t kDenseSlotBytes = 8;
inline constexpr int kDenseMaxSlots = 63;
// As zbud's largest buddy: a page that does not save 128 bytes is worth
// more as a RAW whole frame, which a Get copies without decoding.
inline constexpr size_t kDenseMaxAllocation = kPageSize - 128;

class DensePool final : public Zpool {
 public:
  // Requires ValidateArenaOptions(options.arena).ok(); CreateZpool checks it.
  explicit DensePool(ZpoolOptions options);
  ~DensePool() override = default;

  DensePool(const DensePool&) = delete;
  DensePool& operator=(const DensePool&) = delete;

  absl::StatusOr<ZpoolHandle> Allocate(size_t size) override;
  absl::StatusOr<ZpoolHandle> AllocateWholeFrame() override;
  absl::Status Free(ZpoolHandle handle) override;
  absl::StatusOr<FrameReclaim> StartReclaim() override;
  bool EndReclaim(const FrameReclaim& reclaim) override;
  absl::StatusOr<MappedAllocation> Map(ZpoolHandle handle) override;
  void Unmap(ZpoolHandle handle) override;
  size_t MaxAllocationSize() const override { return kDenseMaxAllocation; }
  uint64_t TotalSizeBytes() const override;
  ZpoolStats Stats() const override;
  absl::Status CheckConsistency() const override;

 private:
  static constexpr int kFitLists = kPageSize / kDenseGranule;  // 512
  static constexpr int kSlotBits = 6;  // slots 0-62, and the whole slot

  // One entry of a frame's slot table; length 0 marks a free slot.
  struct SlotEntry {
    uint16_t offset;
    uint16_t length;  // bytes, a multiple of kDenseGranule
    uint32_t tag;
  };
  static_assert(sizeof(SlotEntry) == kDenseSlotBytes);

  // This driver's part of a frame's state, indexed as the frame table.
  struct DenseFrame {
    FrameIndex fit_prev = kNoFrame;
    FrameIndex fit_next = kNoFrame;
    uint64_t live_slots = 0;          // bit i: slot i holds an allocation
    uint16_t data_start = kPageSize;  // lowest byte of the packed data
    uint16_t pins = 0;                // Maps not yet Unmapped
    uint16_t fit_list = 0;            // the list it is on, while it is on one
    // Freed while pinned: the live allocations no longer end-to-end.
    bool holed = false;
  };
  static_assert(sizeof(DenseFrame) == 24);

  SlotEntry* SlotTable(FrameIndex frame) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<HandleFields> Validate(ZpoolHandle handle) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a frame fresh from the table its dense state.
  void Track(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseFrame(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsEmpty(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes the largest allocation the frame can take now would use.
  size_t Room(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the live allocations of an unpinned packed frame against its end,
  // so its free space is one gap again.
  void Compact(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when the frame belongs on the LRU and, if packed, a fit list: it
  // holds something and is not under reclaim.
  bool Listed(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsPacked(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return table_.entry(frame).kind == FrameKind::kPacked;
  }
  // On and off the fit list a packed frame's room calls for. The room must
  // not change while the frame is on a list.
  void FitInsert(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FitRemove(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases the frame if it is empty and neither pinned nor under reclaim;
  // true if it was.
  bool ReleaseIfDone(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first non-empty fit list at or above `granules`, or -1.
  int FirstFitList(int granules) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  FrameTable table_ ABSL_GUARDED_BY(mu_);
  std::vector<DenseFrame> dense_ ABSL_GUARDED_BY(mu_);
  using FitList =
      FrameList<DenseFrame, &DenseFrame::fit_prev, &DenseFrame::fit_next>;
  // fit_lists_[g]: packed frames with room for g granules and not g + 1.
  std::array<FitList, kFitLists> fit_lists_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, kFitLists / 64> fit_nonempty_ ABSL_GUARDED_BY(mu_) = {};
  uint64_t packed_allocations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t packed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_DENSE_POOL_H_
