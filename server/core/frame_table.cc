#include "server/core/frame_table.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

constexpr int kSlotShift = 32;

}  // namespace

absl::Status StaleHandle(ZpoolHandle handle) {
  return absl::NotFoundError(absl::StrCat("handle 0x", absl::Hex(handle),
                                          " does not name a live allocation"));
}

FrameTable::FrameTable(const ZpoolOptions& options, int slot_bits)
    : slot_bits_(slot_bits),
      whole_slot_((uint32_t{1} << slot_bits) - 1),
      tag_mask_((uint32_t{1} << (32 - slot_bits)) - 1),
      arena_(options.arena, options.shared_budget),
      next_tag_(absl::Uniform<uint32_t>(absl::BitGen())) {}

ZpoolHandle FrameTable::Encode(FrameIndex frame, uint32_t slot,
                               uint32_t tag) const {
  return uint64_t{frame} | (uint64_t{slot} << kSlotShift) |
         (uint64_t{tag} << (kSlotShift + slot_bits_));
}

absl::StatusOr<HandleFields> FrameTable::Decode(ZpoolHandle handle) const {
  const HandleFields fields{
      static_cast<FrameIndex>(handle),
      static_cast<uint32_t>(handle >> kSlotShift) & whole_slot_,
      static_cast<uint32_t>(handle >> (kSlotShift + slot_bits_))};
  if (fields.frame >= entries_.size() || fields.tag == 0) {
    return StaleHandle(handle);
  }
  const FrameEntry& e = entries_[fields.frame];
  const bool live = fields.slot == whole_slot_ ? e.kind == FrameKind::kWhole &&
                                                     e.whole_tag == fields.tag
                                               : e.kind == FrameKind::kPacked;
  if (!live) return StaleHandle(handle);
  return fields;
}

uint32_t FrameTable::NextTag() {
  uint32_t tag;
  do {
    tag = next_tag_++ & tag_mask_;
  } while (tag == 0);
  return tag;
}

absl::StatusOr<FrameIndex> FrameTable::NewFrame(FrameKind kind) {
  absl::StatusOr<FrameIndex> frame = arena_.AllocateFrame();
  if (!frame.ok()) return frame.status();
  if (*frame >= entries_.size()) entries_.resize(*frame + 1);
  entries_[*frame] = FrameEntry{.kind = kind};
  ++pool_frames_;
  return *frame;
}

void FrameTable::ReleaseFrame(FrameIndex frame) {
  entries_[frame] = FrameEntry{};
  arena_.FreeFrame(frame);
  --pool_frames_;
}

absl::StatusOr<ZpoolHandle> FrameTable::AllocateWhole() {
  absl::StatusOr<FrameIndex> frame = NewFrame(FrameKind::kWhole);
  if (!frame.ok()) return frame.status();
  const uint32_t tag = NextTag();
  entries_[*frame].whole_tag = tag;
  PushLru(*frame);
  ++whole_allocations_;
  return Encode(*frame, whole_slot_, tag);
}

void FrameTable::FreeWhole(FrameIndex frame) {
  entries_[frame].whole_tag = 0;
  --whole_allocations_;
}

absl::StatusOr<FrameReclaim> FrameTable::StartReclaim() {
  const FrameIndex frame = lru_.tail();
  if (frame == kNoFrame) return absl::NotFoundError("no frame to reclaim");
  FrameEntry& e = entries_[frame];
  RemoveLru(frame);
  FrameReclaim reclaim;
  reclaim.frame = frame;
  if (e.kind == FrameKind::kWhole) {
    reclaim.handles.push_back(Encode(frame, whole_slot_, e.whole_tag));
  }
  e.under_reclaim = true;
  ++frames_under_reclaim_;
  return reclaim;
}

void FrameTable::EndReclaim(FrameIndex frame) {
  ABSL_ASSERT(entries_[frame].under_reclaim);
  entries_[frame].under_reclaim = false;
  --frames_under_reclaim_;
}

ZpoolStats FrameTable::Stats() const {
  ZpoolStats stats;
  stats.pool_frames = pool_frames_;
  stats.whole_frame_allocations = whole_allocations_;
  stats.frames_under_reclaim = frames_under_reclaim_;
  stats.arena = arena_.Stats();
  return stats;
}

absl::Status FrameTable::CheckConsistency(
    absl::FunctionRef<bool(FrameIndex)> listed) const {
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };
  uint64_t frames = 0, wholes = 0, reclaimed = 0, should_be_listed = 0;
  for (FrameIndex f = 0; f < entries_.size(); ++f) {
    const FrameEntry& e = entries_[f];
    if (e.kind == FrameKind::kFree) continue;
    ++frames;
    wholes += e.kind == FrameKind::kWhole && e.whole_tag != 0;
    reclaimed += e.under_reclaim;
    should_be_listed += !e.under_reclaim && listed(f);
  }
  const uint64_t in_arena = arena_.Stats().frames_in_use;
  if (frames != pool_frames_ || frames != in_arena) {
    return fail("frames counted ", frames, ", pool says ", pool_frames_,
                ", arena says ", in_arena);
  }
  if (wholes != whole_allocations_ || reclaimed != frames_under_reclaim_) {
    return fail("whole-frame or reclaim counters disagree with the frames");
  }

  uint64_t on_lru = 0;
  FrameIndex prev = kNoFrame;
  for (FrameIndex f = lru_.head(); f != kNoFrame; f = entries_[f].lru_next) {
    const FrameEntry& e = entries_[f];
    if (e.lru_prev != prev) return fail("LRU back link broken at ", f);
    if (e.kind == FrameKind::kFree || e.under_reclaim || !listed(f)) {
      return fail("frame ", f, " is on the LRU and must not be");
    }
    if (++on_lru > frames) return fail("LRU has a cycle");
    prev = f;
  }
  if (prev != lru_.tail()) return fail("LRU tail is not the last frame");
  if (on_lru != should_be_listed) {
    return fail(on_lru, " frames on the LRU, ", should_be_listed, " should be");
  }
  return absl::OkStatus();
}

}  // namespace zpaged
