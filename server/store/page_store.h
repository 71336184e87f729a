// PageStore: every tenant's pages, and the limits they share.
//
//   PageStore ── Tenant "vm-1" ── pool ── arena
//             ├─ Tenant "vm-2" ── ...
//             ├─ MemoryBudget (--max_memory_bytes, charged by every arena)
//             └─ Reclaimer (whom to evict, and the evictions: reclaimer.h)
//
// A tenant comes into being on its first Put. It costs kTenantBytes of the
// server's memory limit besides its pages; once it holds no page and no one
// is using it, it may be retired to make room for a new one (when
// max_tenants exist, or the memory limit refuses a new tenant's cost). Its
// counters then stay in the totals.
// Requests are validated here (tenant name, page size), so every caller gets
// the same rules. Errors are absl::Status; the RPC layer maps them to gRPC.
// Thread-safe.

#ifndef ZPAGED_SERVER_STORE_PAGE_STORE_H_
#define ZPAGED_SERVER_STORE_PAGE_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/memory_budget.h"
#include "server/core/mutex.h"
#include "server/evict/eviction_sink.h"
#include "server/store/incoming_page.h"
#include "server/store/page_stats.h"
#include "server/store/put_options.h"
#include "server/store/reclaimer.h"
#include "server/store/store_options.h"
#include "server/store/tenant.h"

namespace zpaged {

class PageStore {
 public:
  // What a tenant costs before its first page: its objects, its empty pool
  // and index (about 10 KiB measured), and what its arena may keep resident
  // beyond the frames in use (arena.h: up to 16 frames, 64 KiB).
  static constexpr uint64_t kTenantBytes = 96 * 1024;

  // The max_memory_bytes that holds `tenants` tenants whose pools hold
  // `pool_frames` frames and whose indexes `pages` pages, all together.
  static constexpr uint64_t MemoryFor(uint64_t tenants, uint64_t pool_frames,
                                      uint64_t pages) {
    return tenants * kTenantBytes + pool_frames * kPageSize +
           pages * Tenant::kIndexEntryBytes;
  }

  // `sink` must outlive the store.
  PageStore(const StoreOptions& options, EvictionSink* sink);

  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  // Stores `page` under (tenant, key); see Tenant::Put, whose `later` this
  // passes on: the result comes back now, or (nullopt) through the function
  // `later` returns, once evictions made room. INVALID_ARGUMENT for a bad
  // tenant name, a whole page that is not kPageSize bytes, or an encoded
  // page that does not decode to exactly one (it is decoded once, here,
  // before anything is stored); RESOURCE_EXHAUSTED for a new tenant when
  // max_tenants exist. The one Put path: unary Puts and stream items alike
  // come through here.
  std::optional<absl::StatusOr<PutResult>> Put(
      absl::string_view tenant, uint64_t key, const IncomingPage& page,
      const PutOptions& options, absl::FunctionRef<PutDone()> later);

  // One page of a batch: its key, and its page or why the RPC layer could
  // not make one of what came.
  struct BatchPage {
    uint64_t key;
    absl::StatusOr<IncomingPage> page;
  };
  // The batch form of Put, for items [first, count): the tenant is checked
  // and found once for all of them, and each page, item(i), goes as Put
  // would take it, in order; `stored(i, result)` gets each result that
  // comes at once. When item i must wait for room, the function later(i)
  // returns takes its result and PutMany returns false without going on:
  // the caller resumes from i + 1 once that result came. True once every
  // item has its result.
  bool PutMany(
      absl::string_view tenant, size_t first, size_t count,
      absl::FunctionRef<BatchPage(size_t)> item, const PutOptions& options,
      absl::FunctionRef<void(size_t, absl::StatusOr<PutResult>)> stored,
      absl::FunctionRef<PutDone(size_t)> later);

  // Put, waiting on this thread when the Put must wait for room. For
  // callers that may block: tests, tools.
  absl::StatusOr<PutResult> PutAndWait(absl::string_view tenant, uint64_t key,
                                       const IncomingPage& page,
                                       const PutOptions& options = {});

  // Copies the page under (tenant, key) into `out` (kPageSize bytes): as
  // stored if its encoding is in `accept`, whole otherwise; see
  // Tenant::Get. NOT_FOUND if there is none; INVALID_ARGUMENT for a bad
  // tenant name.
  absl::StatusOr<StoredPage> Get(absl::string_view tenant, uint64_t key,
                                 absl::Span<uint8_t> out,
                                 PageEncodingSet accept = {}) const;

  // The batch form of Get: the tenant checked and found once and its index
  // read under one hold of its lock (Tenant::GetMany). Reads keys[i] into
  // out(i), in order, and gives `read(i, result)` each outcome before it
  // asks for the next buffer; both run under the tenant's index lock and
  // must not call the store. INVALID_ARGUMENT for a bad tenant name, with
  // nothing read.
  absl::Status GetMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys,
      PageEncodingSet accept,
      absl::FunctionRef<absl::Span<uint8_t>(size_t)> out,
      absl::FunctionRef<void(size_t, const absl::StatusOr<StoredPage>&)> read)
      const;

