// Tenant: one client's pages — a zbud pool, the index from key to where each
// page is kept, and the counters.
//
// The path of a page:
//   Put     classify and compress into a thread-local buffer, outside every
//           lock; allocate in the pool; copy the record in; swap the index
//           entry; free the old copy only after the new one is in. A pool at
//           a limit, with a watcher connected, makes room by Reclaim; the Put
//           then keeps its compressed bytes and finishes when the room is
//           made (PutOptions says whether it may wait, and how long).
//   Get     index -> map -> decompress into the caller's buffer, under the
//           index lock held shared: the copy cannot be freed mid-read, and
//           Gets do not wait for each other.
//   Reclaim take frames off the pool's LRU (Zpool::StartReclaim), read each
//           live page and hand it to the EvictionSink, under the index lock
//           held shared so that the copy handed over is the indexed one; the
//           sink's outcome (an ack, a deadline, a watcher leaving) arrives on
//           another thread, drops the acked copy from the index and frees
//           it, and the frame's last outcome ends its reclaim. No thread
//           waits for a network ack; the ordering of copies of one key is
//           the sink's rule (evict/eviction_broker.h).
//
// What it costs: its pool's frames, bounded by its own limit and charged to
// the server's, and kIndexEntryBytes a page, charged to the server's limit
// (a same-filled page takes no pool memory, but its index entry is memory
// all the same); the tenant's fixed cost is the store's to charge. A tenant is
// owned through shared_ptr: work that outlives a call (a Reclaim's evictions, a
// drain's deliveries) holds it, so the store can tell that no one holds an idle
// tenant it retires.
//
// Lock order: index_mu_ before the pool's own lock and the sink's. Sink
// outcomes arrive with no lock held. Thread-safe.

#ifndef ZPAGED_SERVER_STORE_TENANT_H_
#define ZPAGED_SERVER_STORE_TENANT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

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
#include "server/store/page_record.h"
#include "server/store/page_stats.h"
#include "server/store/put_options.h"

namespace zpaged {

struct ReclaimResult {
  uint32_t reclaimed_pool_pages = 0;
  uint64_t evicted_pages = 0;
};

// Receives the outcome of a Reclaim, once.
using ReclaimDone = absl::AnyInvocable<void(ReclaimResult) &&>;

class Tenant : public std::enable_shared_from_this<Tenant> {
 public:
  // What one indexed page costs beyond its pool bytes: a hash map slot (8
  // bytes of key, 16 of entry, 1 of control) at the map's lowest load after
  // growing (7/16), with room for the old table while it grows.
  static constexpr uint64_t kIndexEntryBytes = 96;

  // Create with std::make_shared. `sink` and `shared_budget` (may be null)
  // must outlive the tenant, and every delivery to the sink must have its
  // outcome before the tenant is destroyed. `max_pool_bytes` bounds this
  // tenant's pool; `pool_driver` must be one of kZpoolDrivers.
  Tenant(std::string name, uint64_t max_pool_bytes, EvictionSink* sink,
         MemoryBudget* shared_budget, const CodecOptions& codec = {},
         absl::string_view pool_driver = kZpoolDrivers[0]);

  Tenant(const Tenant&) = delete;
  Tenant& operator=(const Tenant&) = delete;

  const std::string& name() const { return name_; }

  // Stores `page` (kPageSize bytes) under `key`, replacing what was there,
  // and returns how it is kept. When the pool is at a limit, a watcher is
  // connected and options.wait_for_room, the Put must wait for evictions:
  // it then calls `later` once for the function that takes its result,
  // returns nullopt, and hands that function the result from the thread on
  // which the wait ends. RESOURCE_EXHAUSTED when no room could be made (the
  // store is then unchanged); every such refusal is counted.
  std::optional<absl::StatusOr<PutResult>> Put(
      uint64_t key, absl::Span<const uint8_t> page, const PutOptions& options,
      absl::FunctionRef<PutDone()> later);

  // Copies the page stored under `key` into `out` (kPageSize bytes).
  // NOT_FOUND, with `out` unchanged, if there is none.
  absl::Status Get(uint64_t key, absl::Span<uint8_t> out) const;

