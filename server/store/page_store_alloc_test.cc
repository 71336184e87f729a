// The store's Put and Get allocate nothing per page once a tenant is warm:
// the page's bytes go from the caller's buffer through a thread-local
// compression buffer into the pool and back. (gRPC's own buffers are not
// the store's to count.) Allocations are counted by
// tests/testing/allocation_counter.

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "contract/page.h"
#include "gtest/gtest.h"
#include "server/evict/eviction_sink.h"
#include "server/store/page_store.h"
#include "tests/testing/allocation_counter.h"

namespace zpaged {
namespace {

// Text that LZ4 compresses to about a third: the common pool case.
std::array<uint8_t, kPageSize> TextPage(uint64_t seed) {
  std::array<uint8_t, kPageSize> page;
  const std::string text = "page " + std::to_string(seed) +
                           " of a guest's heap, " +
                           std::to_string(seed * 2654435761u) + "; ";
  for (size_t i = 0; i < kPageSize; ++i) page[i] = text[i % text.size()];
  return page;
}

TEST(PageStoreAllocationTest, WarmPutAndGetDoNotAllocatePerPage) {
  NoWatcherSink sink;
  PageStore store(StoreOptions{}, &sink);
  constexpr uint64_t kKeys = 4096;
  // Made before counting: the pages are the test's, not the store's.
  std::vector<std::array<uint8_t, kPageSize>> pages;
  for (uint64_t i = 0; i < 64; ++i) pages.push_back(TextPage(i * 7919));
  std::array<uint8_t, kPageSize> out;
  // Overwrites and reads of every key, with pages of varied sizes.
  auto put_and_get_every_key = [&](uint64_t pass) {
    for (uint64_t key = 0; key < kKeys; ++key) {
      const auto& page = pages[(key + pass) % pages.size()];
      ASSERT_TRUE(
          store.PutAndWait("vm", key, page, PutOptions{.wait_for_room = false})
              .ok());
      ASSERT_TRUE(store.Get("vm", key, absl::MakeSpan(out)).ok());
    }
  };
  // Warm: the tenant, its index at full size, the arena's frames and free
  // lists at their working sizes.
  for (uint64_t pass = 0; pass < 4; ++pass) put_and_get_every_key(pass);

  const uint64_t before = HeapAllocationCount();
  for (uint64_t pass = 4; pass < 8; ++pass) put_and_get_every_key(pass);
  const uint64_t allocated = HeapAllocationCount() - before;
  EXPECT_EQ(allocated, 0u) << allocated << " allocations in " << 4 * kKeys
                           << " Puts and as many Gets";
}

}  // namespace
}  // namespace zpaged
