#include "server/store/tenant.h"

#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/base/macros.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "server/core/page.h"

namespace zpaged {
namespace {

// Every LZ4 allocation starts with the key of its page.
constexpr size_t kKeyPrefixBytes = sizeof(uint64_t);

// Pages evicted and acked by the reclaim running on this thread: the pool
// calls Evict on the thread that shrinks it, so a Reclaim call can count its
// own evictions exactly, whatever other threads do.
thread_local uint64_t evicted_on_this_thread = 0;

// Rounds of "reclaim one frame, try again" a Put makes before giving up; more
// than one because, under the server-wide limit, another tenant may take the
// frame this one just gave back.
constexpr int kMaxReclaimRounds = 16;

}  // namespace

Tenant::Tenant(std::string name, uint64_t max_pool_bytes, EvictionSink* sink,
               MemoryBudget* shared_budget)
    : name_(std::move(name)), sink_(sink) {
  ZpoolOptions options;
  options.arena.max_bytes = max_pool_bytes;
  options.shared_budget = shared_budget;
  options.evict = [this](ZpoolHandle handle) { return Evict(handle); };
  // Default arena options are valid, so creation cannot fail.
  pool_ = *CreateZpool("zbud", std::move(options));
}

absl::StatusOr<PutResult> Tenant::Put(uint64_t key,
                                      absl::Span<const uint8_t> page,
                                      bool may_reclaim) {
  if (std::optional<uint64_t> word = SameFilledWord(page)) {
    std::optional<IndexEntry> replaced;
    {
      WriterLock lock(&index_mu_);
      replaced = SwapIn(key, IndexEntry{*word, 0, PageEncoding::kSameFilled});
    }
    if (replaced.has_value()) Release(*replaced);
    return PutResult{PageEncoding::kSameFilled, 0};
  }

  thread_local std::array<uint8_t, kPageSize> compressed;
  const size_t lz4_bytes = Lz4CompressPage(
      page, absl::MakeSpan(compressed.data(),
                           pool_->MaxAllocationSize() - kKeyPrefixBytes));
  const PageEncoding encoding =
      lz4_bytes == 0 ? PageEncoding::kRaw : PageEncoding::kLz4;
  absl::StatusOr<ZpoolHandle> handle =
      Allocate(encoding == PageEncoding::kRaw ? 0 : kKeyPrefixBytes + lz4_bytes,
               may_reclaim);
  if (!handle.ok()) {
    // A non-blocking attempt that a reclaiming retry may still satisfy is
    // not a rejection yet.
    if (absl::IsResourceExhausted(handle.status()) &&
        (may_reclaim || !sink_->CanAccept(name_))) {
      rejected_limit_++;
    }
    return handle.status();
  }

  std::optional<IndexEntry> replaced;
  size_t capacity;
  {
    // The copy happens under the index lock: a reclaim may already see the
    // new allocation on the LRU, and reads its key under this lock.
    WriterLock lock(&index_mu_);
    absl::StatusOr<MappedAllocation> mapped = pool_->Map(*handle);
    ABSL_ASSERT(mapped.ok());
    capacity = mapped->capacity;
    if (encoding == PageEncoding::kRaw) {
      std::memcpy(mapped->data, page.data(), kPageSize);
      raw_keys_[*handle] = key;
    } else {
      std::memcpy(mapped->data, &key, kKeyPrefixBytes);
      std::memcpy(mapped->data + kKeyPrefixBytes, compressed.data(), lz4_bytes);
    }
    pool_->Unmap(*handle);

    replaced = SwapIn(
        key, IndexEntry{*handle, static_cast<uint32_t>(lz4_bytes), encoding});
  }
  if (replaced.has_value()) Release(*replaced);
  return PutResult{encoding, static_cast<uint32_t>(capacity)};
}

std::optional<Tenant::IndexEntry> Tenant::SwapIn(uint64_t key,
                                                 const IndexEntry& entry) {
  Account(entry, +1);
  auto [it, inserted] = index_.try_emplace(key, entry);
  if (inserted) return std::nullopt;
  const IndexEntry replaced = std::exchange(it->second, entry);
  Account(replaced, -1);
  return replaced;
}

void Tenant::Account(const IndexEntry& entry, int direction) {
  switch (entry.encoding) {
    case PageEncoding::kSameFilled:
      same_filled_pages_ += direction;
      break;
    case PageEncoding::kLz4:
      lz4_pages_ += direction;
      compressed_bytes_ += direction * static_cast<int64_t>(entry.stored_bytes);
      break;
    case PageEncoding::kRaw:
      raw_pages_ += direction;
      if (direction < 0) raw_keys_.erase(entry.value);
      break;
  }
}

void Tenant::Release(const IndexEntry& entry) {
  if (entry.encoding == PageEncoding::kSameFilled) return;
  // The entry was indexed until now and nothing frees an indexed handle, so
  // the free cannot miss.
  const absl::Status freed = pool_->Free(entry.value);
  ABSL_ASSERT(freed.ok());
  freed.IgnoreError();
}

absl::StatusOr<ZpoolHandle> Tenant::Allocate(size_t size, bool may_reclaim) {
  for (int round = 0;; ++round) {
    absl::StatusOr<ZpoolHandle> handle =
        size == 0 ? pool_->AllocateWholeFrame() : pool_->Allocate(size);
    if (handle.ok() || !absl::IsResourceExhausted(handle.status()) ||
        !may_reclaim) {
      return handle;
    }
    if (!sink_->CanAccept(name_)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          handle.status().message(), "; no eviction watcher of tenant '", name_,
          "' is connected to take pages out"));
    }
    if (round == kMaxReclaimRounds || Reclaim(1).reclaimed_pool_pages == 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          handle.status().message(),
          "; reclaim could not free a frame of "
          "tenant '",
          name_, "' (watchers did not acknowledge evicted pages)"));
    }
  }
}

