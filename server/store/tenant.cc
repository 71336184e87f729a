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

// Rounds of "make room for one frame, try again" a waiting Put makes before
// giving up; more than one because, under the server-wide limit, another
// tenant's Put may take the frame just given back.
constexpr int kMaxRoomRounds = 16;

// Why a Put's caller can no longer be answered with "stored" (its deadline
// passed, or it left), `when` saying at which point; OK while it can. Past
// this point the client has seen the call fail and may have written the
// key again, so storing the page would bring back an older write.
absl::Status CallerGone(absl::Time deadline,
                        const std::function<bool()>& cancelled,
                        absl::string_view when) {
  if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
    return absl::DeadlineExceededError(absl::StrCat(
        "the Put's deadline passed ", when, "; nothing was stored"));
  }
  if (cancelled && cancelled()) {
    return absl::CancelledError(
        absl::StrCat("the Put was cancelled ", when, "; nothing was stored"));
  }
  return absl::OkStatus();
}

}  // namespace

// A Put waiting for room: what it needs to finish after Put returned.
struct Tenant::WaitingPut {
  uint64_t key;
  PageEncoding encoding;
  std::vector<uint8_t> payload;  // the compressed bytes, or the RAW page
  uint64_t word;                 // same-filled
  absl::Time deadline;
  std::function<bool()> cancelled;
  absl::Time started;
  int rounds = 0;
  // A later write of the key came: this one must never be installed.
  bool superseded = false;  // guarded by the tenant's index_mu_
  PutDone done;
};

Tenant::Tenant(std::string name, const StoreOptions& options,
               uint64_t fixed_bytes, EvictionSink* sink, Reclaimer* reclaimer,
               MemoryBudget* shared_budget)
    : name_(std::move(name)),
      sink_(sink),
      reclaimer_(reclaimer),
      shared_budget_(shared_budget),
      codec_(options.codec),
      max_pool_bytes_(options.tenant_max_bytes),
      fixed_bytes_(fixed_bytes),
      on_room_wait_(options.on_room_wait) {
  ZpoolOptions pool_options;
  pool_options.arena.max_bytes = options.tenant_max_bytes;
  pool_options.shared_budget = shared_budget;
  // Default arena options are valid and the store checked the driver, so
  // creation cannot fail.
  pool_ = *CreateZpool(options.pool_driver, std::move(pool_options));
}

Tenant::EncodedPage Tenant::Encode(const IncomingPage& page,
                                   absl::Span<const uint8_t> whole,
                                   absl::Span<uint8_t> scratch) const {
  const size_t max_payload = PageRecord::MaxPayload(pool_->MaxAllocationSize());
  if (!page.encoding.has_value()) {
    if (std::optional<uint64_t> word = SameFilledWord(whole)) {
      return {PageEncoding::kSameFilled, {}, *word};
    }
    const Compressed out =
        CompressPage(codec_, whole, scratch.subspan(0, max_payload));
    if (out.bytes == 0) return {PageEncoding::kRaw, whole};
    return {out.encoding, scratch.subspan(0, out.bytes)};
  }
  switch (*page.encoding) {
    case PageEncoding::kSameFilled: {
      uint64_t word;
      std::memcpy(&word, page.bytes.data(), sizeof(word));
      return {PageEncoding::kSameFilled, {}, word};
    }
    case PageEncoding::kLz4:
    case PageEncoding::kZstd:
      if (page.bytes.size() <= max_payload) {
        return {*page.encoding, page.bytes};
      }
      break;
    case PageEncoding::kRaw:
      break;
  }
  return {PageEncoding::kRaw, whole};
}

