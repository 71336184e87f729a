// PageStats: the counters of one tenant, or their sum over tenants.

#ifndef ZPAGED_SERVER_STORE_PAGE_STATS_H_
#define ZPAGED_SERVER_STORE_PAGE_STATS_H_

#include <cstdint>

namespace zpaged {

struct PageStats {
  uint64_t stored_pages = 0;  // every encoding
  uint64_t pool_pages = 0;    // frames held by the pool(s)
  uint64_t same_filled_pages = 0;
  uint64_t lz4_pages = 0;
  uint64_t raw_pages = 0;
  uint64_t compressed_bytes = 0;  // LZ4 output held in the pool(s)
  uint64_t arena_mapped_bytes = 0;
  uint64_t evicted_pages = 0;          // delivered and acked, ever
  uint64_t reclaimed_pool_pages = 0;   // frames released by reclaim, ever
  uint64_t rejected_puts_limit = 0;    // refused: a memory limit
  uint64_t rejected_puts_invalid = 0;  // refused: bad request
  uint64_t tenants = 0;

  uint64_t rejected_puts() const {
    return rejected_puts_limit + rejected_puts_invalid;
  }
  // Pages in the pool per pool frame: between 1 and 2 for zbud; 0 if empty.
  double density() const {
    return pool_pages == 0 ? 0.0
                           : static_cast<double>(lz4_pages + raw_pages) /
                                 static_cast<double>(pool_pages);
  }

  PageStats& operator+=(const PageStats& other) {
    stored_pages += other.stored_pages;
    pool_pages += other.pool_pages;
    same_filled_pages += other.same_filled_pages;
    lz4_pages += other.lz4_pages;
    raw_pages += other.raw_pages;
    compressed_bytes += other.compressed_bytes;
    arena_mapped_bytes += other.arena_mapped_bytes;
    evicted_pages += other.evicted_pages;
    reclaimed_pool_pages += other.reclaimed_pool_pages;
    rejected_puts_limit += other.rejected_puts_limit;
    rejected_puts_invalid += other.rejected_puts_invalid;
    tenants += other.tenants;
    return *this;
  }
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PAGE_STATS_H_
