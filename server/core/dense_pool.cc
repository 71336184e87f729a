#include "server/core/dense_pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

// Slots in use in the table: one past the highest live slot.
int TableSlots(uint64_t live_slots) {
  return 64 - std::countl_zero(live_slots);
}

}  // namespace

DensePool::DensePool(ZpoolOptions options) : table_(options, kSlotBits) {
  static_assert(kDenseMaxSlots <= (1 << kSlotBits) - 1,
                "the whole slot must stay free");
}

DensePool::SlotEntry* DensePool::SlotTable(FrameIndex frame) const {
  return reinterpret_cast<SlotEntry*>(table_.Address(frame));
}

absl::StatusOr<HandleFields> DensePool::Validate(ZpoolHandle handle) const {
  absl::StatusOr<HandleFields> fields = table_.Decode(handle);
  if (!fields.ok() || fields->slot == table_.whole_slot()) return fields;
  if ((dense_[fields->frame].live_slots >> fields->slot & 1) == 0 ||
      SlotTable(fields->frame)[fields->slot].tag != fields->tag) {
    return StaleHandle(handle);
  }
  return fields;
}

void DensePool::Track(FrameIndex frame) {
  if (frame >= dense_.size()) dense_.resize(frame + 1);
  dense_[frame] = DenseFrame{};
}

void DensePool::ReleaseFrame(FrameIndex frame) {
  dense_[frame] = DenseFrame{};
  table_.ReleaseFrame(frame);
}

bool DensePool::IsEmpty(FrameIndex frame) const {
  return IsPacked(frame) ? dense_[frame].live_slots == 0
                         : table_.entry(frame).whole_tag == 0;
}

bool DensePool::Listed(FrameIndex frame) const {
  return !table_.entry(frame).under_reclaim && !IsEmpty(frame);
}

size_t DensePool::Room(FrameIndex frame) const {
  const DenseFrame& state = dense_[frame];
  const int slots = TableSlots(state.live_slots);
  const bool free_slot = std::popcount(state.live_slots) < slots;
  if (!free_slot && slots == kDenseMaxSlots) return 0;
  const size_t table_end = (slots + (free_slot ? 0 : 1)) * kDenseSlotBytes;
  return state.data_start > table_end ? state.data_start - table_end : 0;
}

void DensePool::Compact(FrameIndex frame) {
  DenseFrame& state = dense_[frame];
  SlotEntry* table = SlotTable(frame);
  std::array<uint8_t, kDenseMaxSlots> order;
  int live = 0;
  for (uint64_t bits = state.live_slots; bits != 0; bits &= bits - 1) {
    order[live++] = static_cast<uint8_t>(std::countr_zero(bits));
  }
  // Highest first: each moves up into space already vacated, never over an
  // allocation still to move.
  std::sort(order.begin(), order.begin() + live, [table](int a, int b) {
    return table[a].offset > table[b].offset;
  });
  uint8_t* const base = table_.Address(frame);
  size_t end = kPageSize;
  for (int i = 0; i < live; ++i) {
    SlotEntry& entry = table[order[i]];
    const size_t offset = end - entry.length;
    if (offset != entry.offset) {
      std::memmove(base + offset, base + entry.offset, entry.length);
      entry.offset = static_cast<uint16_t>(offset);
    }
    end = offset;
  }
  state.data_start = static_cast<uint16_t>(end);
  state.holed = false;
}

void DensePool::FitInsert(FrameIndex frame) {
  const int list = static_cast<int>(Room(frame) / kDenseGranule);
  dense_[frame].fit_list = static_cast<uint16_t>(list);
  fit_lists_[list].PushHead(dense_, frame);
  fit_nonempty_[list / 64] |= uint64_t{1} << (list % 64);
}

void DensePool::FitRemove(FrameIndex frame) {
  const int list = dense_[frame].fit_list;
  fit_lists_[list].Remove(dense_, frame);
  if (fit_lists_[list].empty()) {
    fit_nonempty_[list / 64] &= ~(uint64_t{1} << (list % 64));
  }
}

int DensePool::FirstFitList(int granules) const {
  for (int word = granules / 64; word < static_cast<int>(fit_nonempty_.size());
       ++word) {
    uint64_t bits = fit_nonempty_[word];
    if (word == granules / 64) bits &= ~uint64_t{0} << (granules % 64);
    if (bits != 0) return word * 64 + std::countr_zero(bits);
  }
  return -1;
}

bool DensePool::ReleaseIfDone(FrameIndex frame) {
  if (!IsEmpty(frame) || dense_[frame].pins != 0 ||
      table_.entry(frame).under_reclaim) {
    return false;
  }
  ReleaseFrame(frame);
  return true;
}