std::optional<absl::StatusOr<PutResult>> Tenant::Put(
    uint64_t key, const IncomingPage& page, absl::Span<const uint8_t> whole,
    const PutOptions& options, absl::FunctionRef<PutDone()> later) {
  // A batch's later items run after its earlier ones waited, perhaps past
  // the call's end.
  if (absl::Status gone = CallerGone(options.deadline, options.cancelled,
                                     "before it was stored");
      !gone.ok()) {
    rejected_abandoned_++;
    return gone;
  }
  thread_local std::array<uint8_t, kPageSize> compressed;
  const EncodedPage encoded = Encode(page, whole, absl::MakeSpan(compressed));
  absl::StatusOr<Reservation> room = Reserve(key, encoded);
  if (room.ok()) return Install(key, *room, encoded);
  if (!absl::IsResourceExhausted(room.status())) return room.status();

  const bool at_own_limit = AtOwnLimit();
  if (!options.wait_for_room || !reclaimer_->CanMakeRoom(*this, at_own_limit)) {
    rejected_limit_++;
    return absl::ResourceExhaustedError(absl::StrCat(
        room.status().message(),
        !options.wait_for_room ? "; this Put may not wait for evictions"
        : at_own_limit
            ? absl::StrCat("; no eviction watcher of tenant '", name_,
                           "' is connected to take pages out")
            : absl::StrCat("; no tenant above its share of the server, nor "
                           "tenant '",
                           name_,
                           "' itself, has a watcher to take pages "
                           "out")));
  }
  auto* waiting =
      new WaitingPut{key,
                     encoded.encoding,
                     {encoded.payload.begin(), encoded.payload.end()},
                     encoded.word,
                     options.deadline,
                     options.cancelled,
                     absl::Now(),
                     0,
                     false,
                     later()};
  {
    // From here on a later write of the key supersedes this one.
    WriterLock lock(&index_mu_);
    Supersede(key);
    waiting_[key] = waiting;
  }
  room_waits_++;
  MakeRoomFor(waiting);
  return std::nullopt;
}

bool Tenant::AtOwnLimit() const {
  return max_pool_bytes_ != MemoryBudget::kUnlimited &&
         pool_->TotalSizeBytes() + kPageSize > max_pool_bytes_;
}

void Tenant::MakeRoomFor(WaitingPut* put) {
  reclaimer_->MakeRoom(
      shared_from_this(), AtOwnLimit(),
      [this, put](ReclaimResult reclaimed) { RetryPut(put, reclaimed); });
}

absl::Status Tenant::Abandoned(const WaitingPut& waiting) {
  if (waiting.superseded) {
    return absl::AbortedError(absl::StrCat(
        "a later write of key ", waiting.key,
        " came while this Put waited for room; nothing was stored"));
  }
  return CallerGone(waiting.deadline, waiting.cancelled,
                    "while it waited for room");
}

void Tenant::RetryPut(WaitingPut* put, const ReclaimResult& reclaimed) {
  absl::Status abandoned;
  {
    ReaderLock lock(&index_mu_);
    abandoned = Abandoned(*put);
  }
  if (!abandoned.ok()) {
    FinishWaiting(put, abandoned);
    return;
  }
  const EncodedPage encoded{put->encoding, put->payload, put->word};
  absl::StatusOr<Reservation> room = Reserve(put->key, encoded);
  if (room.ok()) {
    FinishWaiting(put, Install(put->key, *room, encoded, put));
  } else if (!absl::IsResourceExhausted(room.status())) {
    FinishWaiting(put, room.status());
  } else if (reclaimed.reclaimed_pool_pages > 0 &&
             ++put->rounds < kMaxRoomRounds) {
    MakeRoomFor(put);
  } else {
    rejected_limit_++;
    FinishWaiting(
        put, absl::ResourceExhaustedError(absl::StrCat(
                 room.status().message(), "; reclaim could not free a frame ",
                 reclaimed.reclaimed_pool_pages == 0
                     ? "(watchers did not acknowledge evicted pages)"
                     : "in time",
                 " for tenant '", name_, "'")));
  }
}

void Tenant::FinishWaiting(WaitingPut* put, absl::StatusOr<PutResult> result) {
  {
    WriterLock lock(&index_mu_);
    auto it = waiting_.find(put->key);
    if (it != waiting_.end() && it->second == put) waiting_.erase(it);
  }
  if (result.ok()) {
    if (on_room_wait_) on_room_wait_(absl::Now() - put->started);
  } else if (!absl::IsResourceExhausted(result.status())) {
    rejected_abandoned_++;
  }
  PutDone done = std::move(put->done);
  delete put;
  std::move(done)(std::move(result));
}

void Tenant::Supersede(uint64_t key) {
  if (waiting_.empty()) return;
  auto it = waiting_.find(key);
  if (it == waiting_.end()) return;
  it->second->superseded = true;
  waiting_.erase(it);
}

