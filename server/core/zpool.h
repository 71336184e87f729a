// Zpool: the allocator interface the page store is written against.
//
// It is the kernel's zpool idea: a store of variable-sized compressed objects
// addressed by opaque handles, that can shrink itself by evicting its least
// recently used memory through a callback. zbud is the first driver; a denser
// one (z3fold- or zsmalloc-like) can be added behind the same interface
// without touching the service.
//
//   Zpool (this file) ── ZbudPool (zbud_pool.h) ── Arena (arena.h)
//
// Every method is thread-safe.

#ifndef ZPAGED_SERVER_CORE_ZPOOL_H_
#define ZPAGED_SERVER_CORE_ZPOOL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

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

// Called by Shrink, without any pool lock held, once for each live allocation
// in a frame being reclaimed. To let the frame go, it must write the data back
// somewhere safe, call Free(handle) and return OK. Any other status refuses:
// the allocation stays stored and reclaim moves on to the next frame. The
// handles of a frame are taken before the lock is dropped, so a handle freed
// meanwhile by another thread may still be offered: Map and Free then answer
// NOT_FOUND, and the callback should decline. It may be called from several
// threads at once when several threads shrink.
using EvictCallback = std::function<absl::Status(ZpoolHandle)>;

struct MappedAllocation {
  uint8_t* data = nullptr;
  size_t capacity = 0;  // bytes usable at data: the size rounded up
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
  // May be empty: the pool then cannot shrink (FAILED_PRECONDITION).
  EvictCallback evict;
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

  // Evicts least recently used frames until `frames` are released or no more
  // can be; returns how many were released. Each frame gets up to `retries`
  // tries along the LRU. FAILED_PRECONDITION when the pool has no eviction
  // callback.
  virtual absl::StatusOr<uint32_t> Shrink(uint32_t frames,
                                          uint32_t retries = 8) = 0;

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
};

// Creates a pool of the named driver ("zbud"). NOT_FOUND for an unknown name.
absl::StatusOr<std::unique_ptr<Zpool>> CreateZpool(absl::string_view driver,
                                                   ZpoolOptions options);

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_ZPOOL_H_
