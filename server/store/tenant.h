// Tenant: one client's pages — a zbud pool, the index from key to where each
// page is kept, and the counters.
//
// The path of a page:
//   Put     classify and compress into a thread-local buffer, outside every
//           lock; allocate in the pool (reclaiming from the LRU if the pool is
//           at a limit and a watcher can take pages); copy; swap the index
//           entry; free the old copy only after the new one is in.
//   Get     index -> map -> decompress into the caller's buffer, under the
//           index lock held shared: the copy cannot be freed mid-read, and
//           Gets do not wait for each other.
//   Evict   (the pool's callback during reclaim) read the key from the
//           allocation, claim the key, decompress, hand the page to the
//           EvictionSink and wait for the ack with no lock held; then drop the
//           index entry, free, and let the key go.
//
// One eviction per key at a time. A tenant's backing store keeps the copy of
// a key that was acked last, so copies must be acked in the order they were
// stored. Without the claim, a Put during a slow delivery could store a new
// copy that a second reclaim evicts and gets acked first; the old copy's ack
// would then replace it in the backing store, and the new page would be lost.
// A reclaim that meets a claimed key refuses the page, and the pool moves on
// along its LRU.
//
// LZ4 allocations start with the page's key (8 bytes), as zswap prefixes its
// entries, so reclaim can name the page it evicts. A RAW page fills its frame,
// so RAW pages' keys are kept in a small side map instead.
//
// Index cost: an absl::flat_hash_map slot of 8 bytes of key and 16 of entry,
// plus one control byte, at a load factor between 7/16 and 7/8: about 28 to
// 57 bytes a page, whatever its encoding.
//
// Lock order: index_mu_ before the pool's own lock and before claims_mu_.
// The pool calls Evict with no lock held. Thread-safe.

#ifndef ZPAGED_SERVER_STORE_TENANT_H_
#define ZPAGED_SERVER_STORE_TENANT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/codec/page_codec.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/core/zpool.h"
#include "server/store/eviction_sink.h"
#include "server/store/page_stats.h"

namespace zpaged {

struct PutResult {
  PageEncoding encoding;
  uint32_t stored_bytes;  // bytes the page takes in the pool; 0 if same-filled
};

struct ReclaimResult {
  uint32_t reclaimed_pool_pages = 0;
  uint64_t evicted_pages = 0;
};

class Tenant {
 public:
  // `sink` and `shared_budget` (may be null) must outlive the tenant.
  // `max_pool_bytes` bounds this tenant's pool.
  Tenant(std::string name, uint64_t max_pool_bytes, EvictionSink* sink,
         MemoryBudget* shared_budget);

  Tenant(const Tenant&) = delete;
  Tenant& operator=(const Tenant&) = delete;

  const std::string& name() const { return name_; }

  // Stores `page` (kPageSize bytes) under `key`, replacing what was there.
  // When the pool is at a limit and `may_reclaim`, evicts from the LRU to the
  // sink to make room. RESOURCE_EXHAUSTED when no room could be made; the
  // store is then unchanged. Counted as rejected unless `may_reclaim` was
  // false and a watcher could have taken pages (the caller may retry).
  absl::StatusOr<PutResult> Put(uint64_t key, absl::Span<const uint8_t> page,
                                bool may_reclaim);

  // Copies the page stored under `key` into `out` (kPageSize bytes).
  // NOT_FOUND, with `out` unchanged, if there is none.
  absl::Status Get(uint64_t key, absl::Span<uint8_t> out) const;

  // Removes the page under `key`; returns whether there was one.
  bool Delete(uint64_t key);

  // Tries up to `frames` times to release a pool frame by evicting its pages
  // to the sink; see Zpool::Shrink.
  ReclaimResult Reclaim(uint32_t frames);

  // Evicts every page to the sink: the pool by reclaim until it is empty or
  // stops shrinking, then the same-filled pages one by one. Returns how many
  // pages were acked; what is left shows in Stats().
  uint64_t Drain();

  // Counts a Put refused before it reached the tenant (bad page).
  void CountInvalidPut() { rejected_invalid_.fetch_add(1); }

  PageStats Stats() const;

 private:
  struct IndexEntry {
    uint64_t value;         // pool handle, or the word of a same-filled page
    uint32_t stored_bytes;  // LZ4 bytes after the key prefix; 0 otherwise
    PageEncoding encoding;
  };

  // Allocates `size` bytes (0: a whole frame), reclaiming if allowed.
  absl::StatusOr<ZpoolHandle> Allocate(size_t size, bool may_reclaim);
  // Puts `entry` under `key` and returns the entry it replaced, which the
  // caller must Release once the lock is dropped.
  std::optional<IndexEntry> SwapIn(uint64_t key, const IndexEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  // Adjusts the per-encoding counters for an entry coming (+1) or going (-1).
  void Account(const IndexEntry& entry, int direction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  // Copies the page an entry holds into `out`.
  absl::Status Read(uint64_t key, const IndexEntry& entry,
                    absl::Span<uint8_t> out) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // Releases the pool memory behind an entry that is no longer indexed.
  void Release(const IndexEntry& entry);
  // True if `entry` is the copy `value` names: a pool handle, or with
  // `same_filled` the page's word.
  static bool IsCopy(const IndexEntry& entry, uint64_t value, bool same_filled);
  // Removes `key` and frees its memory if the index still holds that copy
  // (a Put or Delete may have replaced it meanwhile).
  void DropCopy(uint64_t key, uint64_t value, bool same_filled);
  // The pool's evict callback.
  absl::Status Evict(ZpoolHandle handle);
  // Copies into `page` the page whose indexed copy `handle` is, claims its
  // key and returns the key. NOT_FOUND if `handle` is not an indexed copy (a
  // Put not installed yet, or a page replaced or deleted since reclaim picked
  // the frame); UNAVAILABLE if another copy of the key is being evicted. On
  // error nothing is claimed.
  absl::StatusOr<uint64_t> ClaimAndRead(ZpoolHandle handle,
                                        absl::Span<uint8_t> page);
  // Claims `key` for one eviction; false if another eviction holds it.
  bool ClaimKey(uint64_t key);
  // Lets a claimed key go.
  void UnclaimKey(uint64_t key);

  const std::string name_;
  EvictionSink* const sink_;
  std::unique_ptr<Zpool> pool_;

  // Readers (Get, Stats, the read phase of Evict) share it, so Gets of one
  // tenant decompress in parallel; index changes take it alone.
  mutable SharedMutex index_mu_;
  absl::flat_hash_map<uint64_t, IndexEntry> index_ ABSL_GUARDED_BY(index_mu_);
  absl::flat_hash_map<ZpoolHandle, uint64_t> raw_keys_
      ABSL_GUARDED_BY(index_mu_);
  uint64_t same_filled_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t lz4_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t raw_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t compressed_bytes_ ABSL_GUARDED_BY(index_mu_) = 0;

  // Keys with an eviction between reading the page and dropping it; see the
  // top of this file. Evictions are rare next to Gets, so they claim under
  // their own small lock while the index lock is held shared.
  Mutex claims_mu_;
  absl::flat_hash_set<uint64_t> keys_being_evicted_ ABSL_GUARDED_BY(claims_mu_);

  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> reclaimed_{0};
  std::atomic<uint64_t> rejected_limit_{0};
  std::atomic<uint64_t> rejected_invalid_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_TENANT_H_
