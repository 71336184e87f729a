#include "server/core/zbud_pool.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace zpaged {
namespace {

constexpr uint32_t kTagBits = 30;
constexpr uint32_t kTagMask = (uint32_t{1} << kTagBits) - 1;
constexpr int kSlotShift = 32;
constexpr int kTagShift = 34;

absl::Status StaleHandle(ZpoolHandle handle) {
  return absl::NotFoundError(absl::StrCat("handle 0x", absl::Hex(handle),
                                          " does not name a live allocation"));
}

}  // namespace

ZbudPool::ZbudPool(ZpoolOptions options)
    : arena_(options.arena, options.shared_budget),
      next_tag_(absl::Uniform<uint32_t>(absl::BitGen())) {
  unbuddied_.fill(kNoFrame);
}

ZpoolHandle ZbudPool::Encode(FrameIndex frame, Slot slot, uint32_t tag) {
  return uint64_t{frame} | (uint64_t{slot} << kSlotShift) |
         (uint64_t{tag} << kTagShift);
}

int ZbudPool::SizeToChunks(size_t size) {
  return static_cast<int>((size + kZbudChunkSize - 1) / kZbudChunkSize);
}

int ZbudPool::FreeChunks(const Header& header) {
  // A free slot has zero chunks, so no branch on which slots are live.
  return kZbudChunks - header.first_chunks - header.last_chunks;
}

ZbudPool::Header& ZbudPool::HeaderOf(FrameIndex frame) const {
  return *reinterpret_cast<Header*>(arena_.FrameAddress(frame));
}

uint32_t ZbudPool::NextTag() {
  uint32_t tag;
  do {
    tag = next_tag_++ & kTagMask;
  } while (tag == 0);
  return tag;
}

absl::StatusOr<ZbudPool::Decoded> ZbudPool::Validate(ZpoolHandle handle) const {
  const Decoded decoded{static_cast<FrameIndex>(handle),
                        static_cast<Slot>((handle >> kSlotShift) & 3),
                        static_cast<uint32_t>(handle >> kTagShift)};
  if (decoded.frame >= frames_.size() || decoded.tag == 0) {
    return StaleHandle(handle);
  }
  const FrameState& state = frames_[decoded.frame];
  switch (decoded.slot) {
    case kWholeSlot:
      if (state.kind == FrameKind::kWhole && state.whole_tag == decoded.tag) {
        return decoded;
      }
      break;
    case kFirst:
    case kLast:
      if (state.kind == FrameKind::kBuddies) {
        const Header& header = HeaderOf(decoded.frame);
        const uint32_t tag =
            decoded.slot == kFirst ? header.first_tag : header.last_tag;
        if (tag == decoded.tag) return decoded;
      }
      break;
  }
  return StaleHandle(handle);
}

absl::StatusOr<FrameIndex> ZbudPool::NewFrame(FrameKind kind) {
  absl::StatusOr<FrameIndex> frame = arena_.AllocateFrame();
  if (!frame.ok()) return frame.status();
  if (*frame >= frames_.size()) frames_.resize(*frame + 1);
  frames_[*frame] = FrameState{.kind = kind};
  ++pool_frames_;
  return *frame;
}

void ZbudPool::ReleaseFrame(FrameIndex frame) {
  frames_[frame] = FrameState{};
  arena_.FreeFrame(frame);
  --pool_frames_;
}

bool ZbudPool::IsEmpty(FrameIndex frame) const {
  const FrameState& state = frames_[frame];
  if (state.kind == FrameKind::kWhole) return state.whole_tag == 0;
  const Header& header = HeaderOf(frame);
  return header.first_chunks == 0 && header.last_chunks == 0;
}

FrameIndex& ZbudPool::BuddyListHead(FrameIndex frame) {
  const Header& header = HeaderOf(frame);
  if (header.first_chunks != 0 && header.last_chunks != 0) return buddied_;
  return unbuddied_[FreeChunks(header)];
}

void ZbudPool::AddToBuddyList(FrameIndex frame) {
  FrameIndex& head = BuddyListHead(frame);
  Header& header = HeaderOf(frame);
  header.buddy_prev = kNoFrame;
  header.buddy_next = head;
  if (head != kNoFrame) HeaderOf(head).buddy_prev = frame;
  head = frame;
}

void ZbudPool::RemoveFromBuddyList(FrameIndex frame) {
  Header& header = HeaderOf(frame);
  if (header.buddy_prev != kNoFrame) {
    HeaderOf(header.buddy_prev).buddy_next = header.buddy_next;
  } else {
    BuddyListHead(frame) = header.buddy_next;
  }
  if (header.buddy_next != kNoFrame) {
    HeaderOf(header.buddy_next).buddy_prev = header.buddy_prev;
  }
}

