#include "client/nbd/block_store.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace zpaged::nbd {
namespace {

// The word every 8 bytes of `page` repeat, if they do.
std::optional<uint64_t> SameFilledWord(const uint8_t* page) {
  uint64_t word;
  std::memcpy(&word, page, sizeof(word));
  for (size_t i = sizeof(word); i < kBlockSize; i += sizeof(word)) {
    uint64_t next;
    std::memcpy(&next, page + i, sizeof(next));
    if (next != word) return std::nullopt;
  }
  return word;
}

void FillWithWord(uint64_t word, uint8_t* out) {
  for (size_t i = 0; i < kBlockSize; i += sizeof(word)) {
    std::memcpy(out + i, &word, sizeof(word));
  }
}

// Sets where a block is. The generation and word go first, so that a
// bridge killed between the stores leaves the old state with harmless new
// fields, never a new state with stale ones.
// Sets `block`'s entry to `state`, `generation` and `word`, its put_pending
// flag as it was.
void SetEntry(SpillFile& spill, uint64_t block, BlockState state,
              uint32_t generation, uint64_t word = 0) {
  BlockEntry entry = spill.entry(block);
  entry.state = state;
  entry.generation = generation;
  entry.word = word;
  spill.SetEntry(block, entry);
}

void SetPutPending(SpillFile& spill, uint64_t block, bool pending) {
  BlockEntry entry = spill.entry(block);
  entry.put_pending = pending ? 1 : 0;
  spill.SetEntry(block, entry);
}

uint32_t NextGeneration(uint32_t generation) {
  return (generation + 1) & kGenerationMask;
}

absl::Status OutOfRange(uint64_t offset, uint64_t length, uint64_t size) {
  return absl::OutOfRangeError(absl::StrCat("request [", offset, ", +", length,
                                            ") is beyond the device's ", size,
                                            " bytes"));
}

}  // namespace

class BlockStore::WriteLocks {
 public:
  WriteLocks(BlockStore& store, uint64_t first, uint64_t count) {
    if (count >= kStripes) {
      for (size_t s = 0; s < kStripes; ++s) stripes_.push_back(s);
    } else {
      for (uint64_t b = first; b < first + count; ++b) {
        stripes_.push_back(b % kStripes);
      }
      std::sort(stripes_.begin(), stripes_.end());
      stripes_.erase(std::unique(stripes_.begin(), stripes_.end()),
                     stripes_.end());
    }
    for (size_t s : stripes_) store.write_locks_[s].lock();
    store_ = &store;
  }
  ~WriteLocks() {
    for (auto s = stripes_.rbegin(); s != stripes_.rend(); ++s) {
      store_->write_locks_[*s].unlock();
    }
  }

 private:
  BlockStore* store_;
  std::vector<size_t> stripes_;
};

BlockStore::BlockStore(SpillFile* spill, PageClient* client, std::string tenant,
                       uint32_t replicas, LogFunction log)
    : spill_(spill),
      client_(client),
      tenant_(std::move(tenant)),
      replicas_(replicas),
      log_(std::move(log)),
      coalescer_(client, tenant_) {}

absl::Status BlockStore::Recover() {
  if (spill_->created()) {
    absl::StatusOr<uint64_t> deleted = client_->DeleteAll(tenant_);
    if (!deleted.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot clear tenant '", tenant_,
          "' in zpaged for a new spill file: ", deleted.status().message()));
    }
    if (*deleted > 0) {
      log_(absl::StrCat("new spill file: deleted the ", *deleted,
                        " pages zpaged still held for tenant '", tenant_, "'"));
    }
    return absl::OkStatus();
  }
  std::vector<uint64_t> pending;
  uint64_t corrupt = 0;
  for (uint64_t b = 0; b < spill_->blocks(); ++b) {
    const BlockEntry& entry = spill_->entry(b);
    if (!spill_->Intact(b)) {
      corrupt++;
    } else if (entry.put_pending) {
      pending.push_back(BlockKey(b, NextGeneration(entry.generation)));
    }
  }
  if (corrupt > 0) {
    log_(absl::StrCat("the spill file's index has ", corrupt,
                      " corrupt entries: those blocks read as errors until "
                      "they are written again"));
  }
  if (!pending.empty()) {
    absl::StatusOr<std::vector<bool>> deleted =
        client_->DeleteMany(tenant_, pending);
    if (!deleted.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot delete the copies of writes cut short by the last stop: ",
          deleted.status().message()));
    }
  }
  for (uint64_t key : pending) SetPutPending(*spill_, BlockOfKey(key), false);
  return absl::OkStatus();
}