  // Removes a page; returns whether there was one.
  absl::StatusOr<bool> Delete(absl::string_view tenant, uint64_t key);

  // Removes every page `tenant` held when the call began (Tenant::DeleteAll)
  // and returns how many; 0 for a tenant that does not exist.
  // INVALID_ARGUMENT for a bad tenant name.
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant);

  // Shrinks the tenant's pool by up to `pages` frames through its watchers;
  // see Reclaimer::Reclaim. `done` gets the result once, maybe before Reclaim
  // returns: INVALID_ARGUMENT for a bad tenant name, FAILED_PRECONDITION
  // when no watcher of the tenant is connected.
  void Reclaim(absl::string_view tenant, uint32_t pages,
               absl::AnyInvocable<void(absl::StatusOr<ReclaimResult>) &&> done);

  struct DrainReport {
    uint64_t drained_pages = 0;  // acked by watchers
    // A tenant that still holds pages after the drain, and why.
    struct Left {
      std::string tenant;
      uint64_t pages = 0;
      uint64_t same_filled_pages = 0;  // of `pages`
      // false: it had no watcher; true: acks did not come, or not by the
      // deadline.
      bool watched = false;
    };
    std::vector<Left> left;
  };
  // Evicts every page of every tenant with a watcher to it (for a rolling
  // restart that loses nothing), starting nothing after `deadline` and
  // waiting no longer. Tenants without one keep their pages.
  DrainReport DrainToWatchers(absl::Time deadline);

  // From now on every Put fails with UNAVAILABLE: the server is shutting
  // down (a drain must not chase new pages). Gets and Deletes go on.
  void StopWrites() { accepting_writes_.store(false); }

  // One tenant's counters, or the sum over all when `tenant` is empty. A
  // tenant that never stored a page has all zeros. share_bytes is each
  // tenant's fair share now (reclaimer.h).
  absl::StatusOr<PageStats> Stats(absl::string_view tenant) const;

  // The sum of the named tenants' counters (unknown ones add nothing).
  PageStats StatsOf(const std::vector<std::string>& tenants) const;

  // Every tenant's counters, by name, for metrics; share_bytes as in Stats.
  std::vector<std::pair<std::string, PageStats>> StatsByTenant() const;

  const StoreOptions& options() const { return options_; }

  // Puts refused because they would have created a tenant past max_tenants,
  // or past the memory limit.
  uint64_t rejected_new_tenants() const { return rejected_new_tenants_.load(); }

  // Tenants retired to make room for new ones.
  uint64_t retired_tenants() const;

 private:
  std::shared_ptr<Tenant> Find(absl::string_view tenant) const;
  // OK when `tenant` is a valid name and the store takes writes.
  absl::Status CheckWritable(absl::string_view tenant) const;
  // Counts a Put refused for its page, if the tenant exists.
  void CountInvalidPut(absl::string_view tenant) const;
  std::vector<std::shared_ptr<Tenant>> Tenants() const;
  // RESOURCE_EXHAUSTED when the tenant is new and neither max_tenants nor
  // the memory limit leaves room for it, even after retiring idle tenants
  // and counting what tenants above their share could give.
  absl::StatusOr<std::shared_ptr<Tenant>> FindOrCreate(
      absl::string_view tenant);
  // One try of it; with `may_overshoot` the limit may be passed by the
  // tenant's fixed cost. Sets `short_of_memory` when the limit refused.
  absl::StatusOr<std::shared_ptr<Tenant>> FindOrCreateOnce(
      absl::string_view tenant, bool may_overshoot, bool* short_of_memory);
  // Removes every tenant that holds no page and that no one else holds,
  // keeping its counters in retired_counters_. Returns them, to be destroyed
  // once tenants_mu_ is released.
  std::vector<std::shared_ptr<Tenant>> RetireIdleTenants()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(tenants_mu_);

  const StoreOptions options_;
  EvictionSink* const sink_;
  std::atomic<bool> accepting_writes_{true};
  MemoryBudget budget_;
  std::atomic<uint64_t> rejected_new_tenants_{0};

  // The fair share of `stats` (the counters of one tenant) among
  // `holders` tenants holding pages.
  void SetShare(PageStats& stats, size_t holders) const;

  mutable Mutex tenants_mu_;
  // The map's reference is the only one to an idle tenant: every caller
  // holds its own while it uses one.
  absl::flat_hash_map<std::string, std::shared_ptr<Tenant>> tenants_
      ABSL_GUARDED_BY(tenants_mu_);
  // The counters (StatKind::kCounter) of retired tenants, summed.
  PageStats retired_counters_ ABSL_GUARDED_BY(tenants_mu_);
  uint64_t retired_tenants_ ABSL_GUARDED_BY(tenants_mu_) = 0;

  // Destroyed first: its headroom thread lists the tenants.
  Reclaimer reclaimer_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PAGE_STORE_H_