absl::StatusOr<ZpoolHandle> ZbudPool::Allocate(size_t size) {
  if (size == 0) return absl::InvalidArgumentError("allocation of 0 bytes");
  if (size > kZbudMaxAllocation) {
    return absl::OutOfRangeError(
        absl::StrCat("allocation of ", size, " bytes is larger than a zbud ",
                     "buddy can be (", kZbudMaxAllocation, " bytes)"));
  }
  const int chunks = SizeToChunks(size);
  MutexLock lock(&mu_);

  FrameIndex frame = kNoFrame;
  for (int free_chunks = chunks; free_chunks < kZbudChunks; ++free_chunks) {
    if (unbuddied_[free_chunks] != kNoFrame) {
      frame = unbuddied_[free_chunks];
      RemoveFromBuddyList(frame);
      lru_.Remove(frames_, frame);
      break;
    }
  }
  if (frame == kNoFrame) {
    absl::StatusOr<FrameIndex> fresh = NewFrame(FrameKind::kBuddies);
    if (!fresh.ok()) return fresh.status();
    frame = *fresh;
    HeaderOf(frame) = Header{.buddy_prev = kNoFrame,
                             .buddy_next = kNoFrame,
                             .first_tag = 0,
                             .last_tag = 0,
                             .first_chunks = 0,
                             .last_chunks = 0};
  }

  Header& header = HeaderOf(frame);
  const Slot slot = header.first_chunks == 0 ? kFirst : kLast;
  const uint32_t tag = NextTag();
  if (slot == kFirst) {
    header.first_chunks = static_cast<uint8_t>(chunks);
    header.first_tag = tag;
  } else {
    header.last_chunks = static_cast<uint8_t>(chunks);
    header.last_tag = tag;
  }
  AddToBuddyList(frame);
  lru_.PushHead(frames_, frame);
  ++buddy_allocations_;
  allocated_chunks_ += chunks;
  return Encode(frame, slot, tag);
}

absl::StatusOr<ZpoolHandle> ZbudPool::AllocateWholeFrame() {
  MutexLock lock(&mu_);
  absl::StatusOr<FrameIndex> frame = NewFrame(FrameKind::kWhole);
  if (!frame.ok()) return frame.status();
  const uint32_t tag = NextTag();
  frames_[*frame].whole_tag = tag;
  lru_.PushHead(frames_, *frame);
  ++whole_allocations_;
  return Encode(*frame, kWholeSlot, tag);
}

absl::Status ZbudPool::Free(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<Decoded> decoded = Validate(handle);
  if (!decoded.ok()) return decoded.status();
  const FrameIndex frame = decoded->frame;
  FrameState& state = frames_[frame];

  if (decoded->slot == kWholeSlot) {
    state.whole_tag = 0;
    --whole_allocations_;
    // Under reclaim the reclaimer owns the frame and releases it.
    if (state.under_reclaim) return absl::OkStatus();
    lru_.Remove(frames_, frame);
    ReleaseFrame(frame);
    return absl::OkStatus();
  }

  Header& header = HeaderOf(frame);
  // Unlink before the geometry changes: the list a frame is on follows from
  // its chunk counts.
  if (!state.under_reclaim) RemoveFromBuddyList(frame);
  if (decoded->slot == kFirst) {
    allocated_chunks_ -= header.first_chunks;
    header.first_chunks = 0;
    header.first_tag = 0;
  } else {
    allocated_chunks_ -= header.last_chunks;
    header.last_chunks = 0;
    header.last_tag = 0;
  }
  --buddy_allocations_;
  if (state.under_reclaim) return absl::OkStatus();

  if (IsEmpty(frame)) {
    lru_.Remove(frames_, frame);
    ReleaseFrame(frame);
  } else {
    AddToBuddyList(frame);
  }
  return absl::OkStatus();
}

absl::StatusOr<FrameReclaim> ZbudPool::StartReclaim() {
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
    // Off the buddy lists too, so nothing is allocated in it meanwhile.
    RemoveFromBuddyList(frame);
    const Header& header = HeaderOf(frame);
    if (header.first_chunks != 0) {
      reclaim.handles.push_back(Encode(frame, kFirst, header.first_tag));
    }
    if (header.last_chunks != 0) {
      reclaim.handles.push_back(Encode(frame, kLast, header.last_tag));
    }
  }
  state.under_reclaim = true;
  ++frames_under_reclaim_;
  return reclaim;
}

bool ZbudPool::EndReclaim(const FrameReclaim& reclaim) {
  MutexLock lock(&mu_);
  const FrameIndex frame = reclaim.frame;
  FrameState& state = frames_[frame];
  ABSL_ASSERT(state.under_reclaim);
  state.under_reclaim = false;
  --frames_under_reclaim_;
  if (IsEmpty(frame)) {
    ReleaseFrame(frame);
    return true;
  }
  if (state.kind == FrameKind::kBuddies) AddToBuddyList(frame);
  lru_.PushHead(frames_, frame);
  return false;
}

absl::StatusOr<MappedAllocation> ZbudPool::Map(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<Decoded> decoded = Validate(handle);
  if (!decoded.ok()) return decoded.status();
  uint8_t* frame = arena_.FrameAddress(decoded->frame);
  switch (decoded->slot) {
    case kWholeSlot:
      return MappedAllocation{frame, kPageSize};
    case kFirst: {
      const size_t capacity =
          HeaderOf(decoded->frame).first_chunks * kZbudChunkSize;
      return MappedAllocation{frame + kZbudHeaderSize, capacity};
    }
    case kLast: {
      const size_t capacity =
          HeaderOf(decoded->frame).last_chunks * kZbudChunkSize;
      return MappedAllocation{frame + kPageSize - capacity, capacity};
    }
  }
  return StaleHandle(handle);
}

