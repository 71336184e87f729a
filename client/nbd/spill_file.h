// SpillFile: the NBD bridge's local file, which holds both the block index
// and the pages zpaged evicted.
//
//   offset 0            one 4 KiB header (SpillHeader: magic, version,
//                       device size, tenant)
//   kIndexOffset        the block index, BlockEntry[blocks], memory-mapped
//                       and rounded up to 4 KiB
//   slots_offset()      one 4 KiB slot per block, at slots_offset() +
//                       block * 4096; sparse, written only for spilled blocks
//
// The index is shared memory with the file (MAP_SHARED), so an index update
// survives the bridge being killed at any point; Sync() makes it and the
// slots durable against a host crash. Each entry is updated by the caller
// under its own per-block lock (block_store.h), with SetEntry: one 16-byte
// store, which a kill cannot tear. This class lays the file out, maps it,
// checks entries and moves slot bytes.
//
// Every entry carries a check of its fields and its block's number, and so
// does the header: a corrupted entry (flipped bits, a zeroed sector, an
// entry written at the wrong place) is an error for its block, never zeros
// or another block's data. A fresh index is written out with every entry
// unwritten and checked, so no entry is ever all zeros. Version 1 files,
// from before the checks, are given them when opened.
//
// Open locks the file (flock, exclusive, non-blocking): a second bridge on
// the same file is refused while the first lives, and the lock goes with
// the process however it ends.

#ifndef ZPAGED_CLIENT_NBD_SPILL_FILE_H_
#define ZPAGED_CLIENT_NBD_SPILL_FILE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace zpaged::nbd {

inline constexpr uint32_t kBlockSize = 4096;

// What the index knows about one block.
enum class BlockState : uint8_t {
  kUnwritten = 0,  // never written, or trimmed: reads as zeros
  kInZpaged = 1,   // zpaged holds it under BlockKey(block, generation)
  kSpilled = 2,    // in its slot of the spill file
  kSameFilled = 3  // every 8-byte word is `word`: kept here, not sent
};

// One block's index entry: 16 bytes, written in place in the mapped file.
struct alignas(16) BlockEntry {
  BlockState state;
  // Set while a Put of generation + 1 is in flight: if the bridge dies
  // then, zpaged may hold a copy the index never learned of, which the
  // next start deletes.
  uint8_t put_pending;
  // A check of the other fields and the block's number (SpillFile sets it).
  uint16_t check;
  // The generation of the block's newest copy: each write to zpaged takes
  // the next one, so a copy evicted before a newer write is recognised as
  // outdated. Wraps at kGenerationBits.
  uint32_t generation;
  uint64_t word;  // kSameFilled's word
};
static_assert(sizeof(BlockEntry) == 16);

// The zpaged key of a block's copy: block number above, generation below,
// so one block's copies never collide and an evicted key names both.
inline constexpr int kGenerationBits = 24;
inline constexpr uint32_t kGenerationMask = (1u << kGenerationBits) - 1;
inline constexpr uint64_t kMaxBlocks = uint64_t{1} << (64 - kGenerationBits);
inline uint64_t BlockKey(uint64_t block, uint32_t generation) {
  return block << kGenerationBits | (generation & kGenerationMask);
}
inline uint64_t BlockOfKey(uint64_t key) { return key >> kGenerationBits; }
inline uint32_t GenerationOfKey(uint64_t key) {
  return static_cast<uint32_t>(key & kGenerationMask);
}

class SpillFile {
 public:
  // Opens `path` for a device of `size_bytes` (a multiple of kBlockSize)
  // serving `tenant`, creating and laying out the file if it does not exist
  // or is empty. FAILED_PRECONDITION when another process holds the file or
  // when it was made for another size or tenant; INVALID_ARGUMENT for a
  // file that is not a spill file; the errno's message for I/O failures.
  static absl::StatusOr<std::unique_ptr<SpillFile>> Open(
      const std::string& path, uint64_t size_bytes, absl::string_view tenant);
  ~SpillFile();

  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  // True when Open laid the file out afresh: every block unwritten.
  bool created() const { return created_; }
  uint64_t blocks() const { return blocks_; }
  uint64_t slots_offset() const { return slots_offset_; }

  // The entry of `block` < blocks(), in the mapped file.
  const BlockEntry& entry(uint64_t block) const { return index_[block]; }
  // Whether `block`'s entry passes its check: false for a corrupted one.
  bool Intact(uint64_t block) const;
  // Replaces `block`'s entry with `value`, checked, in one store.
  void SetEntry(uint64_t block, BlockEntry value);

  // Slot I/O; each moves exactly kBlockSize bytes or fails with errno's
  // message.
  absl::Status ReadSlot(uint64_t block, absl::Span<uint8_t> out) const;
  absl::Status WriteSlot(uint64_t block, absl::Span<const uint8_t> page);
  // Gives the disk space of the slots of blocks [first, first + count) back
  // (a hole that reads as zeros), in one call.
  absl::Status PunchSlots(uint64_t first, uint64_t count = 1);
  // Calls PunchSlots made: a run of slots costs one, however long.
  uint64_t punch_calls() const { return punch_calls_; }

  // Makes the slots and the index durable (fdatasync, msync).
  absl::Status Sync();

  // Disk the file takes: its allocated blocks, holes not counted; 0 if the
  // file cannot be asked.
  uint64_t AllocatedBytes() const;

 private:
  SpillFile(int fd, uint64_t blocks, bool created);
  absl::Status MapIndex();

  const int fd_;
  const uint64_t blocks_;
  const uint64_t slots_offset_;
  const bool created_;
  BlockEntry* index_ = nullptr;
  size_t index_bytes_ = 0;
  std::atomic<uint64_t> punch_calls_{0};
};

}  // namespace zpaged::nbd

#endif  // ZPAGED_CLIENT_NBD_SPILL_FILE_H_