  // Removes the page under `key`; returns whether there was one.
  bool Delete(uint64_t key);

  // Removes every page indexed when the call began, each as Delete does,
  // and returns how many it removed. A page put meanwhile may survive.
  uint64_t DeleteAll();

  // Tries to release up to `frames` pool frames by evicting their pages to
  // the sink, each frame with up to kTriesPerFrame frames along the LRU,
  // and stops at the first that cannot be released. `done` gets what was
  // released and acked once every page handed over has its outcome: maybe
  // before Reclaim returns, else on the thread of the last outcome.
  void Reclaim(uint32_t frames, ReclaimDone done);

  // Evicts every page to the sink and waits for the outcomes: the pool by
  // reclaim until it is empty or stops shrinking, then the same-filled
  // pages. Starts nothing after `deadline` and waits no longer than it; a
  // delivery still out then resolves later, as any does. Returns how many
  // pages were acked; what is left shows in Stats().
  uint64_t Drain(absl::Time deadline);

  // True if it holds no page.
  bool Empty() const;

  // Counts a Put refused before it reached the tenant (bad page).
  void CountInvalidPut() { rejected_invalid_.fetch_add(1); }

  PageStats Stats() const;

  static constexpr uint32_t kTriesPerFrame = 8;
  // Frames one Reclaim has under eviction at once.
  static constexpr uint32_t kFramesInFlight = 16;

 private:
  struct IndexEntry {
    uint64_t value;         // pool handle, or the word of a same-filled page
    uint32_t stored_bytes;  // compressed payload bytes; 0 otherwise
    PageEncoding encoding;
  };
  struct WaitingPut;
  struct ReclaimJob;
  struct FrameEviction;

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
  // Copies the record into the room reserved and indexes it under `key`.
  PutResult Install(uint64_t key, const Reservation& room,
                    const EncodedPage& page);
  // Indexes `entry` under `key`, then releases the copy it replaced. Every
  // indexed entry holds one index charge: the reserved one, or one taken
  // now if the key was indexed at Reserve and is no longer.
  void Replace(uint64_t key, const IndexEntry& entry, bool index_charged);
  // Adjusts the per-encoding counters for an entry coming (+1) or going (-1).
  void Account(const IndexEntry& entry, int direction)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  // Copies the page an entry holds into `out`.
  absl::Status Read(const IndexEntry& entry, absl::Span<uint8_t> out) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
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

  // The rounds of a Put waiting for room: reclaim one frame, then try again.
  void MakeRoomFor(WaitingPut* put);
  void RetryPut(WaitingPut* put, const ReclaimResult& reclaimed);

  // Starts chains of frame evictions while the job allows.
  void StartChains(const std::shared_ptr<ReclaimJob>& job);
  // Takes frames off the LRU, up to `tries`, until one has pages out (its
  // last outcome goes on in FrameSettled) or the chain ends.
  void TryFrames(const std::shared_ptr<ReclaimJob>& job, uint32_t tries);
  void FrameSettled(const std::shared_ptr<FrameEviction>& frame);
  void EndChain(const std::shared_ptr<ReclaimJob>& job, bool released);
  // Hands the page `handle` holds to the sink; false if it was not handed
  // over (replaced or deleted since: stale; or the sink refused).
  bool EvictPage(ZpoolHandle handle,
                 const std::shared_ptr<FrameEviction>& frame);
  void PageSettled(const std::shared_ptr<FrameEviction>& frame, uint64_t key,
                   ZpoolHandle handle, DeliveryOutcome outcome);
  // Counts a delivery's outcome; true if it was acked.
  bool CountOutcome(DeliveryOutcome outcome);
  // Reclaim, waiting for the result until `deadline`; nullopt past it.
  std::optional<ReclaimResult> ReclaimAndWait(uint32_t frames,
                                              absl::Time deadline);
  // Hands every same-filled page to the sink and waits for the outcomes,
  // until `deadline`.
  void DrainSameFilled(absl::Time deadline);

  const std::string name_;
  EvictionSink* const sink_;
  MemoryBudget* const shared_budget_;  // charged for index entries
  const CodecOptions codec_;
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

  std::atomic<uint64_t> evicted_{0};  // deliveries acked
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
