// ZbudPool: the zbud allocator, rebuilt for user space.
//
// zbud stores compressed pages ("zpages") two to a frame. It is not a buddy
// allocator: it "buddies" two allocations in one 4 KiB frame. The first buddy
// is left-justified just after a one-chunk header, the last buddy is
// right-justified at the end of the frame, so freeing either leaves one
// contiguous free region made of the freed buddy and whatever slack lay
// between the two.
//
//   frame: | header | first buddy ->      free      <- last buddy |
//          0        64                                        4096
//
// Sizes are counted in chunks of kPageSize / 64 = 64 bytes. The header takes
// the first chunk, so 63 chunks are usable; one buddy may take at most 62 of
// them (3968 bytes), so a frame with one buddy always has a free chunk and a
// frame never holds more than two buddies. Frames with one buddy sit on
// unbuddied_[n], where n is the number of free chunks; frames with two sit on
// the buddied list. Allocation is best fit: scan unbuddied_ from the needed
// chunk count upward, else take a new frame from the arena.
//
// Why so simple a layout: density is capped at two zpages per frame, but it
// can never fall below one (a frame is created only for an allocation, and
// released when its last allocation goes), so zbud never does harm by using
// more memory than the uncompressed pages would; and reclaim is deterministic:
// evicting one frame means evicting at most two allocations, after which the
// frame is certainly free.
//
// Every frame is on one LRU list, moved to the head whenever an allocation is
// made in it. StartReclaim takes the LRU tail off the LRU and the buddy
// lists, marks it under reclaim and names its live buddies; the caller writes
// them back and frees them, in its own time (the kernel's evict callback,
// made asynchronous: see zpool.h). Free on a frame under reclaim only clears
// the buddy's size; EndReclaim releases the frame when both buddies are gone,
// or else puts it back at the LRU head.
//
// Beyond the kernel's zbud: data that does not compress below one buddy gets
// a whole frame (AllocateWholeFrame), on the same LRU, so incompressible pages
// are reclaimed like the rest instead of pinning memory. A whole frame has no
// room for a header, so the per-frame state every frame needs (LRU links,
// kind, under-reclaim mark, the whole frame's tag) lives in the shared frame
// table (frame_table.h), 16 bytes a frame; the zbud geometry (chunk counts,
// buddy list links, buddy tags) stays in the header in the frame's first
// chunk. zbud memory is never moved, so Map pins nothing.
//
// Handles are the frame table's, with two slot bits (first, last, whole)
// and a 30-bit tag: a foreign handle passes only by matching a 30-bit tag
// exactly.
//
// Locking: one mutex per pool (mutex.h) guards the frame table, every field
// below and the headers of all its frames. No method calls out of the pool.

#ifndef ZPAGED_SERVER_CORE_ZBUD_POOL_H_
#define ZPAGED_SERVER_CORE_ZBUD_POOL_H_

#include <array>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "contract/page.h"
#include "server/core/arena.h"
#include "server/core/frame_table.h"
#include "server/core/mutex.h"
#include "server/core/zpool.h"

namespace zpaged {

inline constexpr int kZbudChunkOrder = 6;
inline constexpr size_t kZbudChunkSize = kPageSize >> kZbudChunkOrder;  // 64
inline constexpr size_t kZbudHeaderSize = kZbudChunkSize;
// Free chunks of an empty frame, and the number of unbuddied lists.
inline constexpr int kZbudChunks =
    static_cast<int>((kPageSize - kZbudHeaderSize) / kZbudChunkSize);  // 63
// The largest buddy leaves one chunk free (the kernel's -ENOSPC bound).
inline constexpr size_t kZbudMaxAllocation =
    kPageSize - kZbudHeaderSize - kZbudChunkSize;  // 3968

class ZbudPool final : public Zpool {
 public:
  // Requires ValidateArenaOptions(options.arena).ok(); CreateZpool checks it.
  explicit ZbudPool(ZpoolOptions options);
  ~ZbudPool() override = default;

  ZbudPool(const ZbudPool&) = delete;
  ZbudPool& operator=(const ZbudPool&) = delete;

  absl::StatusOr<ZpoolHandle> Allocate(size_t size) override;
  absl::StatusOr<ZpoolHandle> AllocateWholeFrame() override;
  absl::Status Free(ZpoolHandle handle) override;
  absl::StatusOr<FrameReclaim> StartReclaim() override;
  bool EndReclaim(const FrameReclaim& reclaim) override;
  absl::StatusOr<MappedAllocation> Map(ZpoolHandle handle) override;
  void Unmap(ZpoolHandle handle) override;
  size_t MaxAllocationSize() const override { return kZbudMaxAllocation; }
  uint64_t TotalSizeBytes() const override;
  ZpoolStats Stats() const override;

  absl::Status CheckConsistency() const override;

 private:
  enum Slot : uint32_t { kFirst = 1, kLast = 2 };
  static constexpr int kSlotBits = 2;  // kFirst, kLast and the whole slot

  // Lives in the first chunk of every buddy frame.
  struct Header {
    FrameIndex buddy_prev;  // links in unbuddied_[free chunks] or buddied_
    FrameIndex buddy_next;
    uint32_t first_tag;  // 0 when the slot is free
    uint32_t last_tag;
    uint8_t first_chunks;  // 0 when the slot is free
    uint8_t last_chunks;
  };
  static_assert(sizeof(Header) <= kZbudHeaderSize,
                "the zbud header must fit in one chunk");

  static int SizeToChunks(size_t size);
  static int FreeChunks(const Header& header);

  Header& HeaderOf(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decodes `handle` and checks that it names a live allocation.
  absl::StatusOr<HandleFields> Validate(ZpoolHandle handle) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when no allocation is left in the frame.
  bool IsEmpty(FrameIndex frame) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a buddy frame on the unbuddied or buddied list its geometry calls
  // for; RemoveFromBuddyList undoes it.
  void AddToBuddyList(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFromBuddyList(FrameIndex frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FrameIndex& BuddyListHead(FrameIndex frame)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  FrameTable table_ ABSL_GUARDED_BY(mu_);
  std::array<FrameIndex, kZbudChunks> unbuddied_ ABSL_GUARDED_BY(mu_);
  FrameIndex buddied_ ABSL_GUARDED_BY(mu_) = kNoFrame;
  uint64_t buddy_allocations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t allocated_chunks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_ZBUD_POOL_H_
