#include "server/core/dense_pool.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

constexpr uint32_t kTagBits = 26;
constexpr uint32_t kTagMask = (uint32_t{1} << kTagBits) - 1;
constexpr int kSlotShift = 32;
constexpr uint32_t kSlotMask = 63;
constexpr int kTagShift = 38;
// The slot number of a whole frame's handle.
constexpr uint32_t kWholeSlot = kSlotMask;
static_assert(kDenseMaxSlots <= static_cast<int>(kWholeSlot));

absl::Status StaleHandle(ZpoolHandle handle) {
  return absl::NotFoundError(absl::StrCat("handle 0x", absl::Hex(handle),
                                          " does not name a live allocation"));
}

// Slots in use in the table: one past the highest live slot.
int TableSlots(uint64_t live_slots) {
  return 64 - std::countl_zero(live_slots);
}

}  // namespace

DensePool::DensePool(ZpoolOptions options)
    : arena_(options.arena, options.shared_budget),
      next_tag_(absl::Uniform<uint32_t>(absl::BitGen())) {}

ZpoolHandle DensePool::Encode(FrameIndex frame, uint32_t slot, uint32_t tag) {
  return uint64_t{frame} | (uint64_t{slot} << kSlotShift) |
         (uint64_t{tag} << kTagShift);
}

DensePool::SlotEntry* DensePool::SlotTable(FrameIndex frame) const {
  return reinterpret_cast<SlotEntry*>(arena_.FrameAddress(frame));
}

uint32_t DensePool::NextTag() {
  uint32_t tag;
  do {
    tag = next_tag_++ & kTagMask;
  } while (tag == 0);
  return tag;
}

absl::StatusOr<DensePool::Decoded> DensePool::Validate(
    ZpoolHandle handle) const {
  const Decoded decoded{static_cast<FrameIndex>(handle),
                        static_cast<uint32_t>(handle >> kSlotShift) & kSlotMask,
                        static_cast<uint32_t>(handle >> kTagShift)};
  if (decoded.frame >= frames_.size() || decoded.tag == 0) {
    return StaleHandle(handle);
  }
  const FrameState& state = frames_[decoded.frame];
  if (decoded.slot == kWholeSlot) {
    if (state.kind == FrameKind::kWhole && state.whole_tag == decoded.tag) {
      return decoded;
    }
  } else if (state.kind == FrameKind::kPacked &&
             (state.live_slots >> decoded.slot & 1) != 0 &&
             SlotTable(decoded.frame)[decoded.slot].tag == decoded.tag) {
    return decoded;
  }
  return StaleHandle(handle);
}

absl::StatusOr<FrameIndex> DensePool::NewFrame(FrameKind kind) {
  absl::StatusOr<FrameIndex> frame = arena_.AllocateFrame();
  if (!frame.ok()) return frame.status();
  if (*frame >= frames_.size()) frames_.resize(*frame + 1);
  frames_[*frame] = FrameState{.kind = kind};
  ++pool_frames_;
  return *frame;
}

void DensePool::ReleaseFrame(FrameIndex frame) {
  frames_[frame] = FrameState{};
  arena_.FreeFrame(frame);
  --pool_frames_;
}

bool DensePool::IsEmpty(FrameIndex frame) const {
  const FrameState& state = frames_[frame];
  return state.kind == FrameKind::kWhole ? state.whole_tag == 0
                                         : state.live_slots == 0;
}

bool DensePool::Listed(FrameIndex frame) const {
  return !frames_[frame].under_reclaim && !IsEmpty(frame);
}

size_t DensePool::Room(FrameIndex frame) const {
  const FrameState& state = frames_[frame];
  const int slots = TableSlots(state.live_slots);
  const bool free_slot = std::popcount(state.live_slots) < slots;
  if (!free_slot && slots == kDenseMaxSlots) return 0;
  const size_t table_end = (slots + (free_slot ? 0 : 1)) * kDenseSlotBytes;
  return state.data_start > table_end ? state.data_start - table_end : 0;
}

void DensePool::Compact(FrameIndex frame) {
  FrameState& state = frames_[frame];
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
  uint8_t* const base = arena_.FrameAddress(frame);
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
  frames_[frame].fit_list = static_cast<uint16_t>(list);
  fit_lists_[list].PushHead(frames_, frame);
  fit_nonempty_[list / 64] |= uint64_t{1} << (list % 64);
}