absl::Status Tenant::Get(uint64_t key, absl::Span<uint8_t> out) const {
  ReaderLock lock(&index_mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tenant '", name_, "' has no page under key ", key));
  }
  return Read(key, it->second, out);
}

absl::Status Tenant::Read(uint64_t key, const IndexEntry& entry,
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
    read = Lz4DecompressPage(
        absl::MakeConstSpan(mapped->data + kKeyPrefixBytes, entry.stored_bytes),
        out);
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

absl::Status Tenant::Evict(ZpoolHandle handle) {
  thread_local std::array<uint8_t, kPageSize> page;
  const absl::StatusOr<uint64_t> key =
      ClaimAndRead(handle, absl::MakeSpan(page));
  if (!key.ok()) return key.status();
  const absl::Cleanup unclaim = [this, &key] { UnclaimKey(*key); };

  if (absl::Status delivered = sink_->Deliver(name_, *key, page);
      !delivered.ok()) {
    return delivered;
  }
  evicted_++;
  evicted_on_this_thread++;
  // Leaves the index alone if a Put or Delete released this copy meanwhile.
  DropCopy(*key, handle, /*same_filled=*/false);
  return absl::OkStatus();
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

absl::StatusOr<uint64_t> Tenant::ClaimAndRead(ZpoolHandle handle,
                                              absl::Span<uint8_t> page) {
  ReaderLock lock(&index_mu_);
  absl::StatusOr<MappedAllocation> mapped = pool_->Map(handle);
  if (!mapped.ok()) return mapped.status();
  // Only a whole frame is a page long: a buddy is at most 3968 bytes.
  const bool whole_frame = mapped->capacity == kPageSize;
  uint64_t key;
  if (!whole_frame) std::memcpy(&key, mapped->data, kKeyPrefixBytes);
  pool_->Unmap(handle);
  if (whole_frame) {
    auto raw = raw_keys_.find(handle);
    if (raw == raw_keys_.end()) {
      return absl::NotFoundError("page is not indexed yet");
    }
    key = raw->second;
  }
  auto it = index_.find(key);
  if (it == index_.end() ||
      !IsCopy(it->second, handle, /*same_filled=*/false)) {
    return absl::NotFoundError("page was replaced or deleted");
  }
  if (!ClaimKey(key)) {
    return absl::UnavailableError(
        absl::StrCat("an older copy of key ", key, " is still being evicted"));
  }
  if (absl::Status read = Read(key, it->second, page); !read.ok()) {
    UnclaimKey(key);
    return read;
  }
  return key;
}

bool Tenant::ClaimKey(uint64_t key) {
  MutexLock lock(&claims_mu_);
  return keys_being_evicted_.insert(key).second;
}

void Tenant::UnclaimKey(uint64_t key) {
  MutexLock lock(&claims_mu_);
  keys_being_evicted_.erase(key);
}

uint64_t Tenant::Drain() {
  const uint64_t evicted_before = evicted_.load();
  for (;;) {
    const uint64_t frames = pool_->Stats().pool_frames;
    if (frames == 0 ||
        Reclaim(static_cast<uint32_t>(frames)).reclaimed_pool_pages == 0) {
      break;
    }
  }
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
  std::array<uint8_t, kPageSize> page;
  for (const auto& listed : same_filled) {
    // Named copies, not structured bindings: clang 14 cannot capture those.
    const uint64_t key = listed.first;
    const uint64_t word = listed.second;
    // A copy stored since the listing is not this one: skip the key, as
    // reclaim skips a replaced page.
    {
      ReaderLock lock(&index_mu_);
      auto it = index_.find(key);
      if (it == index_.end() ||
          !IsCopy(it->second, word, /*same_filled=*/true) || !ClaimKey(key)) {
        continue;
      }
    }
    const absl::Cleanup unclaim = [this, key] { UnclaimKey(key); };
    FillWithWord(word, absl::MakeSpan(page));
    if (!sink_->Deliver(name_, key, page).ok()) continue;
    evicted_++;
    DropCopy(key, word, /*same_filled=*/true);
  }
  return evicted_.load() - evicted_before;
}

ReclaimResult Tenant::Reclaim(uint32_t frames) {
  const uint64_t evicted_before = evicted_on_this_thread;
  // The pool always has an evict callback, so Shrink cannot fail.
  const uint32_t reclaimed = pool_->Shrink(frames).value_or(0);
  reclaimed_ += reclaimed;
  return ReclaimResult{reclaimed, evicted_on_this_thread - evicted_before};
}

PageStats Tenant::Stats() const {
  PageStats stats;
  ReaderLock lock(&index_mu_);
  const ZpoolStats pool = pool_->Stats();
  stats.stored_pages = index_.size();
  stats.pool_pages = pool.pool_frames;
  stats.same_filled_pages = same_filled_pages_;
  stats.lz4_pages = lz4_pages_;
  stats.raw_pages = raw_pages_;
  stats.compressed_bytes = compressed_bytes_;
  stats.arena_mapped_bytes = pool.arena.mapped_bytes;
  stats.evicted_pages = evicted_.load();
  stats.reclaimed_pool_pages = reclaimed_.load();
  stats.rejected_puts_limit = rejected_limit_.load();
  stats.rejected_puts_invalid = rejected_invalid_.load();
  stats.tenants = 1;
  return stats;
}

}  // namespace zpaged
