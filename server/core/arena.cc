#include "server/core/arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/base/macros.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zpaged {

absl::Status ValidateArenaOptions(const ArenaOptions& options) {
  if (!std::has_single_bit(options.region_bytes) ||
      options.region_bytes < kPageSize ||
      (options.region_bytes >> kPageShift) > (uint64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        absl::StrCat("arena region size must be a power of two from ",
                     kPageSize, " bytes to 8 TiB, not ", options.region_bytes));
  }
  return absl::OkStatus();
}

Arena::Arena(const ArenaOptions& options, MemoryBudget* shared_budget)
    : options_(options),
      shared_budget_(shared_budget),
      frames_per_region_shift_(
          std::countr_zero(options.region_bytes >> kPageShift)),
      frames_per_region_mask_(
          static_cast<uint32_t>((options.region_bytes >> kPageShift) - 1)) {
  ABSL_ASSERT(ValidateArenaOptions(options).ok());
}

Arena::~Arena() {
  for (uint8_t* region : regions_) munmap(region, options_.region_bytes);
}

absl::Status Arena::MapRegion() {
  void* region = mmap(nullptr, options_.region_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("mmap of a ", options_.region_bytes >> 20,
                     " MiB arena region failed: ", std::strerror(errno)));
  }
  regions_.push_back(static_cast<uint8_t*>(region));
  return absl::OkStatus();
}

absl::StatusOr<FrameIndex> Arena::AllocateFrame() {
  if ((frames_in_use_ + 1) * kPageSize > options_.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("pool limit of ", options_.max_bytes, " bytes reached"));
  }
  if (shared_budget_ != nullptr) {
    if (absl::Status charged = shared_budget_->Charge(kPageSize);
        !charged.ok()) {
      return charged;
    }
  }
  FrameIndex frame;
  if (!warm_free_.empty()) {
    frame = warm_free_.back();
    warm_free_.pop_back();
  } else if (!cold_free_.empty()) {
    frame = cold_free_.back();
    cold_free_.pop_back();
  } else {
    // kNoFrame is reserved as the "no frame" link value.
    absl::Status mapped = absl::OkStatus();
    if (frames_created_ == kNoFrame) {
      mapped = absl::ResourceExhaustedError("arena frame index space is full");
    } else if ((frames_created_ >> frames_per_region_shift_) >=
               regions_.size()) {
      mapped = MapRegion();
    }
    if (!mapped.ok()) {
      if (shared_budget_ != nullptr) shared_budget_->Release(kPageSize);
      return mapped;
    }
    frame = frames_created_++;
    if (frame >= frames_populated_) PopulateAfter(frame);
  }
  ++frames_in_use_;
  return frame;
}

// A fresh frame's first touch faults in one page: about a microsecond of
// kernel time per Put while a pool grows (6% of the server's CPU under a
// stream of Puts). MADV_POPULATE_WRITE backs several frames at once for a
// fraction of that, at the price of frames resident ahead of use: never
// more than kPopulateFrames, nor than the frames created before, so a
// tenant with one page holds two frames, not kPopulateFrames. Kernels
// before 5.14 refuse it, and faulting frame by frame is still correct.
void Arena::PopulateAfter(FrameIndex frame) {
  constexpr uint64_t kPopulateFrames = 8;
  const uint64_t region_end = (uint64_t{frame} | frames_per_region_mask_) + 1;
  const uint64_t ahead = std::clamp<uint64_t>(frame, 1, kPopulateFrames);
  const uint64_t end = std::min(frame + 1 + ahead, region_end);
  madvise(FrameAddress(frame), (end - frame) * kPageSize, MADV_POPULATE_WRITE);
  frames_populated_ = static_cast<FrameIndex>(end);
}

void Arena::FreeFrame(FrameIndex frame) {
  ABSL_ASSERT(IsCreated(frame));
  --frames_in_use_;
  if (shared_budget_ != nullptr) shared_budget_->Release(kPageSize);
  if (warm_free_.size() < options_.warm_free_frames) {
    warm_free_.push_back(frame);
    return;
  }
  // MADV_DONTNEED on a private anonymous mapping drops the memory at once and
  // refills it with zeros on the next touch; MADV_FREE would leave the
  // resident size high until the kernel felt memory pressure.
  madvise(FrameAddress(frame), kPageSize, MADV_DONTNEED);
  cold_free_.push_back(frame);
}

ArenaStats Arena::Stats() const {
  ArenaStats stats;
  stats.mapped_bytes = regions_.size() * options_.region_bytes;
  stats.frames_in_use = frames_in_use_;
  stats.warm_free_frames = warm_free_.size();
  stats.free_frames = warm_free_.size() + cold_free_.size();
  return stats;
}

}  // namespace zpaged
