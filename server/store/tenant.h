// Tenant: one client's pages — a pool, the index from key to where each page
// is kept, and the counters. Reclaim is not here: the store's Reclaimer
// decides whose pages leave and drives the evictions, through the narrow
// ReclaimSource face a tenant shows it.
//
// The path of a page:
//   Put     classify and compress into a thread-local buffer, outside every
//           lock; allocate in the pool; copy the record in and swap the
//           index entry under one hold of the index lock; free the old copy
//           only after the new one is in. At a limit, the Put asks the
//           Reclaimer for room and keeps its compressed bytes meanwhile.
//   Get     index -> map -> decompress into the caller's buffer, under the
//           index lock held shared: the copy cannot be freed mid-read, and
//           Gets do not wait for each other.
//   Evict   (ReclaimSource) read the indexed copy in a frame under reclaim
//           and hand it to the sink under the index lock held shared, so
//           that the copy handed over is the indexed one; an acked copy is
//           dropped from the index if a Put or Delete has not replaced it.
//
// A Put that waits for room never lands late. While it waits it is
// registered under its key; a later Put, Delete or DeleteAll of the key
// supersedes it, and it is installed only if, under the index lock, it is
// still the latest write of its key, its deadline has not passed and its
// caller has not gone: otherwise it stores nothing (ABORTED,
// DEADLINE_EXCEEDED, CANCELLED). So a client that saw its Put time out and
// wrote the key again always reads the newer write.
//
// What it costs: its pool's frames, bounded by its own limit and charged to
// the server's, kIndexEntryBytes a page, and its fixed cost (the store's to
// charge; counted here in UsedBytes for the fair share). A tenant is owned
// through shared_ptr: work that outlives a call (a reclaim's evictions, a
// drain's deliveries) holds it, so the store can tell that no one holds an
// idle tenant it retires.
//
// Lock order: index_mu_ before the pool's own lock and the sink's. Sink
// outcomes arrive with no lock held. Thread-safe.

#ifndef ZPAGED_SERVER_STORE_TENANT_H_
#define ZPAGED_SERVER_STORE_TENANT_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/codec/page_codec.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/core/zpool.h"
#include "server/evict/eviction_sink.h"
#include "server/store/incoming_page.h"
#include "server/store/page_record.h"
#include "server/store/page_stats.h"
#include "server/store/put_options.h"
#include "server/store/reclaim_source.h"
#include "server/store/reclaimer.h"
#include "server/store/store_options.h"
#include "server/store/stored_page.h"