void Tenant::SupersedeAll() {
  for (auto& [key, put] : waiting_) put->superseded = true;
  waiting_.clear();
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

absl::StatusOr<PutResult> Tenant::Install(uint64_t key, const Reservation& room,
                                          const EncodedPage& page,
                                          const WaitingPut* waiting) {
  // Every indexed entry holds one charge; a key indexed at Reserve (so not
  // charged then) may have been deleted since.
  if (!room.index_charged && shared_budget_ != nullptr) {
    shared_budget_->ChargeAnyway(kIndexEntryBytes);
  }
  const bool pooled = page.encoding != PageEncoding::kSameFilled;
  IndexEntry entry{page.word, 0, page.encoding};
  size_t capacity = 0;
  std::optional<IndexEntry> replaced;
  absl::Status abandoned;
  {
    // One hold for the copy and the swap: a reclaim may already see the
    // new allocation on the LRU, and reads its key under this lock.
    WriterLock lock(&index_mu_);
    if (waiting != nullptr) abandoned = Abandoned(*waiting);
    if (abandoned.ok()) {
      if (pooled) {
        absl::StatusOr<ZpoolMapping> mapped =
            ZpoolMapping::Map(pool_.get(), room.handle);
        ABSL_ASSERT(mapped.ok());
        capacity = mapped->allocation().capacity;
        if (page.encoding == PageEncoding::kRaw) {
          std::memcpy(mapped->data(), page.payload.data(), kPageSize);
          raw_keys_.Insert(room.handle, key);
        } else {
          PageRecord::EncodeTo(key, page.payload, mapped->data());
          entry.stored_bytes = static_cast<uint32_t>(page.payload.size());
        }
        entry.value = room.handle;
      }
      Supersede(key);
      Account(entry, +1);
      auto [it, inserted] = index_.try_emplace(key, entry);
      if (!inserted) {
        replaced = std::exchange(it->second, entry);
        Account(*replaced, -1);
      }
    }
  }
  if (!abandoned.ok()) {
    Unreserve(room);
    return abandoned;
  }
  if (replaced.has_value()) Release(*replaced);
  return PutResult{page.encoding, static_cast<uint32_t>(capacity)};
}

void Tenant::Unreserve(const Reservation& room) {
  ReleaseIndexEntry();
  if (room.handle == 0) return;
  const absl::Status freed = pool_->Free(room.handle);
  ABSL_ASSERT(freed.ok());
  freed.IgnoreError();
}

void Tenant::Account(const IndexEntry& entry, int direction) {
  stored_pages_.fetch_add(direction);
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

absl::StatusOr<StoredPage> Tenant::Get(uint64_t key, absl::Span<uint8_t> out,
                                       PageEncodingSet accept) const {
  ReaderLock lock(&index_mu_);
  return ReadKey(key, out, accept);
}

void Tenant::GetMany(
    absl::Span<const uint64_t> keys, PageEncodingSet accept,
    absl::FunctionRef<absl::Span<uint8_t>(size_t)> out,
    absl::FunctionRef<void(size_t, const absl::StatusOr<StoredPage>&)> read)
    const {
  ReaderLock lock(&index_mu_);
  for (size_t i = 0; i < keys.size(); ++i) {
    read(i, ReadKey(keys[i], out(i), accept));
  }
}

absl::StatusOr<StoredPage> Tenant::ReadKey(uint64_t key,
                                           absl::Span<uint8_t> out,
                                           PageEncodingSet accept) const {
  auto it = index_.find(key);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tenant '", name_, "' has no page under key ", key));
  }
  return Read(it->second, out, accept);
}

absl::StatusOr<StoredPage> Tenant::Read(const IndexEntry& entry,
                                        absl::Span<uint8_t> out,
                                        PageEncodingSet accept) const {
  const StoredPage whole{PageEncoding::kRaw, kPageSize};
  const bool as_stored = accept.Contains(entry.encoding);
  if (entry.encoding == PageEncoding::kSameFilled) {
    if (!as_stored) {
      FillWithWord(entry.value, out);
      return whole;
    }
    std::memcpy(out.data(), &entry.value, sizeof(entry.value));
    return StoredPage{PageEncoding::kSameFilled, sizeof(entry.value)};
  }
  absl::StatusOr<ZpoolMapping> mapped =
      ZpoolMapping::Map(pool_.get(), entry.value);
  if (!mapped.ok()) return mapped.status();
  if (entry.encoding == PageEncoding::kRaw) {
    std::memcpy(out.data(), mapped->data(), kPageSize);
    return whole;
  }
  const absl::Span<const uint8_t> payload =
      PageRecord::DecodePayload(mapped->data(), entry.stored_bytes);
  if (as_stored) {
    std::memcpy(out.data(), payload.data(), payload.size());
    return StoredPage{entry.encoding, payload.size()};
  }
  if (absl::Status decoded = DecompressPage(entry.encoding, payload, out);
      !decoded.ok()) {
    return decoded;
  }
  return whole;
}

bool Tenant::Delete(uint64_t key) {
  IndexEntry removed;
  {
    WriterLock lock(&index_mu_);
    Supersede(key);
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
    WriterLock lock(&index_mu_);
    SupersedeAll();
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

uint64_t Tenant::UsedBytes() const {
  return pool_->TotalSizeBytes() + stored_pages_.load() * kIndexEntryBytes +
         fixed_bytes_;
}

uint64_t Tenant::PoolFrames() const {
  return pool_->TotalSizeBytes() / kPageSize;
}

absl::StatusOr<FrameReclaim> Tenant::StartReclaim() {
  return pool_->StartReclaim();
}

bool Tenant::EndReclaim(const FrameReclaim& reclaim) {
  if (!pool_->EndReclaim(reclaim)) return false;
  reclaimed_++;
  return true;
}

OfferOutcome Tenant::HandOverCopy(const PageCopy& copy, PageBytes page,
                                  HandOver hand_over) {
  if (!hand_over(copy, page)) {
    refused_++;
    return OfferOutcome::kRefused;
  }
  return OfferOutcome::kHandedOver;
}

OfferOutcome Tenant::OfferPooled(ZpoolHandle handle, HandOver hand_over) {
  thread_local std::array<uint8_t, kPageSize> page;
  // Shared, and held across the hand-over: a Put cannot replace the copy
  // between reading it and handing it over.
  ReaderLock lock(&index_mu_);
  std::optional<uint64_t> key;
  {
    absl::StatusOr<ZpoolMapping> mapped =
        ZpoolMapping::Map(pool_.get(), handle);
    if (!mapped.ok()) {
      stale_++;
      return OfferOutcome::kStale;
    }
    // A whole frame holds the page alone, with no record header to name it.
    key = mapped->allocation().whole_frame
              ? raw_keys_.Find(handle)
              : std::optional<uint64_t>(PageRecord::DecodeKey(mapped->data()));
  }
  auto it = key.has_value() ? index_.find(*key) : index_.end();
  // Not indexed: a Put not installed yet, or a page replaced or deleted
  // since the frame was taken.
  if (it == index_.end() ||
      !IsCopy(it->second, handle, /*same_filled=*/false)) {
    stale_++;
    return OfferOutcome::kStale;
  }
  // As stored: a watcher that decodes pages itself takes the compressed
  // bytes, and the watcher's channel expands them for one that does not.
  absl::StatusOr<StoredPage> stored =
      Read(it->second, absl::MakeSpan(page), kEveryEncoding);
  if (!stored.ok()) {
    stale_++;
    return OfferOutcome::kStale;
  }
  return HandOverCopy(
      PageCopy{*key, handle, false},
      PageBytes(stored->encoding,
                absl::MakeConstSpan(page.data(), stored->bytes)),
      hand_over);
}

std::vector<PageCopy> Tenant::SameFilledCopies() const {
  std::vector<PageCopy> copies;
  ReaderLock lock(&index_mu_);
  copies.reserve(same_filled_pages_);
  for (const auto& [key, entry] : index_) {
    if (entry.encoding == PageEncoding::kSameFilled) {
      copies.push_back(PageCopy{key, entry.value, true});
    }
  }
  return copies;
}

OfferOutcome Tenant::OfferSameFilled(const PageCopy& copy, HandOver hand_over) {
  // As OfferPooled: a copy stored since the listing is not this one.
  ReaderLock lock(&index_mu_);
  auto it = index_.find(copy.key);
  if (it == index_.end() ||
      !IsCopy(it->second, copy.value, /*same_filled=*/true)) {
    stale_++;
    return OfferOutcome::kStale;
  }
  uint8_t word[sizeof(copy.value)];
  std::memcpy(word, &copy.value, sizeof(word));
  return HandOverCopy(copy, PageBytes(PageEncoding::kSameFilled, word),
                      hand_over);
}

void Tenant::Settle(const PageCopy& copy, DeliveryOutcome outcome,
                    EvictionReason reason) {
  switch (outcome) {
    case DeliveryOutcome::kAcked:
      evicted_++;
      evicted_by_reason_[static_cast<int>(reason)]++;
      // Leaves the index alone if a Put or Delete replaced this copy.
      DropCopy(copy.key, copy.value, copy.same_filled);
      break;
    case DeliveryOutcome::kTimedOut:
      timed_out_++;
      break;
    case DeliveryOutcome::kDisconnected:
      disconnected_++;
      break;
  }
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
  stats.rejected_puts_abandoned = rejected_abandoned_.load();
  stats.room_waits = room_waits_.load();
  stats.used_bytes = pool.pool_frames * kPageSize +
                     index_.size() * kIndexEntryBytes + fixed_bytes_;
  for (int r = 0; r < kEvictionReasons; ++r) {
    stats.*kEvictedByReason[r] = evicted_by_reason_[r].load();
  }
  stats.tenants = 1;
  return stats;
}

}  // namespace zpaged
