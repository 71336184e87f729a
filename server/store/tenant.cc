#include "server/store/tenant.h"

#include <array>
#include <utility>
#include <vector>

#include "absl/base/macros.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "contract/page.h"
#include "server/core/notification.h"

namespace zpaged {
namespace {

// Rounds of "reclaim one frame, try again" a waiting Put makes before giving
// up; more than one because, under the server-wide limit, another tenant may
// take the frame this one just gave back.
constexpr int kMaxRoomRounds = 16;

// Same-filled pages Drain has out to watchers at once.
constexpr int kDrainInFlight = 64;

}  // namespace

// A Put waiting for room: what it needs to finish after Put returned.
struct Tenant::WaitingPut {
  uint64_t key;
  PageEncoding encoding;
  std::vector<uint8_t> payload;  // the compressed bytes, or the RAW page
  uint64_t word;                 // same-filled
  absl::Time deadline;
  int rounds = 0;
  PutDone done;
};

// One Reclaim call: chains of frame evictions, each trying up to
// kTriesPerFrame frames until one is released.
struct Tenant::ReclaimJob {
  // Held until the job's last eviction has its outcome.
  std::shared_ptr<Tenant> tenant;
  Mutex mu;
  uint32_t to_start ABSL_GUARDED_BY(mu) = 0;  // chains not started yet
  uint32_t running ABSL_GUARDED_BY(mu) = 0;
  bool stop ABSL_GUARDED_BY(mu) = false;  // a chain released nothing
  ReclaimResult result ABSL_GUARDED_BY(mu);
  ReclaimDone done ABSL_GUARDED_BY(mu);
};

// One frame under reclaim, shared by its pages' outcomes.
struct Tenant::FrameEviction {
  std::shared_ptr<ReclaimJob> job;
  FrameReclaim reclaim;
  uint32_t tries_left;
  // Pages still out, plus one while TryFrames is handing them over.
  std::atomic<int> outstanding{1};
};

Tenant::Tenant(std::string name, uint64_t max_pool_bytes, EvictionSink* sink,
               MemoryBudget* shared_budget, const CodecOptions& codec,
               absl::string_view pool_driver)
    : name_(std::move(name)),
      sink_(sink),
      shared_budget_(shared_budget),
      codec_(codec) {
  ZpoolOptions options;
  options.arena.max_bytes = max_pool_bytes;
  options.shared_budget = shared_budget;
  // Default arena options are valid and the driver is known, so creation
  // cannot fail.
  pool_ = *CreateZpool(pool_driver, std::move(options));
}

std::optional<absl::StatusOr<PutResult>> Tenant::Put(
    uint64_t key, absl::Span<const uint8_t> page, const PutOptions& options,
    absl::FunctionRef<PutDone()> later) {
  thread_local std::array<uint8_t, kPageSize> compressed;
  EncodedPage encoded;
  if (std::optional<uint64_t> word = SameFilledWord(page)) {
    encoded = {PageEncoding::kSameFilled, {}, *word};
  } else {
    const Compressed out = CompressPage(
        codec_, page,
        absl::MakeSpan(compressed.data(),
                       PageRecord::MaxPayload(pool_->MaxAllocationSize())));
    encoded =
        out.bytes == 0
            ? EncodedPage{PageEncoding::kRaw, page}
            : EncodedPage{out.encoding,
                          absl::MakeConstSpan(compressed.data(), out.bytes)};
  }
  absl::StatusOr<Reservation> room = Reserve(key, encoded);
  if (room.ok()) return Install(key, *room, encoded);
  if (!absl::IsResourceExhausted(room.status())) return room.status();

  if (!options.wait_for_room || !sink_->CanAccept(name_)) {
    rejected_limit_++;
    return absl::ResourceExhaustedError(absl::StrCat(
        room.status().message(),
        options.wait_for_room
            ? absl::StrCat("; no eviction watcher of tenant '", name_,
                           "' is connected to take pages out")
            : "; this Put may not wait for evictions"));
  }
  auto* waiting =
      new WaitingPut{key,
                     encoded.encoding,
                     {encoded.payload.begin(), encoded.payload.end()},
                     encoded.word,
                     options.deadline,
                     0,
                     later()};
  MakeRoomFor(waiting);
  return std::nullopt;
}

void Tenant::MakeRoomFor(WaitingPut* put) {
  Reclaim(1,
          [this, put](ReclaimResult reclaimed) { RetryPut(put, reclaimed); });
}

void Tenant::RetryPut(WaitingPut* put, const ReclaimResult& reclaimed) {
  const EncodedPage encoded{put->encoding, put->payload, put->word};
  absl::StatusOr<Reservation> room = Reserve(put->key, encoded);
  absl::StatusOr<PutResult> result;
  if (room.ok()) {
    result = Install(put->key, *room, encoded);
  } else if (!absl::IsResourceExhausted(room.status())) {
    result = room.status();
  } else if (reclaimed.reclaimed_pool_pages > 0 &&
             ++put->rounds < kMaxRoomRounds && absl::Now() < put->deadline) {
    MakeRoomFor(put);
    return;
  } else {
    rejected_limit_++;
    result = absl::ResourceExhaustedError(
        absl::StrCat(room.status().message(),
                     "; reclaim could not free a frame of ", "tenant '", name_,
                     reclaimed.reclaimed_pool_pages == 0
                         ? "' (watchers did not acknowledge evicted pages)"
                         : "' in time"));
  }
  PutDone done = std::move(put->done);
  delete put;
  std::move(done)(std::move(result));
}

absl::StatusOr<Tenant::Reservation> Tenant::Reserve(uint64_t key,
                                                    const EncodedPage& page) {
  Reservation room;
  if (shared_budget_ != nullptr) {
    absl::Status charged = shared_budget_->Charge(kIndexEntryBytes);
    room.index_charged = charged.ok();
    // Only at the limit is the index asked, and only so that a replacement,
    // which needs no new entry, still goes through.
    if (!charged.ok()) {
      ReaderLock lock(&index_mu_);
      if (!index_.contains(key)) return charged;
    }
  }
  if (page.encoding == PageEncoding::kSameFilled) return room;
  absl::StatusOr<ZpoolHandle> handle =
      page.encoding == PageEncoding::kRaw
          ? pool_->AllocateWholeFrame()
          : pool_->Allocate(PageRecord::AllocationSize(page.payload.size()));
  if (!handle.ok()) {
    if (room.index_charged) ReleaseIndexEntry();
    return handle.status();
  }
  room.handle = *handle;
  return room;
}

PutResult Tenant::Install(uint64_t key, const Reservation& room,
                          const EncodedPage& page) {
  if (page.encoding == PageEncoding::kSameFilled) {
    Replace(key, IndexEntry{page.word, 0, PageEncoding::kSameFilled},
            room.index_charged);
    return PutResult{PageEncoding::kSameFilled, 0};
  }
  const ZpoolHandle handle = room.handle;
  size_t capacity;
  {
    // The copy happens under the index lock: a reclaim may already see the
    // new allocation on the LRU, and reads its key under this lock.
    WriterLock lock(&index_mu_);
    absl::StatusOr<MappedAllocation> mapped = pool_->Map(handle);
    ABSL_ASSERT(mapped.ok());
    capacity = mapped->capacity;
    if (page.encoding == PageEncoding::kRaw) {
      std::memcpy(mapped->data, page.payload.data(), kPageSize);
      raw_keys_.Insert(handle, key);
    } else {
      PageRecord::EncodeTo(key, page.payload, mapped->data);
    }
    pool_->Unmap(handle);
  }
  const uint32_t stored_bytes = static_cast<uint32_t>(
      page.encoding == PageEncoding::kRaw ? 0 : page.payload.size());
  Replace(key, IndexEntry{handle, stored_bytes, page.encoding},
          room.index_charged);
  return PutResult{page.encoding, static_cast<uint32_t>(capacity)};
}

void Tenant::Replace(uint64_t key, const IndexEntry& entry,
                     bool index_charged) {
  if (!index_charged && shared_budget_ != nullptr) {
    shared_budget_->ChargeAnyway(kIndexEntryBytes);
  }
  std::optional<IndexEntry> replaced;
  {
    WriterLock lock(&index_mu_);
    Account(entry, +1);
    auto [it, inserted] = index_.try_emplace(key, entry);
    if (!inserted) {
      replaced = std::exchange(it->second, entry);
      Account(*replaced, -1);
    }
  }
  if (replaced.has_value()) Release(*replaced);
}

void Tenant::Account(const IndexEntry& entry, int direction) {
  switch (entry.encoding) {
    case PageEncoding::kSameFilled:
      same_filled_pages_ += direction;
      break;
    case PageEncoding::kLz4:
    case PageEncoding::kZstd:
      (entry.encoding == PageEncoding::kLz4 ? lz4_pages_ : zstd_pages_) +=
          direction;
      compressed_bytes_ += direction * static_cast<int64_t>(entry.stored_bytes);
      break;
    case PageEncoding::kRaw:
      raw_pages_ += direction;
      if (direction < 0) raw_keys_.Erase(entry.value);
      break;
  }
}

void Tenant::ReleaseIndexEntry() {
  if (shared_budget_ != nullptr) shared_budget_->Release(kIndexEntryBytes);
}

void Tenant::Release(const IndexEntry& entry) {
  ReleaseIndexEntry();
  if (entry.encoding == PageEncoding::kSameFilled) return;
  // The entry was indexed until now and nothing frees an indexed handle, so
  // the free cannot miss.
  const absl::Status freed = pool_->Free(entry.value);
  ABSL_ASSERT(freed.ok());
  freed.IgnoreError();
}

absl::Status Tenant::Get(uint64_t key, absl::Span<uint8_t> out) const {
  ReaderLock lock(&index_mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tenant '", name_, "' has no page under key ", key));
  }
  return Read(it->second, out);
}

absl::Status Tenant::Read(const IndexEntry& entry,
                          absl::Span<uint8_t> out) const {
  if (entry.encoding == PageEncoding::kSameFilled) {
    FillWithWord(entry.value, out);
    return absl::OkStatus();
  }
  absl::StatusOr<MappedAllocation> mapped = pool_->Map(entry.value);
  if (!mapped.ok()) return mapped.status();
  absl::Status read = absl::OkStatus();
  if (entry.encoding == PageEncoding::kRaw) {
    std::memcpy(out.data(), mapped->data, kPageSize);
  } else {
    read = DecompressPage(
        entry.encoding,
        PageRecord::DecodePayload(mapped->data, entry.stored_bytes), out);
  }
  pool_->Unmap(entry.value);
  return read;
}

bool Tenant::Delete(uint64_t key) {
  IndexEntry removed;
  {
    WriterLock lock(&index_mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    removed = it->second;
    Account(removed, -1);
    index_.erase(it);
  }
  Release(removed);
  return true;
}

uint64_t Tenant::DeleteAll() {
  std::vector<uint64_t> keys;
  {
    ReaderLock lock(&index_mu_);
    keys.reserve(index_.size());
    for (const auto& [key, entry] : index_) keys.push_back(key);
  }
  uint64_t deleted = 0;
  for (uint64_t key : keys) deleted += Delete(key);
  return deleted;
}

bool Tenant::IsCopy(const IndexEntry& entry, uint64_t value, bool same_filled) {
  return entry.value == value &&
         (entry.encoding == PageEncoding::kSameFilled) == same_filled;
}

void Tenant::DropCopy(uint64_t key, uint64_t value, bool same_filled) {
  IndexEntry removed;
  {
    WriterLock lock(&index_mu_);
    auto it = index_.find(key);
    if (it == index_.end() || !IsCopy(it->second, value, same_filled)) return;
    removed = it->second;
    Account(removed, -1);
    index_.erase(it);
  }
  Release(removed);
}

void Tenant::Reclaim(uint32_t frames, ReclaimDone done) {
  if (frames == 0) {
    std::move(done)(ReclaimResult{});
    return;
  }
  auto job = std::make_shared<ReclaimJob>();
  job->tenant = shared_from_this();
  {
    MutexLock lock(&job->mu);
    job->to_start = frames;
    job->done = std::move(done);
  }
  StartChains(job);
}

void Tenant::StartChains(const std::shared_ptr<ReclaimJob>& job) {
  for (;;) {
    {
      MutexLock lock(&job->mu);
      if (job->stop || job->to_start == 0 || job->running >= kFramesInFlight) {
        return;
      }
      --job->to_start;
      ++job->running;
    }
    TryFrames(job, kTriesPerFrame);
  }
}

void Tenant::TryFrames(const std::shared_ptr<ReclaimJob>& job, uint32_t tries) {
  for (; tries > 0; --tries) {
    absl::StatusOr<FrameReclaim> reclaim = pool_->StartReclaim();
    if (!reclaim.ok()) break;  // nothing on the LRU
    auto frame = std::make_shared<FrameEviction>();
    frame->job = job;
    frame->reclaim = *std::move(reclaim);
    frame->tries_left = tries - 1;
    for (ZpoolHandle handle : frame->reclaim.handles) {
      // Counted before it is handed over: its outcome may come at once.
      frame->outstanding.fetch_add(1);
      if (!EvictPage(handle, frame)) frame->outstanding.fetch_sub(1);
    }
    // Outcomes may already have come on other threads; whoever settles the
    // last one ends the frame.
    if (frame->outstanding.fetch_sub(1) != 1) return;
    if (pool_->EndReclaim(frame->reclaim)) {
      reclaimed_++;
      EndChain(job, /*released=*/true);
      return;
    }
  }
  EndChain(job, /*released=*/false);
}

void Tenant::FrameSettled(const std::shared_ptr<FrameEviction>& frame) {
  if (pool_->EndReclaim(frame->reclaim)) {
    reclaimed_++;
    EndChain(frame->job, /*released=*/true);
  } else {
    TryFrames(frame->job, frame->tries_left);
  }
  StartChains(frame->job);
}

void Tenant::EndChain(const std::shared_ptr<ReclaimJob>& job, bool released) {
  ReclaimDone done;
  ReclaimResult result;
  {
    MutexLock lock(&job->mu);
    --job->running;
    if (released) {
      job->result.reclaimed_pool_pages++;
    } else {
      job->stop = true;
    }
    if (job->running > 0 || (!job->stop && job->to_start > 0)) return;
    done = std::move(job->done);
    result = job->result;
  }
  if (done) std::move(done)(result);
}

bool Tenant::EvictPage(ZpoolHandle handle,
                       const std::shared_ptr<FrameEviction>& frame) {
  thread_local std::array<uint8_t, kPageSize> page;
  // Shared, and held across Deliver: a Put cannot replace the copy between
  // reading it and handing it over, so the sink sees copies of a key in the
  // order they were stored.
  ReaderLock lock(&index_mu_);
  absl::StatusOr<MappedAllocation> mapped = pool_->Map(handle);
  if (!mapped.ok()) {
    stale_++;
    return false;
  }
  // Only a whole frame is a page long: no driver allocates more than 3968.
  std::optional<uint64_t> key =
      mapped->capacity == kPageSize
          ? raw_keys_.Find(handle)
          : std::optional<uint64_t>(PageRecord::DecodeKey(mapped->data));
  pool_->Unmap(handle);
  auto it = key.has_value() ? index_.find(*key) : index_.end();
  // Not indexed: a Put not installed yet, or a page replaced or deleted
  // since the frame was taken.
  if (it == index_.end() ||
      !IsCopy(it->second, handle, /*same_filled=*/false) ||
      !Read(it->second, absl::MakeSpan(page)).ok()) {
    stale_++;
    return false;
  }
  const absl::Status handed = sink_->Deliver(
      name_, *key, page,
      [this, frame, key = *key, handle](DeliveryOutcome outcome) {
        PageSettled(frame, key, handle, outcome);
      });
  if (!handed.ok()) {
    refused_++;
    return false;
  }
  return true;
}

void Tenant::PageSettled(const std::shared_ptr<FrameEviction>& frame,
                         uint64_t key, ZpoolHandle handle,
                         DeliveryOutcome outcome) {
  if (CountOutcome(outcome)) {
    {
      MutexLock lock(&frame->job->mu);
      frame->job->result.evicted_pages++;
    }
    // Leaves the index alone if a Put or Delete released this copy meanwhile.
    DropCopy(key, handle, /*same_filled=*/false);
  }
  if (frame->outstanding.fetch_sub(1) == 1) FrameSettled(frame);
}

bool Tenant::CountOutcome(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::kAcked:
      evicted_++;
      return true;
    case DeliveryOutcome::kTimedOut:
      timed_out_++;
      break;
    case DeliveryOutcome::kDisconnected:
      disconnected_++;
      break;
  }
  return false;
}

std::optional<ReclaimResult> Tenant::ReclaimAndWait(uint32_t frames,
                                                    absl::Time deadline) {
  // Shared with the callback, which may come after this gave up.
  struct Wait {
    Notification finished;
    ReclaimResult result;
  };
  auto wait = std::make_shared<Wait>();
  Reclaim(frames, [wait](ReclaimResult result) {
    wait->result = result;
    wait->finished.Notify();
  });
  if (!wait->finished.WaitForNotificationWithDeadline(deadline)) {
    return std::nullopt;
  }
  return wait->result;
}

uint64_t Tenant::Drain(absl::Time deadline) {
  const uint64_t evicted_before = evicted_.load();
  for (;;) {
    const uint64_t frames = pool_->Stats().pool_frames;
    if (frames == 0) break;
    std::optional<ReclaimResult> reclaimed =
        ReclaimAndWait(static_cast<uint32_t>(frames), deadline);
    if (!reclaimed.has_value() || reclaimed->reclaimed_pool_pages == 0) break;
  }
  DrainSameFilled(deadline);
  return evicted_.load() - evicted_before;
}

void Tenant::DrainSameFilled(absl::Time deadline) {
  // Same-filled pages hold no pool memory, so reclaim never sees them.
  std::vector<std::pair<uint64_t, uint64_t>> same_filled;  // key, word
  {
    ReaderLock lock(&index_mu_);
    for (const auto& [key, entry] : index_) {
      if (entry.encoding == PageEncoding::kSameFilled) {
        same_filled.emplace_back(key, entry.value);
      }
    }
  }
  // Shared with the deliveries' callbacks, which may come after this gave
  // up at the deadline.
  struct Out {
    Mutex mu;
    CondVar settled;
    int pages ABSL_GUARDED_BY(mu) = 0;
  };
  auto out = std::make_shared<Out>();
  // Waits until at most `most` pages are out, or the deadline; false then.
  auto wait_until = [&out, deadline](int most) {
    MutexLock lock(&out->mu);
    while (out->pages > most) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      out->settled.WaitWithTimeout(&out->mu, left);
    }
    return true;
  };
  std::array<uint8_t, kPageSize> page;
  for (const auto& listed : same_filled) {
    // Named copies, not structured bindings: clang 14 cannot capture those.
    const uint64_t key = listed.first;
    const uint64_t word = listed.second;
    if (!wait_until(kDrainInFlight - 1)) return;
    // As EvictPage: the index lock is held shared across Deliver, and a copy
    // stored since the listing is not this one, so the key is skipped.
    ReaderLock lock(&index_mu_);
    auto it = index_.find(key);
    if (it == index_.end() || !IsCopy(it->second, word, /*same_filled=*/true)) {
      continue;
    }
    FillWithWord(word, absl::MakeSpan(page));
    {
      MutexLock count(&out->mu);
      ++out->pages;
    }
    const absl::Status handed = sink_->Deliver(
        name_, key, page,
        [self = shared_from_this(), out, key, word](DeliveryOutcome outcome) {
          if (self->CountOutcome(outcome)) {
            self->DropCopy(key, word, /*same_filled=*/true);
          }
          MutexLock count(&out->mu);
          --out->pages;
          out->settled.SignalAll();
        });
    if (!handed.ok()) {
      refused_++;
      MutexLock count(&out->mu);
      --out->pages;
    }
  }
  wait_until(0);
}

bool Tenant::Empty() const {
  ReaderLock lock(&index_mu_);
  return index_.empty();
}

PageStats Tenant::Stats() const {
  PageStats stats;
  ReaderLock lock(&index_mu_);
  const ZpoolStats pool = pool_->Stats();
  stats.stored_pages = index_.size();
  stats.pool_pages = pool.pool_frames;
  stats.same_filled_pages = same_filled_pages_;
  stats.lz4_pages = lz4_pages_;
  stats.zstd_pages = zstd_pages_;
  stats.raw_pages = raw_pages_;
  stats.compressed_bytes = compressed_bytes_;
  stats.arena_mapped_bytes = pool.arena.mapped_bytes;
  stats.evicted_pages = evicted_.load();
  stats.deliveries_acked = stats.evicted_pages;
  stats.deliveries_timed_out = timed_out_.load();
  stats.deliveries_disconnected = disconnected_.load();
  stats.deliveries_refused = refused_.load();
  stats.deliveries_stale = stale_.load();
  stats.reclaimed_pool_pages = reclaimed_.load();
  stats.rejected_puts_limit = rejected_limit_.load();
  stats.rejected_puts_invalid = rejected_invalid_.load();
  stats.tenants = 1;
  return stats;
}

}  // namespace zpaged