void DensePool::FitRemove(FrameIndex frame) {
  const int list = frames_[frame].fit_list;
  fit_lists_[list].Remove(frames_, frame);
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
  const FrameState& state = frames_[frame];
  if (!IsEmpty(frame) || state.pins != 0 || state.under_reclaim) return false;
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
    lru_.Remove(frames_, frame);
  } else {
    absl::StatusOr<FrameIndex> fresh = NewFrame(FrameKind::kPacked);
    if (!fresh.ok()) return fresh.status();
    frame = *fresh;
  }

  FrameState& state = frames_[frame];
  const uint32_t slot = std::countr_one(state.live_slots);
  const uint32_t tag = NextTag();
  state.data_start -= static_cast<uint16_t>(length);
  SlotTable(frame)[slot] =
      SlotEntry{state.data_start, static_cast<uint16_t>(length), tag};
  state.live_slots |= uint64_t{1} << slot;
  FitInsert(frame);
  lru_.PushHead(frames_, frame);
  ++packed_allocations_;
  packed_bytes_ += length;
  return Encode(frame, slot, tag);
}

absl::StatusOr<ZpoolHandle> DensePool::AllocateWholeFrame() {
  MutexLock lock(&mu_);
  absl::StatusOr<FrameIndex> frame = NewFrame(FrameKind::kWhole);
  if (!frame.ok()) return frame.status();
  const uint32_t tag = NextTag();
  frames_[*frame].whole_tag = tag;
  lru_.PushHead(frames_, *frame);
  ++whole_allocations_;
  return Encode(*frame, kWholeSlot, tag);
}

absl::Status DensePool::Free(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<Decoded> decoded = Validate(handle);
  if (!decoded.ok()) return decoded.status();
  const FrameIndex frame = decoded->frame;
  FrameState& state = frames_[frame];
  const bool was_listed = Listed(frame);

  if (decoded->slot == kWholeSlot) {
    state.whole_tag = 0;
    --whole_allocations_;
  } else {
    if (was_listed) FitRemove(frame);
    SlotEntry& entry = SlotTable(frame)[decoded->slot];
    packed_bytes_ -= entry.length;
    --packed_allocations_;
    entry = SlotEntry{0, 0, 0};
    state.live_slots &= ~(uint64_t{1} << decoded->slot);
    state.holed = true;
    if (state.pins == 0) Compact(frame);
  }

  if (!was_listed) return absl::OkStatus();  // the reclaimer has the frame
  if (IsEmpty(frame)) {
    lru_.Remove(frames_, frame);
    // A pinned frame is released by its last Unmap.
    ReleaseIfDone(frame);
  } else if (state.kind == FrameKind::kPacked) {
    FitInsert(frame);
  }
  return absl::OkStatus();
}

absl::StatusOr<FrameReclaim> DensePool::StartReclaim() {
  MutexLock lock(&mu_);
  const FrameIndex frame = lru_.tail();
  if (frame == kNoFrame) return absl::NotFoundError("no frame to reclaim");
  FrameState& state = frames_[frame];
  lru_.Remove(frames_, frame);
  FrameReclaim reclaim;
  reclaim.frame = frame;
  if (state.kind == FrameKind::kWhole) {
    reclaim.handles.push_back(Encode(frame, kWholeSlot, state.whole_tag));
  } else {
    // Off the fit lists too, so nothing is allocated in it meanwhile.
    FitRemove(frame);
    const SlotEntry* table = SlotTable(frame);
    for (uint64_t bits = state.live_slots; bits != 0; bits &= bits - 1) {
      const uint32_t slot = std::countr_zero(bits);
      reclaim.handles.push_back(Encode(frame, slot, table[slot].tag));
    }
  }
  state.under_reclaim = true;
  ++frames_under_reclaim_;
  return reclaim;
}

bool DensePool::EndReclaim(const FrameReclaim& reclaim) {
  MutexLock lock(&mu_);
  const FrameIndex frame = reclaim.frame;
  FrameState& state = frames_[frame];
  ABSL_ASSERT(state.under_reclaim);
  state.under_reclaim = false;
  --frames_under_reclaim_;
  // Empty but still pinned, it is released by its last Unmap; either way no
  // allocation is left in it.
  if (IsEmpty(frame)) {
    ReleaseIfDone(frame);
    return true;
  }
  if (state.kind == FrameKind::kPacked) FitInsert(frame);
  lru_.PushHead(frames_, frame);
  return false;
}