absl::StatusOr<ZpoolHandle> DensePool::Allocate(size_t size) {
  if (size == 0) return absl::InvalidArgumentError("allocation of 0 bytes");
  if (size > kDenseMaxAllocation) {
    return absl::OutOfRangeError(absl::StrCat(
        "allocation of ", size, " bytes is larger than the dense pool takes (",
        kDenseMaxAllocation, " bytes)"));
  }
  const int granules =
      static_cast<int>((size + kDenseGranule - 1) / kDenseGranule);
  const size_t length = granules * kDenseGranule;
  MutexLock lock(&mu_);

  FrameIndex frame;
  if (const int list = FirstFitList(granules); list >= 0) {
    frame = fit_lists_[list].head();
    FitRemove(frame);
    table_.RemoveLru(frame);
  } else {
    absl::StatusOr<FrameIndex> fresh = table_.NewFrame(FrameKind::kPacked);
    if (!fresh.ok()) return fresh.status();
    frame = *fresh;
    Track(frame);
  }

  DenseFrame& state = dense_[frame];
  const uint32_t slot = std::countr_one(state.live_slots);
  const uint32_t tag = table_.NextTag();
  state.data_start -= static_cast<uint16_t>(length);
  SlotTable(frame)[slot] =
      SlotEntry{state.data_start, static_cast<uint16_t>(length), tag};
  state.live_slots |= uint64_t{1} << slot;
  FitInsert(frame);
  table_.PushLru(frame);
  ++packed_allocations_;
  packed_bytes_ += length;
  return table_.Encode(frame, slot, tag);
}

absl::StatusOr<ZpoolHandle> DensePool::AllocateWholeFrame() {
  MutexLock lock(&mu_);
  absl::StatusOr<ZpoolHandle> handle = table_.AllocateWhole();
  if (handle.ok()) Track(table_.Decode(*handle)->frame);
  return handle;
}

absl::Status DensePool::Free(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleFields> fields = Validate(handle);
  if (!fields.ok()) return fields.status();
  const FrameIndex frame = fields->frame;
  DenseFrame& state = dense_[frame];
  const bool was_listed = Listed(frame);

  if (fields->slot == table_.whole_slot()) {
    table_.FreeWhole(frame);
  } else {
    if (was_listed) FitRemove(frame);
    SlotEntry& entry = SlotTable(frame)[fields->slot];
    packed_bytes_ -= entry.length;
    --packed_allocations_;
    entry = SlotEntry{0, 0, 0};
    state.live_slots &= ~(uint64_t{1} << fields->slot);
    state.holed = true;
    if (state.pins == 0) Compact(frame);
  }

  if (!was_listed) return absl::OkStatus();  // the reclaimer has the frame
  if (IsEmpty(frame)) {
    table_.RemoveLru(frame);
    // A pinned frame is released by its last Unmap.
    ReleaseIfDone(frame);
  } else if (IsPacked(frame)) {
    FitInsert(frame);
  }
  return absl::OkStatus();
}

absl::StatusOr<FrameReclaim> DensePool::StartReclaim() {
  MutexLock lock(&mu_);
  absl::StatusOr<FrameReclaim> reclaim = table_.StartReclaim();
  if (!reclaim.ok() || !IsPacked(reclaim->frame)) return reclaim;
  // Off the fit lists too, so nothing is allocated in it meanwhile.
  const FrameIndex frame = reclaim->frame;
  FitRemove(frame);
  const SlotEntry* table = SlotTable(frame);
  for (uint64_t bits = dense_[frame].live_slots; bits != 0; bits &= bits - 1) {
    const uint32_t slot = std::countr_zero(bits);
    reclaim->handles.push_back(table_.Encode(frame, slot, table[slot].tag));
  }
  return reclaim;
}

bool DensePool::EndReclaim(const FrameReclaim& reclaim) {
  MutexLock lock(&mu_);
  const FrameIndex frame = reclaim.frame;
  table_.EndReclaim(frame);
  // Empty but still pinned, it is released by its last Unmap; either way no
  // allocation is left in it.
  if (IsEmpty(frame)) {
    ReleaseIfDone(frame);
    return true;
  }
  if (IsPacked(frame)) FitInsert(frame);
  table_.PushLru(frame);
  return false;
}

absl::StatusOr<MappedAllocation> DensePool::Map(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleFields> fields = Validate(handle);
  if (!fields.ok()) return fields.status();
  ++dense_[fields->frame].pins;
  uint8_t* base = table_.Address(fields->frame);
  if (fields->slot == table_.whole_slot()) {
    return MappedAllocation{base, kPageSize, /*whole_frame=*/true};
  }
  const SlotEntry& entry = SlotTable(fields->frame)[fields->slot];
  return MappedAllocation{base + entry.offset, entry.length};
}