absl::Status BlockStore::Read(uint64_t offset, absl::Span<uint8_t> out) {
  if (out.empty()) return absl::OkStatus();
  if (offset > size_bytes() || out.size() > size_bytes() - offset) {
    return OutOfRange(offset, out.size(), size_bytes());
  }
  const uint64_t first = offset / kBlockSize;
  const uint64_t count = (offset + out.size() - 1) / kBlockSize - first + 1;
  if (offset % kBlockSize == 0 && out.size() % kBlockSize == 0) {
    return ReadBlocks(first, count, out.data());
  }
  std::vector<uint8_t> blocks(count * kBlockSize);
  if (absl::Status read = ReadBlocks(first, count, blocks.data()); !read.ok()) {
    return read;
  }
  std::memcpy(out.data(), blocks.data() + offset % kBlockSize, out.size());
  return absl::OkStatus();
}

absl::Status BlockStore::ReadBlocks(uint64_t first, uint64_t count,
                                    uint8_t* out) {
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min<uint64_t>(kMaxBatch, count - done);
    std::vector<uint64_t> keys;
    std::vector<uint64_t> key_blocks;
    for (uint64_t i = done; i < done + n; ++i) {
      const uint64_t block = first + i;
      std::lock_guard<std::mutex> lock(EntryLock(block));
      const BlockEntry& entry = spill_->entry(block);
      if (std::optional<absl::Status> read =
              ReadLocally(block, entry, out + i * kBlockSize)) {
        if (!read->ok()) return *read;
      } else {
        keys.push_back(BlockKey(block, entry.generation));
        key_blocks.push_back(i);
      }
    }
    if (!keys.empty()) {
      std::vector<uint8_t*> outs;
      for (uint64_t i : key_blocks) outs.push_back(out + i * kBlockSize);
      std::vector<absl::Status> found(keys.size());
      if (absl::Status got =
              coalescer_.Fetch(keys, outs, absl::MakeSpan(found));
          !got.ok()) {
        return absl::UnavailableError(
            absl::StrCat("cannot read blocks from zpaged: ", got.message()));
      }
      for (size_t k = 0; k < keys.size(); ++k) {
        if (found[k].ok()) continue;
        if (absl::Status read = ReadBlock(first + key_blocks[k], outs[k]);
            !read.ok()) {
          return read;
        }
      }
    }
    done += n;
  }
  return absl::OkStatus();
}

std::optional<absl::Status> BlockStore::ReadLocally(uint64_t block,
                                                    const BlockEntry& entry,
                                                    uint8_t* out) const {
  if (!spill_->Intact(block)) {
    return absl::DataLossError(absl::StrCat(
        "block ", block,
        "'s entry in the spill file's index is corrupt (its check fails); "
        "the block reads as an error until it is written again"));
  }
  switch (entry.state) {
    case BlockState::kUnwritten:
      std::memset(out, 0, kBlockSize);
      return absl::OkStatus();
    case BlockState::kSameFilled:
      FillWithWord(entry.word, out);
      return absl::OkStatus();
    case BlockState::kSpilled:
      return spill_->ReadSlot(block, absl::MakeSpan(out, kBlockSize));
    case BlockState::kInZpaged:
      break;
  }
  return std::nullopt;
}

absl::Status BlockStore::ReadBlock(uint64_t block, uint8_t* out) {
  // A block moves (written, spilled) at most a few times while one read
  // looks for it; more means something is wrong.
  for (int attempt = 0; attempt < 8; ++attempt) {
    BlockEntry seen;
    {
      std::lock_guard<std::mutex> lock(EntryLock(block));
      seen = spill_->entry(block);
      if (std::optional<absl::Status> read = ReadLocally(block, seen, out)) {
        return *read;
      }
    }
    absl::StatusOr<std::string> got =
        client_->Get(tenant_, BlockKey(block, seen.generation));
    if (got.ok() && got->size() == kBlockSize) {
      std::memcpy(out, got->data(), kBlockSize);
      return absl::OkStatus();
    }
    if (!got.ok() && !absl::IsNotFound(got.status())) {
      return absl::UnavailableError(
          absl::StrCat("cannot read block ", block,
                       " from zpaged: ", got.status().message()));
    }
    std::lock_guard<std::mutex> lock(EntryLock(block));
    const BlockEntry& now = spill_->entry(block);
    if (now.state == BlockState::kInZpaged &&
        now.generation == seen.generation) {
      const std::string lost = absl::StrCat(
          "block ", block, " is lost: zpaged no longer holds it (generation ",
          seen.generation, " of tenant '", tenant_,
          "'); was zpaged restarted without --drain_on_shutdown?");
      log_(lost);
      return absl::DataLossError(lost);
    }
  }
  return absl::AbortedError(
      absl::StrCat("block ", block, " kept moving while it was read"));
}

