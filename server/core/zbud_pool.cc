#include "server/core/zbud_pool.h"

#include "absl/strings/str_cat.h"

namespace zpaged {

ZbudPool::ZbudPool(ZpoolOptions options) : table_(options, kSlotBits) {
  unbuddied_.fill(kNoFrame);
}

int ZbudPool::SizeToChunks(size_t size) {
  return static_cast<int>((size + kZbudChunkSize - 1) / kZbudChunkSize);
}

int ZbudPool::FreeChunks(const Header& header) {
  // A free slot has zero chunks, so no branch on which slots are live.
  return kZbudChunks - header.first_chunks - header.last_chunks;
}

ZbudPool::Header& ZbudPool::HeaderOf(FrameIndex frame) const {
  return *reinterpret_cast<Header*>(table_.Address(frame));
}

absl::StatusOr<HandleFields> ZbudPool::Validate(ZpoolHandle handle) const {
  absl::StatusOr<HandleFields> fields = table_.Decode(handle);
  if (!fields.ok() || fields->slot == table_.whole_slot()) return fields;
  const Header& header = HeaderOf(fields->frame);
  const uint32_t tag = fields->slot == kFirst  ? header.first_tag
                       : fields->slot == kLast ? header.last_tag
                                               : 0;
  if (tag != fields->tag) return StaleHandle(handle);
  return fields;
}

bool ZbudPool::IsEmpty(FrameIndex frame) const {
  const FrameEntry& entry = table_.entry(frame);
  if (entry.kind == FrameKind::kWhole) return entry.whole_tag == 0;
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
      table_.RemoveLru(frame);
      break;
    }
  }
  if (frame == kNoFrame) {
    absl::StatusOr<FrameIndex> fresh = table_.NewFrame(FrameKind::kPacked);
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
  const uint32_t tag = table_.NextTag();
  if (slot == kFirst) {
    header.first_chunks = static_cast<uint8_t>(chunks);
    header.first_tag = tag;
  } else {
    header.last_chunks = static_cast<uint8_t>(chunks);
    header.last_tag = tag;
  }
  AddToBuddyList(frame);
  table_.PushLru(frame);
  ++buddy_allocations_;
  allocated_chunks_ += chunks;
  return table_.Encode(frame, slot, tag);
}

absl::StatusOr<ZpoolHandle> ZbudPool::AllocateWholeFrame() {
  MutexLock lock(&mu_);
  return table_.AllocateWhole();
}

absl::Status ZbudPool::Free(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleFields> fields = Validate(handle);
  if (!fields.ok()) return fields.status();
  const FrameIndex frame = fields->frame;
  // Under reclaim the reclaimer owns the frame, off every list, and
  // releases it.
  const bool under_reclaim = table_.entry(frame).under_reclaim;

  if (fields->slot == table_.whole_slot()) {
    table_.FreeWhole(frame);
    if (under_reclaim) return absl::OkStatus();
    table_.RemoveLru(frame);
    table_.ReleaseFrame(frame);
    return absl::OkStatus();
  }

  Header& header = HeaderOf(frame);
  // Unlink before the geometry changes: the list a frame is on follows from
  // its chunk counts.
  if (!under_reclaim) RemoveFromBuddyList(frame);
  if (fields->slot == kFirst) {
    allocated_chunks_ -= header.first_chunks;
    header.first_chunks = 0;
    header.first_tag = 0;
  } else {
    allocated_chunks_ -= header.last_chunks;
    header.last_chunks = 0;
    header.last_tag = 0;
  }
  --buddy_allocations_;
  if (under_reclaim) return absl::OkStatus();

  if (IsEmpty(frame)) {
    table_.RemoveLru(frame);
    table_.ReleaseFrame(frame);
  } else {
    AddToBuddyList(frame);
  }
  return absl::OkStatus();
}

absl::StatusOr<FrameReclaim> ZbudPool::StartReclaim() {
  MutexLock lock(&mu_);
  absl::StatusOr<FrameReclaim> reclaim = table_.StartReclaim();
  if (!reclaim.ok() || table_.entry(reclaim->frame).kind == FrameKind::kWhole) {
    return reclaim;
  }
  // A buddy frame: off the buddy lists too, so nothing is allocated in it
  // meanwhile.
  const FrameIndex frame = reclaim->frame;
  RemoveFromBuddyList(frame);
  const Header& header = HeaderOf(frame);
  if (header.first_chunks != 0) {
    reclaim->handles.push_back(table_.Encode(frame, kFirst, header.first_tag));
  }
  if (header.last_chunks != 0) {
    reclaim->handles.push_back(table_.Encode(frame, kLast, header.last_tag));
  }
  return reclaim;
}