void DensePool::Unmap(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  const FrameIndex frame = static_cast<FrameIndex>(handle);
  // An Unmap without its Map is the caller's bug; it must not become ours.
  if (frame >= dense_.size() || dense_[frame].pins == 0) return;
  DenseFrame& state = dense_[frame];
  if (--state.pins != 0) return;
  if (state.holed) {
    const bool listed = Listed(frame);
    if (listed) FitRemove(frame);
    Compact(frame);
    if (listed) FitInsert(frame);
  }
  ReleaseIfDone(frame);
}

uint64_t DensePool::TotalSizeBytes() const {
  MutexLock lock(&mu_);
  return table_.pool_frames() * kPageSize;
}

ZpoolStats DensePool::Stats() const {
  MutexLock lock(&mu_);
  ZpoolStats stats = table_.Stats();
  stats.allocations = packed_allocations_ + table_.whole_allocations();
  stats.allocated_bytes =
      packed_bytes_ + table_.whole_allocations() * kPageSize;
  return stats;
}

absl::Status DensePool::CheckConsistency() const {
  MutexLock lock(&mu_);
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };
  // An empty frame stays (off the LRU) only while under reclaim.
  if (absl::Status frames =
          table_.CheckConsistency([this](FrameIndex f) { return !IsEmpty(f); });
      !frames.ok()) {
    return frames;
  }

  uint64_t packed = 0, bytes = 0, packed_listed = 0;
  for (FrameIndex f = 0; f < table_.size(); ++f) {
    const FrameEntry& entry = table_.entry(f);
    if (entry.kind == FrameKind::kFree) continue;
    const DenseFrame& state = dense_[f];
    if (state.pins != 0) return fail("frame ", f, " is pinned at rest");
    if (IsEmpty(f) && !entry.under_reclaim) {
      return fail("frame ", f, " is empty and was not released");
    }
    if (entry.kind == FrameKind::kWhole) continue;
    packed_listed += Listed(f);
    const int slots = TableSlots(state.live_slots);
    if (slots > kDenseMaxSlots) return fail("frame ", f, " has too many slots");
    if (state.data_start < slots * kDenseSlotBytes) {
      return fail("frame ", f, "'s data overlaps its slot table");
    }
    // Live extents, checked for bounds, overlap and (unless holed) for
    // lying end to end from data_start.
    std::array<std::pair<uint16_t, uint16_t>, kDenseMaxSlots> extents;
    int live = 0;
    const SlotEntry* table = SlotTable(f);
    for (int slot = 0; slot < slots; ++slot) {
      const SlotEntry& e = table[slot];
      const bool is_live = (state.live_slots >> slot & 1) != 0;
      if (is_live != (e.length != 0) || is_live != (e.tag != 0)) {
        return fail("frame ", f, " slot ", slot, " disagrees with the bitmap");
      }
      if (!is_live) continue;
      if (e.length % kDenseGranule != 0 || e.offset < state.data_start ||
          e.offset + e.length > kPageSize) {
        return fail("frame ", f, " slot ", slot, " lies outside its data");
      }
      extents[live++] = {e.offset, e.length};
      bytes += e.length;
      ++packed;
    }
    std::sort(extents.begin(), extents.begin() + live);
    size_t at = state.data_start;
    for (int i = 0; i < live; ++i) {
      if (extents[i].first < at || (!state.holed && extents[i].first != at)) {
        return fail("frame ", f, "'s allocations overlap or leave a hole");
      }
      at = extents[i].first + extents[i].second;
    }
    if (!state.holed && at != kPageSize && live > 0) {
      return fail("frame ", f, "'s allocations do not end the frame");
    }
  }
  if (packed != packed_allocations_ || bytes != packed_bytes_) {
    return fail("allocation counters disagree with the frames");
  }

  uint64_t on_fit_lists = 0;
  for (int list = 0; list < kFitLists; ++list) {
    const bool marked = (fit_nonempty_[list / 64] >> (list % 64) & 1) != 0;
    if (marked == fit_lists_[list].empty()) {
      return fail("fit list ", list, " disagrees with the bitmap");
    }
    FrameIndex back = kNoFrame;
    for (FrameIndex f = fit_lists_[list].head(); f != kNoFrame;
         f = dense_[f].fit_next) {
      const DenseFrame& state = dense_[f];
      if (state.fit_prev != back || !IsPacked(f) || !Listed(f) ||
          state.fit_list != list ||
          Room(f) / kDenseGranule != static_cast<size_t>(list)) {
        return fail("fit list ", list, " is broken at frame ", f);
      }
      if (++on_fit_lists > table_.pool_frames()) {
        return fail("fit list has a cycle");
      }
      back = f;
    }
  }
  if (on_fit_lists != packed_listed) {
    return fail(on_fit_lists, " frames on fit lists, ", packed_listed,
                " should be");
  }
  return absl::OkStatus();
}

}  // namespace zpaged