absl::Status BlockStore::Write(uint64_t offset,
                               absl::Span<const uint8_t> data) {
  if (data.empty()) return absl::OkStatus();
  if (offset > size_bytes() || data.size() > size_bytes() - offset) {
    return OutOfRange(offset, data.size(), size_bytes());
  }
  const uint64_t first = offset / kBlockSize;
  const uint64_t last = (offset + data.size() - 1) / kBlockSize;
  const uint64_t count = last - first + 1;
  WriteLocks locks(*this, first, count);
  if (offset % kBlockSize == 0 && data.size() % kBlockSize == 0) {
    return WriteBlocks(first, count, data.data());
  }
  // Read-modify-write of the edge blocks, under their write locks, so
  // concurrent sub-block writes to one block never lose each other's bytes.
  std::vector<uint8_t> blocks(count * kBlockSize);
  if (offset % kBlockSize != 0) {
    if (absl::Status read = ReadBlock(first, blocks.data()); !read.ok()) {
      return read;
    }
  }
  if ((offset + data.size()) % kBlockSize != 0 &&
      (last != first || offset % kBlockSize == 0)) {
    if (absl::Status read =
            ReadBlock(last, blocks.data() + (count - 1) * kBlockSize);
        !read.ok()) {
      return read;
    }
  }
  std::memcpy(blocks.data() + offset % kBlockSize, data.data(), data.size());
  return WriteBlocks(first, count, blocks.data());
}

absl::Status BlockStore::WriteBlocks(uint64_t first, uint64_t count,
                                     const uint8_t* data) {
  struct InFlight {
    uint64_t block;
    uint32_t generation;
    BlockEntry replaced;
  };
  std::vector<uint64_t> obsolete;
  absl::Status result = absl::OkStatus();
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min<uint64_t>(kMaxBatch, count - done);
    std::vector<InFlight> puts;
    std::vector<KeyedPage> pages;
    for (uint64_t i = done; i < done + n; ++i) {
      const uint64_t block = first + i;
      const uint8_t* page = data + i * kBlockSize;
      const std::optional<uint64_t> word = SameFilledWord(page);
      std::lock_guard<std::mutex> lock(EntryLock(block));
      const BlockEntry& entry = spill_->entry(block);
      if (word.has_value()) {
        if (entry.state == BlockState::kInZpaged) {
          obsolete.push_back(BlockKey(block, entry.generation));
        } else if (entry.state == BlockState::kSpilled) {
          spill_->PunchSlots(block).IgnoreError();  // only disk space
        }
        SetEntry(*spill_, block, BlockState::kSameFilled, entry.generation,
                 *word);
        continue;
      }
      const uint32_t generation = NextGeneration(entry.generation);
      puts.push_back({block, generation, entry});
      SetPutPending(*spill_, block, true);
      pages.push_back(
          {BlockKey(block, generation),
           absl::string_view(reinterpret_cast<const char*>(page), kBlockSize)});
    }
    // Several batches in flight (the client's options), so that zpaged
    // compresses them on several threads.
    using PutResults = std::vector<absl::StatusOr<PutReply>>;
    absl::StatusOr<PutResults> stored = pages.empty()
                                            ? absl::StatusOr<PutResults>()
                                            : client_->PutMany(tenant_, pages);
    for (size_t k = 0; k < puts.size(); ++k) {
      const InFlight& put = puts[k];
      const bool stored_at_all = stored.ok() && (*stored)[k].ok();
      // With fewer copies than asked for (servers of the tier down), the
      // spill file keeps the block instead, as its durable copy.
      const bool in_zpaged = stored_at_all && (*stored)[k]->copies >= replicas_;
      if (!stored.ok() || (stored_at_all && !in_zpaged)) {
        // A failed call may have stored it before it failed; an
        // under-replicated copy is no longer where the block is.
        obsolete.push_back(BlockKey(put.block, put.generation));
      }
      if (put.replaced.state == BlockState::kInZpaged) {
        obsolete.push_back(BlockKey(put.block, put.replaced.generation));
      }
      std::lock_guard<std::mutex> lock(EntryLock(put.block));
      const BlockEntry& entry = spill_->entry(put.block);
      const bool spilled_already = entry.state == BlockState::kSpilled &&
                                   entry.generation == put.generation;
      if (in_zpaged && !spilled_already) {
        if (entry.state == BlockState::kSpilled) {
          spill_->PunchSlots(put.block).IgnoreError();  // only disk space
        }
        SetEntry(*spill_, put.block, BlockState::kInZpaged, put.generation);
      } else if (!in_zpaged) {
        const absl::Status spilled = spill_->WriteSlot(
            put.block,
            absl::MakeConstSpan(data + (put.block - first) * kBlockSize,
                                kBlockSize));
        if (spilled.ok()) {
          SetEntry(*spill_, put.block, BlockState::kSpilled, put.generation);
        } else if (result.ok()) {
          result = spilled;  // the block keeps its old content
        }
      }
      SetPutPending(*spill_, put.block, false);
    }
    done += n;
  }
  DeleteCopies(obsolete);
  return result;
}

