// Zpool: the allocator interface the page store is written against.
//
// It is the kernel's zpool idea: a store of variable-sized compressed objects
// addressed by opaque handles, that can shrink by evicting its least recently
// used frames. zbud is the default driver; DensePool packs a frame with as
// many allocations as fit, behind the same interface.
//
//   Zpool (this file) ┬─ ZbudPool (zbud_pool.h)  ┬─ Arena (arena.h)
//                     └─ DensePool (dense_pool.h) ┘
//
// Reclaim never waits on its caller. The kernel's zbud calls an evict
// callback and blocks until the page is written back; zpaged's write-back is
// a network round trip to a client, so reclaim is split in three, after
// CacheLib's slab release: StartReclaim takes the least recently used frame
// off the LRU and names the allocations in it; the caller evicts them in its
// own time (writes each back somewhere safe, then Frees it), from any
// thread; EndReclaim then releases the frame if it emptied, or puts it back
// at the LRU head. The store's one reclaim loop is its Reclaimer
// (server/store/reclaimer.h); the kernel's synchronous loop is kept for
// tests and benchmarks only (testing/zpool_shrink.h).
//
// Every method is thread-safe.

#ifndef ZPAGED_SERVER_CORE_ZPOOL_H_
#define ZPAGED_SERVER_CORE_ZPOOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/arena.h"
#include "server/core/memory_budget.h"

namespace zpaged {

// Names one allocation in one pool. Opaque: it encodes where the allocation
// lives and a tag that tells a live allocation from a stale one; never a
// pointer. 0 is never a valid handle.
using ZpoolHandle = uint64_t;

// A frame taken off the LRU by StartReclaim, and the allocations that were
// live in it then. Until EndReclaim nothing new is allocated in the frame;
// its allocations stay live (Map and Free work as usual) until freed. A
// handle listed here may be freed meanwhile by another thread: Map and Free
// then answer NOT_FOUND.
struct FrameReclaim {
  FrameIndex frame = kNoFrame;
  absl::InlinedVector<ZpoolHandle, 2> handles;
};

struct MappedAllocation {
  uint8_t* data = nullptr;
  size_t capacity = 0;  // bytes usable at data: the size rounded up
  // From AllocateWholeFrame: a page kept whole (RAW), capacity kPageSize.
  bool whole_frame = false;
};

struct ZpoolStats {
  uint64_t pool_frames = 0;  // frames the pool holds
  uint64_t allocations = 0;  // live allocations, whole frames included
  uint64_t whole_frame_allocations = 0;
  uint64_t allocated_bytes = 0;  // capacity of the live allocations
  uint64_t frames_under_reclaim = 0;
  ArenaStats arena;
};

struct ZpoolOptions {
  ArenaOptions arena;
  // Charged for every frame of the pool; may be null. Must outlive the pool.
  MemoryBudget* shared_budget = nullptr;
};

class Zpool {
 public:
  virtual ~Zpool() = default;

  // Allocates `size` bytes. INVALID_ARGUMENT for size 0, OUT_OF_RANGE when
  // `size` is larger than MaxAllocationSize(), RESOURCE_EXHAUSTED when a new
  // frame is needed and the arena cannot give one.
  virtual absl::StatusOr<ZpoolHandle> Allocate(size_t size) = 0;

  // Allocates a whole frame (kPageSize bytes) for data that does not compress
  // below MaxAllocationSize(). It is on the same LRU and is reclaimed like
  // any frame. RESOURCE_EXHAUSTED as Allocate.
  virtual absl::StatusOr<ZpoolHandle> AllocateWholeFrame() = 0;

  // Frees a live allocation. NOT_FOUND, with nothing changed, if `handle`
  // does not name one in this pool.
  virtual absl::Status Free(ZpoolHandle handle) = 0;

  // Takes the least recently used frame off the LRU for reclaim and lists
  // its live allocations. NOT_FOUND when no frame is on the LRU (the pool is
  // empty, or every frame is under reclaim already). The caller must pass
  // the result to EndReclaim exactly once.
  virtual absl::StatusOr<FrameReclaim> StartReclaim() = 0;

  // Ends a reclaim: releases the frame to the arena and returns true if no
  // allocation is left in it; otherwise puts it back at the LRU head, where
  // it takes allocations again, and returns false.
  virtual bool EndReclaim(const FrameReclaim& reclaim) = 0;

  // Gives access to a live allocation's bytes; NOT_FOUND if `handle` does not
  // name one. The caller must not free the allocation while it is mapped, and
  // must pair every successful Map with Unmap.
  virtual absl::StatusOr<MappedAllocation> Map(ZpoolHandle handle) = 0;
  virtual void Unmap(ZpoolHandle handle) = 0;

  // Largest size Allocate accepts.
  virtual size_t MaxAllocationSize() const = 0;

  // Bytes of memory the pool holds: its frames times kPageSize.
  virtual uint64_t TotalSizeBytes() const = 0;

  virtual ZpoolStats Stats() const = 0;

  // Walks every list and frame and checks that the pool's bookkeeping agrees
  // with itself. For tests, with no allocation mapped; O(frames).
  virtual absl::Status CheckConsistency() const = 0;
};

// A live allocation mapped for the guard's lifetime: Map on creation, Unmap
// on destruction, so that no path out of a reader can leave a frame pinned.
//
//   absl::StatusOr<ZpoolMapping> mapped = ZpoolMapping::Map(pool, handle);
//   if (!mapped.ok()) return mapped.status();
//   std::memcpy(out, mapped->data(), n);
class ZpoolMapping {
 public:
  // NOT_FOUND as Zpool::Map.
  static absl::StatusOr<ZpoolMapping> Map(Zpool* pool, ZpoolHandle handle) {
    absl::StatusOr<MappedAllocation> mapped = pool->Map(handle);
    if (!mapped.ok()) return mapped.status();
    return ZpoolMapping(pool, handle, *mapped);
  }
  ZpoolMapping(ZpoolMapping&& other)
      : pool_(std::exchange(other.pool_, nullptr)),
        handle_(other.handle_),
        allocation_(other.allocation_) {}
  ZpoolMapping& operator=(ZpoolMapping&&) = delete;
  ~ZpoolMapping() {
    if (pool_ != nullptr) pool_->Unmap(handle_);
  }

  uint8_t* data() const { return allocation_.data; }
  const MappedAllocation& allocation() const { return allocation_; }

 private:
  ZpoolMapping(Zpool* pool, ZpoolHandle handle, MappedAllocation allocation)
      : pool_(pool), handle_(handle), allocation_(allocation) {}

  Zpool* pool_;
  ZpoolHandle handle_;
  MappedAllocation allocation_;
};

// The drivers CreateZpool knows, the default first.
inline constexpr absl::string_view kZpoolDrivers[] = {"zbud", "dense"};

// OK if CreateZpool knows `driver`; INVALID_ARGUMENT naming the known ones.
absl::Status ValidateZpoolDriver(absl::string_view driver);

// Creates a pool of the named driver (kZpoolDrivers). NOT_FOUND for an
// unknown name, INVALID_ARGUMENT for bad arena options.
absl::StatusOr<std::unique_ptr<Zpool>> CreateZpool(absl::string_view driver,
                                                   ZpoolOptions options);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_ZPOOL_H_