void ZbudPool::Unmap(ZpoolHandle) {
  // zbud memory is always mapped; the call is the interface's contract for
  // drivers that map on demand.
}

uint64_t ZbudPool::TotalSizeBytes() const {
  MutexLock lock(&mu_);
  return pool_frames_ * kPageSize;
}

ZpoolStats ZbudPool::Stats() const {
  MutexLock lock(&mu_);
  ZpoolStats stats;
  stats.pool_frames = pool_frames_;
  stats.allocations = buddy_allocations_ + whole_allocations_;
  stats.whole_frame_allocations = whole_allocations_;
  stats.allocated_bytes =
      allocated_chunks_ * kZbudChunkSize + whole_allocations_ * kPageSize;
  stats.frames_under_reclaim = frames_under_reclaim_;
  stats.arena = arena_.Stats();
  return stats;
}

absl::Status ZbudPool::CheckConsistency() const {
  MutexLock lock(&mu_);
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };

  uint64_t frames = 0, buddies = 0, wholes = 0, chunks = 0, on_lru = 0;
  uint64_t buddy_frames_off_lists = 0;  // buddy frames under reclaim
  for (FrameIndex f = 0; f < frames_.size(); ++f) {
    const FrameState& state = frames_[f];
    if (state.kind == FrameKind::kFree) continue;
    ++frames;
    if (state.kind == FrameKind::kWhole) {
      wholes += state.whole_tag != 0;
      continue;
    }
    buddy_frames_off_lists += state.under_reclaim;
    const Header& h = HeaderOf(f);
    if (h.first_chunks + h.last_chunks > kZbudChunks) {
      return fail("frame ", f, " holds ", h.first_chunks, "+", h.last_chunks,
                  " chunks, more than ", kZbudChunks);
    }
    if ((h.first_chunks == 0) != (h.first_tag == 0) ||
        (h.last_chunks == 0) != (h.last_tag == 0)) {
      return fail("frame ", f, " has a tag without chunks or chunks without");
    }
    buddies += (h.first_chunks != 0) + (h.last_chunks != 0);
    chunks += h.first_chunks + h.last_chunks;
  }
  if (frames != pool_frames_ || frames != arena_.Stats().frames_in_use) {
    return fail("frames counted ", frames, ", pool says ", pool_frames_,
                ", arena says ", arena_.Stats().frames_in_use);
  }
  if (buddies != buddy_allocations_ || wholes != whole_allocations_ ||
      chunks != allocated_chunks_) {
    return fail("allocation counters disagree with the frames");
  }

  FrameIndex prev = kNoFrame;
  for (FrameIndex f = lru_.head(); f != kNoFrame; f = frames_[f].lru_next) {
    if (frames_[f].lru_prev != prev) return fail("LRU back link broken at ", f);
    if (frames_[f].kind == FrameKind::kFree || frames_[f].under_reclaim) {
      return fail("free or reclaimed frame ", f, " on the LRU");
    }
    if (++on_lru > frames) return fail("LRU has a cycle");
    prev = f;
  }
  if (prev != lru_.tail()) return fail("LRU tail is not the last frame");
  if (on_lru + frames_under_reclaim_ != frames) {
    return fail(on_lru, " frames on the LRU and ", frames_under_reclaim_,
                " under reclaim, of ", frames);
  }

  uint64_t on_buddy_lists = 0;
  auto walk = [&](FrameIndex head, int free_chunks) -> absl::Status {
    FrameIndex back = kNoFrame;
    for (FrameIndex f = head; f != kNoFrame; f = HeaderOf(f).buddy_next) {
      const Header& h = HeaderOf(f);
      if (frames_[f].kind != FrameKind::kBuddies || h.buddy_prev != back) {
        return fail("buddy list broken at frame ", f);
      }
      const bool both = h.first_chunks != 0 && h.last_chunks != 0;
      if (free_chunks < 0
              ? !both
              : (both || IsEmpty(f) || FreeChunks(h) != free_chunks)) {
        return fail("frame ", f, " is on the wrong buddy list");
      }
      if (++on_buddy_lists > frames) return fail("buddy list has a cycle");
      back = f;
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < kZbudChunks; ++i) {
    if (absl::Status s = walk(unbuddied_[i], i); !s.ok()) return s;
  }
  if (absl::Status s = walk(buddied_, -1); !s.ok()) return s;
  uint64_t buddy_frames = 0;
  for (const FrameState& state : frames_) {
    buddy_frames += state.kind == FrameKind::kBuddies;
  }
  if (on_buddy_lists + buddy_frames_off_lists != buddy_frames) {
    return fail("a buddy frame is on no list, or on two");
  }
  return absl::OkStatus();
}

}  // namespace zpaged