absl::Status BlockStore::Zero(uint64_t offset, uint64_t length) {
  if (length == 0) return absl::OkStatus();
  if (offset > size_bytes() || length > size_bytes() - offset) {
    return OutOfRange(offset, length, size_bytes());
  }
  const uint64_t first = offset / kBlockSize;
  const uint64_t last = (offset + length - 1) / kBlockSize;
  WriteLocks locks(*this, first, last - first + 1);
  // The edges: read, zero the covered bytes, write back.
  auto zero_part = [&](uint64_t block) -> absl::Status {
    std::vector<uint8_t> page(kBlockSize);
    if (absl::Status read = ReadBlock(block, page.data()); !read.ok()) {
      return read;
    }
    const uint64_t start = std::max(offset, block * kBlockSize);
    const uint64_t end = std::min(offset + length, (block + 1) * kBlockSize);
    std::memset(page.data() + start - block * kBlockSize, 0, end - start);
    return WriteBlocks(block, 1, page.data());
  };
  uint64_t whole_first = first, whole_end = last + 1;
  if (offset % kBlockSize != 0) {
    if (absl::Status s = zero_part(first); !s.ok()) return s;
    ++whole_first;
  }
  if ((offset + length) % kBlockSize != 0 && last >= whole_first) {
    if (absl::Status s = zero_part(last); !s.ok()) return s;
    --whole_end;
  }
  return whole_first < whole_end ? Free(whole_first, whole_end - whole_first)
                                 : absl::OkStatus();
}

absl::Status BlockStore::Trim(uint64_t offset, uint64_t length) {
  if (offset > size_bytes() || length > size_bytes() - offset) {
    return OutOfRange(offset, length, size_bytes());
  }
  const uint64_t first = (offset + kBlockSize - 1) / kBlockSize;
  const uint64_t end = (offset + length) / kBlockSize;
  if (first >= end) return absl::OkStatus();
  WriteLocks locks(*this, first, end - first);
  return Free(first, end - first);
}

absl::Status BlockStore::Free(uint64_t first, uint64_t count) {
  std::vector<uint64_t> obsolete;
  // Runs of spilled blocks, [start, end): one hole each, punched once the
  // entries say unwritten. The write locks keep writes out until then, and
  // an eviction spills no block whose entry is unwritten.
  std::vector<std::pair<uint64_t, uint64_t>> spilled;
  for (uint64_t block = first; block < first + count; ++block) {
    std::lock_guard<std::mutex> lock(EntryLock(block));
    const BlockEntry& entry = spill_->entry(block);
    if (entry.state == BlockState::kInZpaged) {
      obsolete.push_back(BlockKey(block, entry.generation));
    } else if (entry.state == BlockState::kSpilled) {
      if (!spilled.empty() && spilled.back().second == block) {
        spilled.back().second++;
      } else {
        spilled.emplace_back(block, block + 1);
      }
    }
    // The generation stays: the next write must still take a newer one.
    SetEntry(*spill_, block, BlockState::kUnwritten, entry.generation);
  }
  for (const auto& [start, end] : spilled) {
    spill_->PunchSlots(start, end - start).IgnoreError();  // only disk space
  }
  DeleteCopies(obsolete);
  return absl::OkStatus();
}