absl::StatusOr<MappedAllocation> DensePool::Map(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<Decoded> decoded = Validate(handle);
  if (!decoded.ok()) return decoded.status();
  FrameState& state = frames_[decoded->frame];
  ++state.pins;
  uint8_t* base = arena_.FrameAddress(decoded->frame);
  if (decoded->slot == kWholeSlot) return MappedAllocation{base, kPageSize};
  const SlotEntry& entry = SlotTable(decoded->frame)[decoded->slot];
  return MappedAllocation{base + entry.offset, entry.length};
}

void DensePool::Unmap(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  const FrameIndex frame = static_cast<FrameIndex>(handle);
  // An Unmap without its Map is the caller's bug; it must not become ours.
  if (frame >= frames_.size() || frames_[frame].pins == 0) return;
  FrameState& state = frames_[frame];
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
  return pool_frames_ * kPageSize;
}

ZpoolStats DensePool::Stats() const {
  MutexLock lock(&mu_);
  ZpoolStats stats;
  stats.pool_frames = pool_frames_;
  stats.allocations = packed_allocations_ + whole_allocations_;
  stats.whole_frame_allocations = whole_allocations_;
  stats.allocated_bytes = packed_bytes_ + whole_allocations_ * kPageSize;
  stats.frames_under_reclaim = frames_under_reclaim_;
  stats.arena = arena_.Stats();
  return stats;
}

absl::Status DensePool::CheckConsistency() const {
  MutexLock lock(&mu_);
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };

  uint64_t frames = 0, packed = 0, wholes = 0, bytes = 0, listed = 0;
  for (FrameIndex f = 0; f < frames_.size(); ++f) {
    const FrameState& state = frames_[f];
    if (state.kind == FrameKind::kFree) continue;
    ++frames;
    if (state.pins != 0) return fail("frame ", f, " is pinned at rest");
    if (IsEmpty(f) && !state.under_reclaim) {
      return fail("frame ", f, " is empty and was not released");
    }
    listed += Listed(f);
    if (state.kind == FrameKind::kWhole) {
      wholes += state.whole_tag != 0;
      continue;
    }
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
  if (frames != pool_frames_ || frames != arena_.Stats().frames_in_use) {
    return fail("frames counted ", frames, ", pool says ", pool_frames_,
                ", arena says ", arena_.Stats().frames_in_use);
  }
  if (packed != packed_allocations_ || wholes != whole_allocations_ ||
      bytes != packed_bytes_) {
    return fail("allocation counters disagree with the frames");
  }

  uint64_t on_lru = 0;
  FrameIndex prev = kNoFrame;
  for (FrameIndex f = lru_.head(); f != kNoFrame; f = frames_[f].lru_next) {
    if (frames_[f].lru_prev != prev) return fail("LRU back link broken at ", f);
    if (!Listed(f)) return fail("frame ", f, " is on the LRU and must not be");
    if (++on_lru > frames) return fail("LRU has a cycle");
    prev = f;
  }
  if (prev != lru_.tail()) return fail("LRU tail is not the last frame");
  if (on_lru != listed) {
    return fail(on_lru, " frames on the LRU, ", listed, " should be");
  }

  uint64_t on_fit_lists = 0, packed_listed = 0;
  for (FrameIndex f = 0; f < frames_.size(); ++f) {
    packed_listed += frames_[f].kind == FrameKind::kPacked && Listed(f);
  }
  for (int list = 0; list < kFitLists; ++list) {
    const bool marked = (fit_nonempty_[list / 64] >> (list % 64) & 1) != 0;
    if (marked == fit_lists_[list].empty()) {
      return fail("fit list ", list, " disagrees with the bitmap");
    }
    FrameIndex back = kNoFrame;
    for (FrameIndex f = fit_lists_[list].head(); f != kNoFrame;
         f = frames_[f].fit_next) {
      const FrameState& state = frames_[f];
      if (state.fit_prev != back || state.kind != FrameKind::kPacked ||
          !Listed(f) || state.fit_list != list ||
          Room(f) / kDenseGranule != static_cast<size_t>(list)) {
        return fail("fit list ", list, " is broken at frame ", f);
      }
      if (++on_fit_lists > frames) return fail("fit list has a cycle");
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