namespace zpaged {

class Tenant final : public ReclaimSource,
                     public std::enable_shared_from_this<Tenant> {
 public:
  // What one indexed page costs beyond its pool bytes: a hash map slot (8
  // bytes of key, 16 of entry, 1 of control) at the map's lowest load after
  // growing (7/16), with room for the old table while it grows.
  static constexpr uint64_t kIndexEntryBytes = 96;

  // Create with std::make_shared. `sink`, `reclaimer` and `shared_budget`
  // must outlive the tenant, and every delivery to the sink must have its
  // outcome before the tenant is destroyed. Its pool is bounded by
  // options.tenant_max_bytes, of options.pool_driver (one of
  // kZpoolDrivers); `fixed_bytes` is what the store charges for it besides
  // its pages.
  Tenant(std::string name, const StoreOptions& options, uint64_t fixed_bytes,
         EvictionSink* sink, Reclaimer* reclaimer, MemoryBudget* shared_budget);

  Tenant(const Tenant&) = delete;
  Tenant& operator=(const Tenant&) = delete;

  const std::string& name() const override { return name_; }

  // Stores `page` under `key`, replacing what was there, and returns how it
  // is kept. `whole` is the page itself (kPageSize bytes): for a whole page
  // its bytes, for one the client encoded what they decode to (the store
  // checked). A client's compressed bytes are kept as they are unless they
  // do not fit a pool allocation: then the page is kept RAW. When the pool is
  // at a limit, somebody could give room (reclaimer.h) and
  // options.wait_for_room, the Put must wait for evictions: it then calls
  // `later` once for the function that takes its result, returns nullopt, and
  // hands that function the result from the thread on which the wait ends.
  // RESOURCE_EXHAUSTED when no room could be made; ABORTED, DEADLINE_EXCEEDED
  // or CANCELLED when a later write of the key, the deadline or the caller
  // ended the wait (see above). The store is unchanged by any failure, and each
  // is counted.
  std::optional<absl::StatusOr<PutResult>> Put(
      uint64_t key, const IncomingPage& page, absl::Span<const uint8_t> whole,
      const PutOptions& options, absl::FunctionRef<PutDone()> later);

  // Copies the page stored under `key` into `out` (kPageSize bytes): as
  // stored (its word, its compressed bytes) when its encoding is in
  // `accept`, otherwise whole. NOT_FOUND, with `out` unchanged, if there is
  // none.
  absl::StatusOr<StoredPage> Get(uint64_t key, absl::Span<uint8_t> out,
                                 PageEncodingSet accept = {}) const;

  // Get for each of `keys` in order, into out(i), under one hold of the
  // index lock (shared: other Gets go on, changes wait for the batch);
  // `read(i, result)` gets each outcome before the next buffer is asked for.
  void GetMany(
      absl::Span<const uint64_t> keys, PageEncodingSet accept,
      absl::FunctionRef<absl::Span<uint8_t>(size_t)> out,
      absl::FunctionRef<void(size_t, const absl::StatusOr<StoredPage>&)> read)
      const;

  // Removes the page under `key`; returns whether there was one.
  bool Delete(uint64_t key);

  // Removes every page indexed when the call began, each as Delete does,
  // and supersedes every Put waiting for room; returns how many pages it
  // removed. A page put meanwhile may survive.
  uint64_t DeleteAll();

  // True if it holds no page.
  bool Empty() const { return !HoldsPages(); }

  // ReclaimSource.
  uint64_t UsedBytes() const override;
  bool HoldsPages() const override { return stored_pages_.load() > 0; }
  uint64_t PoolFrames() const override;
  absl::StatusOr<FrameReclaim> StartReclaim() override;
  bool EndReclaim(const FrameReclaim& reclaim) override;
  OfferOutcome OfferPooled(ZpoolHandle handle, HandOver hand_over) override;
  std::vector<PageCopy> SameFilledCopies() const override;
  OfferOutcome OfferSameFilled(const PageCopy& copy,
                               HandOver hand_over) override;
  void Settle(const PageCopy& copy, DeliveryOutcome outcome,
              EvictionReason reason) override;

  // Counts a Put refused before it reached the tenant (bad page).
  void CountInvalidPut() { rejected_invalid_.fetch_add(1); }

  PageStats Stats() const;

 private:
  struct IndexEntry {
    uint64_t value;         // pool handle, or the word of a same-filled page
    uint32_t stored_bytes;  // compressed payload bytes; 0 otherwise
    PageEncoding encoding;
  };
  struct WaitingPut;

  // A page as it will be kept: its encoding, and its payload (the
  // compressed bytes, the RAW page) or, same-filled, its word.
  struct EncodedPage {
    PageEncoding encoding;
    absl::Span<const uint8_t> payload;
    uint64_t word = 0;
  };

  // What Reserve set aside for a page.
  struct Reservation {
    ZpoolHandle handle = 0;  // none for a same-filled page
    // Whether an index entry was charged: not when the limit refused it and
    // `key` was indexed already (a replacement needs no new entry).
    bool index_charged = false;
  };
  // Charges an index entry to the server's limit (at the limit, a key
  // already indexed goes on uncharged) and allocates pool room for `page`
  // (none when same-filled); RESOURCE_EXHAUSTED, with nothing charged, at a
  // limit.
  absl::StatusOr<Reservation> Reserve(uint64_t key, const EncodedPage& page);
  // Copies the record into the room reserved and indexes it under `key`,
  // then releases the copy it replaced; supersedes any Put of `key` that
  // waits for room. For `waiting`, a Put that waited: if it was superseded,
  // its deadline passed or its caller left, nothing is indexed, the room
  // is given back, and the status says why. Every indexed entry holds one
  // index charge: the reserved one, or one taken now if the key was
  // indexed at Reserve and is no longer.
  absl::StatusOr<PutResult> Install(uint64_t key, const Reservation& room,
                                    const EncodedPage& page,
                                    const WaitingPut* waiting = nullptr);
  // Why `waiting` may no longer be installed; OK if it may.
  static absl::Status Abandoned(const WaitingPut& waiting)
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // Gives back what Reserve set aside, for a Put that was not installed.
  void Unreserve(const Reservation& room);
  // Marks the waiting Put of `key` (every one, with `all`) superseded.
  void Supersede(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  void SupersedeAll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  // Adjusts the per-encoding counters for an entry coming (+1) or going (-1).
  void Account(const IndexEntry& entry, int direction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  // Get's read of `key`, under the index lock.
  absl::StatusOr<StoredPage> ReadKey(uint64_t key, absl::Span<uint8_t> out,
                                     PageEncodingSet accept) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // Copies the page an entry holds into `out`, as Get does.
  absl::StatusOr<StoredPage> Read(const IndexEntry& entry,
                                  absl::Span<uint8_t> out,
                                  PageEncodingSet accept = {}) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // The encoded page a Put keeps for `page`, compressed (if it was whole)
  // into `scratch`.
  EncodedPage Encode(const IncomingPage& page, absl::Span<const uint8_t> whole,
                     absl::Span<uint8_t> scratch) const;
  // Releases the pool memory behind an entry that is no longer indexed, and
  // its index charge.
  void Release(const IndexEntry& entry);
  void ReleaseIndexEntry();
  // True if `entry` is the copy `value` names: a pool handle, or with
  // `same_filled` the page's word.
  static bool IsCopy(const IndexEntry& entry, uint64_t value, bool same_filled);
  // Removes `key` and frees its memory if the index still holds that copy
  // (a Put or Delete may have replaced it meanwhile).
  void DropCopy(uint64_t key, uint64_t value, bool same_filled);

  // True if the pool cannot take another frame under its own limit.
  bool AtOwnLimit() const;
  // The rounds of a Put waiting for room: ask the Reclaimer for one frame,
  // then try again.
  void MakeRoomFor(WaitingPut* put);
  void RetryPut(WaitingPut* put, const ReclaimResult& reclaimed);
  // Ends a waiting Put with `result`.
  void FinishWaiting(WaitingPut* put, absl::StatusOr<PutResult> result);
  // Hands `copy` and the page in `page` to `hand_over`.
  OfferOutcome HandOverCopy(const PageCopy& copy, PageBytes page,
                            HandOver hand_over);

  const std::string name_;
  EvictionSink* const sink_;
  Reclaimer* const reclaimer_;
  MemoryBudget* const shared_budget_;  // charged for index entries
  const CodecOptions codec_;
  const uint64_t max_pool_bytes_;
  const uint64_t fixed_bytes_;
  const std::function<void(absl::Duration)> on_room_wait_;
  std::unique_ptr<Zpool> pool_;

  // Readers (Get, Stats, the read phase of an eviction) share it, so Gets
  // of one tenant decompress in parallel; index changes take it alone.
  mutable SharedMutex index_mu_;
  absl::flat_hash_map<uint64_t, IndexEntry> index_ ABSL_GUARDED_BY(index_mu_);
  RawKeys raw_keys_ ABSL_GUARDED_BY(index_mu_);
  uint64_t same_filled_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t lz4_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t zstd_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t raw_pages_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t compressed_bytes_ ABSL_GUARDED_BY(index_mu_) = 0;
  // Puts waiting for room, by key: the latest write of each, until a later
  // one supersedes it.
  absl::flat_hash_map<uint64_t, WaitingPut*> waiting_
      ABSL_GUARDED_BY(index_mu_);
  // index_.size(), readable without the lock (fair share, retirement).
  std::atomic<uint64_t> stored_pages_{0};

  std::atomic<uint64_t> evicted_{0};  // deliveries acked
  std::array<std::atomic<uint64_t>, kEvictionReasons> evicted_by_reason_{};
  std::atomic<uint64_t> room_waits_{0};
  std::atomic<uint64_t> rejected_abandoned_{0};
  std::atomic<uint64_t> timed_out_{0};
  std::atomic<uint64_t> disconnected_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> stale_{0};
  std::atomic<uint64_t> reclaimed_{0};
  std::atomic<uint64_t> rejected_limit_{0};
  std::atomic<uint64_t> rejected_invalid_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_TENANT_H_
