#include "server/store/page_store.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "contract/names.h"
#include "contract/page.h"
#include "server/core/notification.h"

namespace zpaged {

PageStore::PageStore(const StoreOptions& options, EvictionSink* sink)
    : options_(options),
      sink_(sink),
      budget_(options.max_memory_bytes, "server memory limit"),
      reclaimer_(
          sink, &budget_,
          [this] {
            std::vector<std::shared_ptr<ReclaimSource>> sources;
            for (std::shared_ptr<Tenant>& t : Tenants()) {
              sources.push_back(std::move(t));
            }
            return sources;
          },
          ReclaimerOptions{.headroom_bytes = options.reclaim_headroom_bytes}) {}

std::shared_ptr<Tenant> PageStore::Find(absl::string_view tenant) const {
  MutexLock lock(&tenants_mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<Tenant>> PageStore::FindOrCreate(
    absl::string_view tenant) {
  bool short_of_memory = false;
  absl::StatusOr<std::shared_ptr<Tenant>> found =
      FindOrCreateOnce(tenant, /*may_overshoot=*/false, &short_of_memory);
  // At the limit a newcomer is let in if room can be made for it from a
  // tenant above its share: its first Put then waits for that room.
  if (!found.ok() && short_of_memory && reclaimer_.CanMakeRoomForNewcomer()) {
    found = FindOrCreateOnce(tenant, /*may_overshoot=*/true, &short_of_memory);
  }
  if (!found.ok()) rejected_new_tenants_++;
  return found;
}

absl::StatusOr<std::shared_ptr<Tenant>> PageStore::FindOrCreateOnce(
    absl::string_view tenant, bool may_overshoot, bool* short_of_memory) {
  std::vector<std::shared_ptr<Tenant>> retired;  // destroyed after unlocking
  MutexLock lock(&tenants_mu_);
  auto it = tenants_.find(tenant);
  if (it != tenants_.end()) return it->second;
  if (tenants_.size() >= options_.max_tenants) retired = RetireIdleTenants();
  if (tenants_.size() >= options_.max_tenants) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "zpaged already holds its maximum of ", options_.max_tenants,
        " tenants (--max_tenants), none of them empty"));
  }
  absl::Status charged = budget_.Charge(kTenantBytes);
  if (!charged.ok() && retired.empty()) {
    retired = RetireIdleTenants();
    charged = budget_.Charge(kTenantBytes);
  }
  // Past the limit by one tenant's cost at most: only while it is not
  // passed already, so that newcomers cannot add up.
  if (!charged.ok() && may_overshoot &&
      budget_.used_bytes() <= budget_.limit_bytes()) {
    budget_.ChargeAnyway(kTenantBytes);
    charged = absl::OkStatus();
  }
  if (!charged.ok()) {
    *short_of_memory = true;
    return absl::ResourceExhaustedError(
        absl::StrCat("no room for a new tenant (", kTenantBytes,
                     " bytes): ", charged.message(),
                     "; no tenant above its share has a watcher to evict to"));
  }
  std::shared_ptr<Tenant>& slot = tenants_[tenant];
  slot = std::make_shared<Tenant>(std::string(tenant), options_, kTenantBytes,
                                  sink_, &reclaimer_, &budget_);
  return slot;
}

std::vector<std::shared_ptr<Tenant>> PageStore::RetireIdleTenants() {
  std::vector<std::shared_ptr<Tenant>> retired;
  for (auto it = tenants_.begin(); it != tenants_.end();) {
    // Only this map holds it, and copies are made under tenants_mu_: no one
    // can start using it before it is gone.
    if (it->second.use_count() != 1 || !it->second->Empty()) {
      ++it;
      continue;
    }
    const PageStats stats = it->second->Stats();
    for (const PageStatField& field : kPageStatFields) {
      if (field.kind == StatKind::kCounter) {
        retired_counters_.*field.member += stats.*field.member;
      }
    }
    retired.push_back(std::move(it->second));
    tenants_.erase(it++);
    budget_.Release(kTenantBytes);
    ++retired_tenants_;
  }
  return retired;
}

uint64_t PageStore::retired_tenants() const {
  MutexLock lock(&tenants_mu_);
  return retired_tenants_;
}