void BlockStore::DeleteCopies(const std::vector<uint64_t>& keys) {
  if (keys.empty()) return;
  absl::StatusOr<std::vector<bool>> deleted =
      client_->DeleteMany(tenant_, keys);
  if (deleted.ok()) return;
  std::lock_guard<std::mutex> lock(failed_deletes_mu_);
  failed_deletes_unlogged_ += keys.size();
  const absl::Time now = absl::Now();
  if (now - failed_deletes_logged_ < kFailedDeleteLogEvery) return;
  log_(absl::StrCat(
      "could not delete ", failed_deletes_unlogged_,
      " copies zpaged may hold of blocks since rewritten, freed or spilled (",
      deleted.status().message(),
      "); any it holds stay until the bridge starts on a new spill file or "
      "the tenant is cleared. At most one such line every ",
      absl::FormatDuration(kFailedDeleteLogEvery)));
  failed_deletes_logged_ = now;
  failed_deletes_unlogged_ = 0;
}

absl::StatusOr<RepairResult> BlockStore::Repair(uint64_t first,
                                                uint64_t count) {
  count = std::min<uint64_t>({count, kMaxBatch, spill_->blocks() - first});
  WriteLocks locks(*this, first, count);
  std::vector<uint64_t> keys;
  for (uint64_t block = first; block < first + count; ++block) {
    std::lock_guard<std::mutex> lock(EntryLock(block));
    const BlockEntry& entry = spill_->entry(block);
    if (entry.state == BlockState::kInZpaged && spill_->Intact(block)) {
      keys.push_back(BlockKey(block, entry.generation));
    }
  }
  if (keys.empty()) return RepairResult{};
  absl::StatusOr<RepairResult> repaired = client_->Repair(tenant_, keys);
  if (!repaired.ok()) return repaired.status();
  // An eviction may have taken a block to the spill file while its copies
  // were made again: those copies are no longer where the block is.
  std::vector<uint64_t> moved;
  for (uint64_t key : keys) {
    const uint64_t block = BlockOfKey(key);
    std::lock_guard<std::mutex> lock(EntryLock(block));
    const BlockEntry& entry = spill_->entry(block);
    if (entry.state != BlockState::kInZpaged ||
        BlockKey(block, entry.generation) != key) {
      moved.push_back(key);
    }
  }
  DeleteCopies(moved);
  if (repaired->lost > 0) {
    log_(absl::StrCat("repair: ", repaired->lost, " of blocks ", first, "..",
                      first + count - 1,
                      " are lost: no server holds a copy any more"));
  }
  return repaired;
}

absl::Status BlockStore::Flush() { return spill_->Sync(); }

