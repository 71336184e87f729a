// BlockStore: a block device of 4 KiB blocks kept in zpaged, with a local
// spill file for what zpaged evicts or cannot take. It is everything the
// nbdkit plugin (nbdkit_zpaged_plugin.cc) does, without nbdkit, so that it
// can be tested on its own.
//
// Where a block is lives in its index entry (spill_file.h): unwritten,
// same-filled (the word is in the entry, nothing crosses the network), in
// zpaged under BlockKey(block, generation), or spilled to its slot.
//
// Writes go to zpaged in PutMany calls of up to 256 blocks, which the
// client splits into batch calls several in flight (its options). With a
// tier of servers (TierClient), a block is in zpaged only once it has its
// `replicas` copies there; with fewer (servers down), the spill file keeps
// it instead, so a write never rests on one server alone. A block
// zpaged refuses (RESOURCE_EXHAUSTED, or zpaged unreachable) is written to its
// slot instead, so a write fails only when the local disk does. Each write
// to zpaged takes the block's next generation, and the copy it replaced is
// deleted afterwards.
//
// Evictions arrive on OnEvicted (the eviction watcher's thread). A copy
// whose generation is the block's current one, or the one a write has in
// flight, is written to the block's slot before it is acked; an older copy
// is acked and dropped. So an evicted copy never overwrites a newer write.
//
// Reads follow the index: zeros, the word, zpaged, or the slot. Concurrent
// reads share GetBatch calls (GetCoalescer). A block
// the index places in zpaged that zpaged no longer has (restarted without a
// drain) is an I/O error, never zeros or stale data.
//
// Locking. Two kinds of striped locks, by block number:
//   - write locks serialise writers (writes, zeroes, trims, and the
//     read-modify-write of sub-block writes) of a block, and are held
//     across their zpaged calls;
//   - entry locks guard an index entry and the block's slot, and are only
//     held for memory and local-disk work, never across a zpaged call.
// OnEvicted takes entry locks only, so a Put that waits in zpaged for this
// bridge's acks can never wait on itself. Write locks are taken in
// ascending stripe order, entry locks inside write locks.
//
// Thread-safe: nbdkit calls it from many threads at once.

#ifndef ZPAGED_CLIENT_NBD_BLOCK_STORE_H_
#define ZPAGED_CLIENT_NBD_BLOCK_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/lib/page_client.h"
#include "client/nbd/get_coalescer.h"
#include "client/nbd/spill_file.h"

namespace zpaged::nbd {

// One run of blocks in the same state for Extents: hole (reads as zeros,
// nothing stored), zero (reads as zeros), or data.
struct Extent {
  uint64_t offset;
  uint64_t length;
  bool hole;
  bool zero;
};

// How many blocks are where, at one moment.
struct BlockCensus {
  uint64_t unwritten = 0;
  uint64_t same_filled = 0;
  uint64_t in_zpaged = 0;
  uint64_t spilled = 0;
};

// Where the store reports what it cannot return to a caller (a copy lost,
// a delete that failed); the plugin passes nbdkit's error log.
using LogFunction = std::function<void(const std::string& message)>;

class BlockStore {
 public:
  // Blocks a write's PutMany, a read's GetMany or a Repair carry at most.
  static constexpr size_t kMaxBatch = 256;

  // `spill` and `client` must outlive the store. A block is kept in zpaged
  // only with `replicas` copies there (1 for one server); a write stored
  // with fewer goes to the spill file instead.
  BlockStore(SpillFile* spill, PageClient* client, std::string tenant,
             uint32_t replicas, LogFunction log);

  BlockStore(const BlockStore&) = delete;
  BlockStore& operator=(const BlockStore&) = delete;

  uint64_t size_bytes() const { return spill_->blocks() * kBlockSize; }

  // Brings zpaged and the index into agreement before serving: on a newly
  // created spill file, deletes every page zpaged holds for the tenant; on
  // an old one, deletes the copies of Puts that were in flight when the
  // bridge last stopped. An error if zpaged cannot be reached.
  absl::Status Recover();