namespace {

// The page `page` stands for: a whole page's own bytes, or what an encoded
// one decodes to, in this thread's scratch page until its next call. It is
// checked here, once, before a tenant is made for it or anything stored;
// INVALID_ARGUMENT naming `key` if it is not one page.
absl::StatusOr<absl::Span<const uint8_t>> WholePage(uint64_t key,
                                                    const IncomingPage& page) {
  thread_local std::array<uint8_t, kPageSize> expanded;
  absl::Status valid;
  if (!page.encoding.has_value()) {
    if (page.bytes.size() == kPageSize) return page.bytes;
    valid = absl::InvalidArgumentError(
        absl::StrCat("page data is ", page.bytes.size(),
                     " bytes; it must be exactly ", kPageSize));
  } else {
    valid =
        ExpandEncodedPage(*page.encoding, page.bytes, absl::MakeSpan(expanded));
    if (valid.ok()) return absl::MakeConstSpan(expanded);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("key ", key, ": ", valid.message()));
}

}  // namespace

absl::Status PageStore::CheckWritable(absl::string_view tenant) const {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  if (!accepting_writes_.load()) {
    return absl::UnavailableError(
        "zpaged is shutting down and takes no more pages");
  }
  return absl::OkStatus();
}

void PageStore::CountInvalidPut(absl::string_view tenant) const {
  if (std::shared_ptr<Tenant> t = Find(tenant)) t->CountInvalidPut();
}

std::optional<absl::StatusOr<PutResult>> PageStore::Put(
    absl::string_view tenant, uint64_t key, const IncomingPage& page,
    const PutOptions& options, absl::FunctionRef<PutDone()> later) {
  if (absl::Status writable = CheckWritable(tenant); !writable.ok()) {
    return writable;
  }
  absl::StatusOr<absl::Span<const uint8_t>> whole = WholePage(key, page);
  if (!whole.ok()) {
    CountInvalidPut(tenant);
    return whole.status();
  }
  absl::StatusOr<std::shared_ptr<Tenant>> t = FindOrCreate(tenant);
  if (!t.ok()) return t.status();
  std::optional<absl::StatusOr<PutResult>> now =
      (*t)->Put(key, page, *whole, options, later);
  reclaimer_.NoteCharged();
  return now;
}

bool PageStore::PutMany(
    absl::string_view tenant, size_t first, size_t count,
    absl::FunctionRef<BatchPage(size_t)> item, const PutOptions& options,
    absl::FunctionRef<void(size_t, absl::StatusOr<PutResult>)> stored,
    absl::FunctionRef<PutDone(size_t)> later) {
  if (absl::Status writable = CheckWritable(tenant); !writable.ok()) {
    for (size_t i = first; i < count; ++i) stored(i, writable);
    return true;
  }
  // Found (or made) at the first page that is one, and kept for the rest.
  std::optional<absl::StatusOr<std::shared_ptr<Tenant>>> t;
  for (size_t i = first; i < count; ++i) {
    BatchPage one = item(i);
    absl::StatusOr<absl::Span<const uint8_t>> whole =
        one.page.ok()
            ? WholePage(one.key, *one.page)
            : absl::StatusOr<absl::Span<const uint8_t>>(one.page.status());
    if (!whole.ok()) {
      CountInvalidPut(tenant);
      stored(i, whole.status());
      continue;
    }
    if (!t.has_value()) t = FindOrCreate(tenant);
    if (!t->ok()) {
      stored(i, t->status());
      continue;
    }
    std::optional<absl::StatusOr<PutResult>> now = (**t)->Put(
        one.key, *one.page, *whole, options, [&] { return later(i); });
    reclaimer_.NoteCharged();
    if (!now.has_value()) return false;
    stored(i, *std::move(now));
  }
  return true;
}

absl::StatusOr<PutResult> PageStore::PutAndWait(absl::string_view tenant,
                                                uint64_t key,
                                                const IncomingPage& page,
                                                const PutOptions& options) {
  Notification finished;
  absl::StatusOr<PutResult> waited;
  std::optional<absl::StatusOr<PutResult>> now =
      Put(tenant, key, page, options, [&]() -> PutDone {
        return [&](absl::StatusOr<PutResult> result) {
          waited = std::move(result);
          finished.Notify();
        };
      });
  if (now.has_value()) return *std::move(now);
  finished.WaitForNotification();
  return waited;
}

absl::StatusOr<StoredPage> PageStore::Get(absl::string_view tenant,
                                          uint64_t key, absl::Span<uint8_t> out,
                                          PageEncodingSet accept) const {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  const std::shared_ptr<const Tenant> t = Find(tenant);
  if (t == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tenant '", tenant, "' has no page under key ", key));
  }
  return t->Get(key, out, accept);
}

