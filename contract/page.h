// The unit zpaged stores: one 4 KiB page of a client's memory.

#ifndef ZPAGED_CONTRACT_PAGE_H_
#define ZPAGED_CONTRACT_PAGE_H_

#include <cstddef>

namespace zpaged {

// Size of a client page and of an arena frame. Clients on 4 KiB-page
// architectures are the target; the whole storage core is built around it.
inline constexpr std::size_t kPageSize = 4096;
inline constexpr int kPageShift = 12;
static_assert(std::size_t{1} << kPageShift == kPageSize);

// Pages one PutBatch or GetBatch carries at most: 1 MiB of pages, enough to
// amortize a call's cost and small enough to bound what one request holds.
inline constexpr int kMaxBatchPages = 256;

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_PAGE_H_