  // Byte-addressed I/O within size_bytes(); any alignment. Errors are EIO
  // material: the message says which block and why.
  absl::Status Read(uint64_t offset, absl::Span<uint8_t> out);
  absl::Status Write(uint64_t offset, absl::Span<const uint8_t> data);
  // Makes [offset, offset + length) read as zeros. Whole blocks are freed
  // (unwritten again); the parts of blocks at the edges are written.
  absl::Status Zero(uint64_t offset, uint64_t length);
  // Frees the whole blocks within [offset, offset + length); a discard, so
  // the edges are left alone.
  absl::Status Trim(uint64_t offset, uint64_t length);
  // Makes every completed write durable in the spill file and its index.
  // Blocks held by zpaged are as durable as zpaged (docs/vm.md).
  absl::Status Flush();
  // Makes the blocks within [offset, offset + length) durable on the local
  // disk: each held only in zpaged is read back and written to the spill
  // file (its copies in zpaged then go), and the spill file is synced. A
  // flush and a FUA write of a bridge with flush=disk.
  absl::Status Persist(uint64_t offset, uint64_t length);
  // The extents covering [offset, offset + length), coalesced.
  std::vector<Extent> Extents(uint64_t offset, uint64_t length);

  // Brings the blocks in zpaged among [first, first + count) (at most
  // kMaxBatch) back to their copies on a tier (PageClient::Repair), holding
  // their write locks; a copy that an eviction moved to the spill file
  // meanwhile is deleted again. Blocks no server holds are logged as lost.
  absl::StatusOr<RepairResult> Repair(uint64_t first, uint64_t count);

  // Counts the blocks by where they are, each under its entry lock; O(blocks).
  BlockCensus Census();

  // The eviction watcher's callback: true once the copy is safe (or
  // outdated), so it may be acked; false leaves it in zpaged.
  bool OnEvicted(uint64_t key, absl::string_view page);

 private:
  static constexpr size_t kStripes = 1024;
  // Holds the write locks of blocks [first, first + count) until destroyed.
  class WriteLocks;

  std::mutex& EntryLock(uint64_t block) {
    return entry_locks_[block % kStripes];
  }

  // Reads whole blocks [first, first + count) into `out`.
  absl::Status ReadBlocks(uint64_t first, uint64_t count, uint8_t* out);
  // Reads a block that is not in zpaged into `out`, under its entry lock;
  // nullopt for one that is.
  std::optional<absl::Status> ReadLocally(uint64_t block,
                                          const BlockEntry& entry,
                                          uint8_t* out) const;
  // Reads one block by its entry, retrying when a write or an eviction
  // moved it meanwhile.
  absl::Status ReadBlock(uint64_t block, uint8_t* out);
  // Writes whole blocks; requires their write locks.
  absl::Status WriteBlocks(uint64_t first, uint64_t count, const uint8_t* data);
  // Marks whole blocks unwritten and frees what held them; requires their
  // write locks.
  absl::Status Free(uint64_t first, uint64_t count);
  // Deletes copies zpaged no longer needs to keep (or may hold: a write
  // whose call failed). Failures are logged, not returned: the block is
  // already right, only zpaged memory is at stake. One line per
  // kFailedDeleteLogEvery at most, counting those in between: with zpaged
  // down every write fails to delete.
  void DeleteCopies(const std::vector<uint64_t>& keys);
  static constexpr absl::Duration kFailedDeleteLogEvery = absl::Seconds(10);

  SpillFile* const spill_;
  PageClient* const client_;
  const std::string tenant_;
  const uint32_t replicas_;
  const LogFunction log_;
  GetCoalescer coalescer_;
  std::mutex failed_deletes_mu_;
  absl::Time failed_deletes_logged_ = absl::InfinitePast();
  uint64_t failed_deletes_unlogged_ = 0;  // guarded by failed_deletes_mu_
  std::array<std::mutex, kStripes> write_locks_;
  std::array<std::mutex, kStripes> entry_locks_;
};

}  // namespace zpaged::nbd

#endif  // ZPAGED_CLIENT_NBD_BLOCK_STORE_H_