absl::Status PageStore::GetMany(
    absl::string_view tenant, absl::Span<const uint64_t> keys,
    PageEncodingSet accept, absl::FunctionRef<absl::Span<uint8_t>(size_t)> out,
    absl::FunctionRef<void(size_t, const absl::StatusOr<StoredPage>&)> read)
    const {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  const std::shared_ptr<const Tenant> t = Find(tenant);
  if (t == nullptr) {
    const absl::Status none =
        absl::NotFoundError(absl::StrCat("tenant '", tenant, "' has no pages"));
    for (size_t i = 0; i < keys.size(); ++i) read(i, none);
    return absl::OkStatus();
  }
  t->GetMany(keys, accept, out, read);
  return absl::OkStatus();
}

absl::StatusOr<bool> PageStore::Delete(absl::string_view tenant, uint64_t key) {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  const std::shared_ptr<Tenant> t = Find(tenant);
  return t != nullptr && t->Delete(key);
}

absl::StatusOr<uint64_t> PageStore::DeleteAll(absl::string_view tenant) {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  const std::shared_ptr<Tenant> t = Find(tenant);
  return t == nullptr ? 0 : t->DeleteAll();
}

void PageStore::Reclaim(
    absl::string_view tenant, uint32_t pages,
    absl::AnyInvocable<void(absl::StatusOr<ReclaimResult>) &&> done) {
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    std::move(done)(valid);
    return;
  }
  if (!sink_->CanAccept(tenant)) {
    std::move(done)(absl::FailedPreconditionError(
        absl::StrCat("tenant '", tenant,
                     "' has no eviction watcher connected; reclaim needs one "
                     "to take the evicted pages")));
    return;
  }
  const std::shared_ptr<Tenant> t = Find(tenant);
  if (t == nullptr) {
    std::move(done)(ReclaimResult{});
    return;
  }
  reclaimer_.Reclaim(t, pages, EvictionReason::kReclaimRpc,
                     [done = std::move(done)](ReclaimResult result) mutable {
                       std::move(done)(result);
                     });
}

absl::StatusOr<PageStats> PageStore::Stats(absl::string_view tenant) const {
  if (tenant.empty()) {
    PageStats total;
    for (const auto& [name, stats] : StatsByTenant()) total += stats;
    MutexLock lock(&tenants_mu_);
    total += retired_counters_;
    return total;
  }
  if (absl::Status valid = ValidateTenantName(tenant); !valid.ok()) {
    return valid;
  }
  const std::shared_ptr<const Tenant> t = Find(tenant);
  if (t == nullptr) return PageStats{};
  PageStats stats = t->Stats();
  size_t holders = 0;
  for (const std::shared_ptr<Tenant>& each : Tenants()) {
    holders += each->HoldsPages();
  }
  SetShare(stats, holders);
  return stats;
}

void PageStore::SetShare(PageStats& stats, size_t holders) const {
  // A tenant that holds nothing has the share it would have as a holder.
  const uint64_t limit = budget_.limit_bytes();
  const size_t among = holders + (stats.stored_pages == 0 ? 1 : 0);
  stats.share_bytes = limit / among;
}

std::vector<std::shared_ptr<Tenant>> PageStore::Tenants() const {
  MutexLock lock(&tenants_mu_);
  std::vector<std::shared_ptr<Tenant>> tenants;
  tenants.reserve(tenants_.size());
  for (const auto& [name, tenant] : tenants_) tenants.push_back(tenant);
  return tenants;
}

PageStore::DrainReport PageStore::DrainToWatchers(absl::Time deadline) {
  DrainReport report;
  for (const std::shared_ptr<Tenant>& t : Tenants()) {
    const bool watched = sink_->CanAccept(t->name());
    if (watched) report.drained_pages += reclaimer_.Drain(t, deadline);
    const PageStats left = t->Stats();
    if (left.stored_pages > 0) {
      report.left.push_back(DrainReport::Left{t->name(), left.stored_pages,
                                              left.same_filled_pages, watched});
    }
  }
  return report;
}

PageStats PageStore::StatsOf(const std::vector<std::string>& tenants) const {
  PageStats total;
  for (const std::string& name : tenants) {
    if (const std::shared_ptr<const Tenant> t = Find(name)) {
      total += t->Stats();
    }
  }
  return total;
}

std::vector<std::pair<std::string, PageStats>> PageStore::StatsByTenant()
    const {
  const std::vector<std::shared_ptr<Tenant>> tenants = Tenants();
  std::vector<std::pair<std::string, PageStats>> out;
  out.reserve(tenants.size());
  size_t holders = 0;
  for (const std::shared_ptr<Tenant>& t : tenants) {
    out.emplace_back(t->name(), t->Stats());
    holders += out.back().second.stored_pages > 0;
  }
  for (auto& [name, stats] : out) SetShare(stats, holders);
  return out;
}

}  // namespace zpaged