bool ZbudPool::EndReclaim(const FrameReclaim& reclaim) {
  MutexLock lock(&mu_);
  const FrameIndex frame = reclaim.frame;
  table_.EndReclaim(frame);
  if (IsEmpty(frame)) {
    table_.ReleaseFrame(frame);
    return true;
  }
  if (table_.entry(frame).kind == FrameKind::kPacked) AddToBuddyList(frame);
  table_.PushLru(frame);
  return false;
}

absl::StatusOr<MappedAllocation> ZbudPool::Map(ZpoolHandle handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<HandleFields> fields = Validate(handle);
  if (!fields.ok()) return fields.status();
  uint8_t* frame = table_.Address(fields->frame);
  if (fields->slot == table_.whole_slot()) {
    return MappedAllocation{frame, kPageSize, /*whole_frame=*/true};
  }
  const Header& header = HeaderOf(fields->frame);
  if (fields->slot == kFirst) {
    return MappedAllocation{frame + kZbudHeaderSize,
                            header.first_chunks * kZbudChunkSize};
  }
  const size_t capacity = header.last_chunks * kZbudChunkSize;
  return MappedAllocation{frame + kPageSize - capacity, capacity};
}

void ZbudPool::Unmap(ZpoolHandle) {
  // zbud memory is always mapped; the call is the interface's contract for
  // drivers that map on demand.
}

uint64_t ZbudPool::TotalSizeBytes() const {
  MutexLock lock(&mu_);
  return table_.pool_frames() * kPageSize;
}

ZpoolStats ZbudPool::Stats() const {
  MutexLock lock(&mu_);
  ZpoolStats stats = table_.Stats();
  stats.allocations = buddy_allocations_ + table_.whole_allocations();
  stats.allocated_bytes = allocated_chunks_ * kZbudChunkSize +
                          table_.whole_allocations() * kPageSize;
  return stats;
}

absl::Status ZbudPool::CheckConsistency() const {
  MutexLock lock(&mu_);
  auto fail = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat(parts...));
  };
  // A zbud frame is released the moment it empties, unless under reclaim,
  // so every frame not under reclaim belongs on the LRU.
  if (absl::Status frames =
          table_.CheckConsistency([](FrameIndex) { return true; });
      !frames.ok()) {
    return frames;
  }

  uint64_t buddies = 0, chunks = 0, buddy_frames = 0;
  uint64_t buddy_frames_off_lists = 0;  // buddy frames under reclaim
  for (FrameIndex f = 0; f < table_.size(); ++f) {
    const FrameEntry& entry = table_.entry(f);
    if (entry.kind != FrameKind::kPacked) continue;
    ++buddy_frames;
    buddy_frames_off_lists += entry.under_reclaim;
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
  if (buddies != buddy_allocations_ || chunks != allocated_chunks_) {
    return fail("allocation counters disagree with the frames");
  }

  uint64_t on_buddy_lists = 0;
  auto walk = [&](FrameIndex head, int free_chunks) -> absl::Status {
    FrameIndex back = kNoFrame;
    for (FrameIndex f = head; f != kNoFrame; f = HeaderOf(f).buddy_next) {
      const Header& h = HeaderOf(f);
      if (table_.entry(f).kind != FrameKind::kPacked || h.buddy_prev != back) {
        return fail("buddy list broken at frame ", f);
      }
      const bool both = h.first_chunks != 0 && h.last_chunks != 0;
      if (free_chunks < 0
              ? !both
              : (both || IsEmpty(f) || FreeChunks(h) != free_chunks)) {
        return fail("frame ", f, " is on the wrong buddy list");
      }
      if (++on_buddy_lists > buddy_frames) {
        return fail("buddy list has a cycle");
      }
      back = f;
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < kZbudChunks; ++i) {
    if (absl::Status s = walk(unbuddied_[i], i); !s.ok()) return s;
  }
  if (absl::Status s = walk(buddied_, -1); !s.ok()) return s;
  if (on_buddy_lists + buddy_frames_off_lists != buddy_frames) {
    return fail("a buddy frame is on no list, or on two");
  }
  return absl::OkStatus();
}

}  // namespace zpaged