absl::Status BlockStore::Persist(uint64_t offset, uint64_t length) {
  if (offset > size_bytes() || length > size_bytes() - offset) {
    return OutOfRange(offset, length, size_bytes());
  }
  if (length == 0) return spill_->Sync();
  const uint64_t first = offset / kBlockSize;
  const uint64_t end = (offset + length - 1) / kBlockSize + 1;
  for (uint64_t batch = first; batch < end; batch += kMaxBatch) {
    const uint64_t n = std::min<uint64_t>(kMaxBatch, end - batch);
    WriteLocks locks(*this, batch, n);
    std::vector<uint64_t> keys;
    for (uint64_t block = batch; block < batch + n; ++block) {
      std::lock_guard<std::mutex> lock(EntryLock(block));
      const BlockEntry& entry = spill_->entry(block);
      if (entry.state == BlockState::kInZpaged && spill_->Intact(block)) {
        keys.push_back(BlockKey(block, entry.generation));
      }
    }
    if (keys.empty()) continue;
    std::vector<uint8_t> pages(keys.size() * kBlockSize);
    std::vector<uint8_t*> outs;
    for (size_t k = 0; k < keys.size(); ++k) {
      outs.push_back(pages.data() + k * kBlockSize);
    }
    absl::StatusOr<std::vector<absl::Status>> got =
        client_->GetMany(tenant_, keys, outs);
    if (!got.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot read blocks back from zpaged to persist them: ",
                       got.status().message()));
    }
    std::vector<uint64_t> persisted;
    for (size_t k = 0; k < keys.size(); ++k) {
      const uint64_t block = BlockOfKey(keys[k]);
      std::lock_guard<std::mutex> lock(EntryLock(block));
      const BlockEntry& entry = spill_->entry(block);
      // An eviction may have spilled it meanwhile: durable already.
      if (entry.state != BlockState::kInZpaged ||
          BlockKey(block, entry.generation) != keys[k]) {
        continue;
      }
      if (!(*got)[k].ok()) {
        return absl::DataLossError(
            absl::StrCat("block ", block, " is lost: zpaged no longer has it (",
                         (*got)[k].message(), ")"));
      }
      if (absl::Status written = spill_->WriteSlot(
              block, absl::MakeConstSpan(outs[k], kBlockSize));
          !written.ok()) {
        return written;
      }
      SetEntry(*spill_, block, BlockState::kSpilled, entry.generation);
      persisted.push_back(keys[k]);
    }
    DeleteCopies(persisted);
  }
  return spill_->Sync();
}

BlockCensus BlockStore::Census() {
  BlockCensus census;
  for (uint64_t block = 0; block < spill_->blocks(); ++block) {
    std::lock_guard<std::mutex> lock(EntryLock(block));
    switch (spill_->entry(block).state) {
      case BlockState::kUnwritten:
        census.unwritten++;
        break;
      case BlockState::kSameFilled:
        census.same_filled++;
        break;
      case BlockState::kInZpaged:
        census.in_zpaged++;
        break;
      case BlockState::kSpilled:
        census.spilled++;
        break;
    }
  }
  return census;
}

std::vector<Extent> BlockStore::Extents(uint64_t offset, uint64_t length) {
  std::vector<Extent> extents;
  if (offset >= size_bytes() || length == 0) return extents;
  length = std::min(length, size_bytes() - offset);
  const uint64_t first = offset / kBlockSize;
  const uint64_t last = (offset + length - 1) / kBlockSize;
  for (uint64_t block = first; block <= last; ++block) {
    BlockEntry entry;
    bool intact;
    {
      std::lock_guard<std::mutex> lock(EntryLock(block));
      entry = spill_->entry(block);
      intact = spill_->Intact(block);
    }
    // A corrupt entry's block is data (it reads as an error), never a hole.
    const bool hole = intact && entry.state == BlockState::kUnwritten;
    const bool zero =
        hole ||
        (intact && entry.state == BlockState::kSameFilled && entry.word == 0);
    const uint64_t start = block * kBlockSize;
    if (!extents.empty() && extents.back().hole == hole &&
        extents.back().zero == zero) {
      extents.back().length += kBlockSize;
    } else {
      extents.push_back({start, kBlockSize, hole, zero});
    }
  }
  return extents;
}

bool BlockStore::OnEvicted(uint64_t key, absl::string_view page) {
  const uint64_t block = BlockOfKey(key);
  if (block >= spill_->blocks() || page.size() != kBlockSize) {
    log_(absl::StrCat("zpaged evicted key ", key,
                      ", which is no block of this device; dropped"));
    return true;
  }
  const uint32_t generation = GenerationOfKey(key);
  std::lock_guard<std::mutex> lock(EntryLock(block));
  const BlockEntry& entry = spill_->entry(block);
  // A corrupt entry cannot say whether the copy is current; the block reads
  // as an error until it is written again either way.
  if (!spill_->Intact(block)) return true;
  const bool current =
      (entry.state == BlockState::kInZpaged &&
       entry.generation == generation) ||
      (entry.put_pending && generation == NextGeneration(entry.generation));
  if (!current) return true;  // outdated: a newer write replaced it
  const absl::Status written = spill_->WriteSlot(
      block, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(page.data()),
                                 kBlockSize));
  if (!written.ok()) {
    log_(absl::StrCat("cannot keep an evicted page, so zpaged keeps it: ",
                      written.message()));
    return false;
  }
  SetEntry(*spill_, block, BlockState::kSpilled, generation);
  return true;
}

}  // namespace zpaged::nbd
