// Counts heap allocations made through operator new, process-wide, for the
// tests that promise a path allocates nothing per page. Linking
// allocation_counter.cc replaces the global operator new and delete.

#ifndef ZPAGED_TESTS_TESTING_ALLOCATION_COUNTER_H_
#define ZPAGED_TESTS_TESTING_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace zpaged {

// Allocations through operator new since the process started.
uint64_t HeapAllocationCount();

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_ALLOCATION_COUNTER_H_
