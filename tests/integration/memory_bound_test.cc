// --max_memory_bytes bounds what zpaged holds in RAM (issue 11 #7), checked
// on the real binary by its resident size (/proc/PID/status VmRSS), under
// the three loads that used to get past it:
//   - a flood of same-filled pages, which take no pool memory (3M zero
//     pages were accepted under a 4M limit);
//   - many tenants with one page each (279 MiB for 1,024);
//   - many tenants churning pages in and out (1,161 MiB).
// The bound is the limit plus a documented overhead: --grpc_memory_bytes
// for gRPC's buffers and kBaseOverhead for everything else a running
// process holds (allocator slack, gRPC's threads, the client's
// connection), measured from the resident size at start.
//
// ZPAGED_BINARY names the zpaged binary (ctest sets it).

#include <sys/types.h>

#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/lib/zpaged_client.h"
#include "contract/page.h"
#include "gtest/gtest.h"
#include "tests/testing/zpaged_process.h"

namespace zpaged {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kLimit = 64 * kMiB;
constexpr uint64_t kGrpcMemory = 16 * kMiB;
constexpr uint64_t kBaseOverhead = 32 * kMiB;

uint64_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string word;
  while (status >> word) {
    if (word == "VmRSS:") {
      uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

class MemoryBoundTest : public ::testing::Test {
 protected:
  // Starts zpaged with the limit and the given extra flags; waits until it
  // serves.
  void Start(std::vector<std::string> flags) {
    flags.push_back(absl::StrCat("--max_memory_bytes=", kLimit));
    flags.push_back(absl::StrCat("--grpc_memory_bytes=", kGrpcMemory));
    absl::StatusOr<std::unique_ptr<ZpagedProcess>> server =
        ZpagedProcess::Start(flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = Client::Connect(server_->address());
    // Warm the connection and one call path before the baseline.
    ASSERT_TRUE(client_->Put("warm-up", 1, std::string(kPageSize, 'w')).ok());
    ASSERT_TRUE(*client_->Delete("warm-up", 1));
    baseline_ = ResidentBytes(server_->pid());
  }

  // Puts `count` copies of `page` under keys from 1 in PutBatch calls;
  // returns how many were stored (the rest were refused at the limit).
  uint64_t PutBatches(const std::string& tenant, const std::string& page,
                      uint64_t count) {
    constexpr int kBatch = 256;
    std::string pages;
    for (int i = 0; i < kBatch; ++i) pages += page;
    uint64_t stored = 0;
    for (uint64_t first = 1; first <= count; first += kBatch) {
      std::vector<uint64_t> keys;
      for (uint64_t k = first; k < first + kBatch && k <= count; ++k) {
        keys.push_back(k);
      }
      absl::StatusOr<v1::PutBatchResponse> r = client_->PutBatch(
          tenant, keys,
          absl::string_view(pages).substr(0, keys.size() * kPageSize));
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) return stored;
      bool refused = false;
      for (const v1::PutItemResult& item : r->results()) {
        if (item.code() == 0) {
          ++stored;
        } else {
          EXPECT_EQ(item.code(), 8) << item.message();  // RESOURCE_EXHAUSTED
          refused = true;
        }
      }
      if (refused) break;
    }
    return stored;
  }

  void ExpectWithinTheBound(const std::string& what) {
    const uint64_t grown = ResidentBytes(server_->pid()) - baseline_;
    std::printf("%s: resident memory grew %.1f MiB (limit %.0f MiB)\n",
                what.c_str(), grown / double(kMiB), kLimit / double(kMiB));
    EXPECT_LE(grown, kLimit + kGrpcMemory + kBaseOverhead) << what;
  }

  std::unique_ptr<ZpagedProcess> server_;
  std::unique_ptr<Client> client_;
  uint64_t baseline_ = 0;
};

TEST_F(MemoryBoundTest, SameFilledPagesStopAtTheLimit) {
  Start({});
  const uint64_t stored =
      PutBatches("zeros", std::string(kPageSize, '\0'), 3'000'000);
  std::printf("zero pages stored under a %llu MiB limit: %llu\n",
              static_cast<unsigned long long>(kLimit / kMiB),
              static_cast<unsigned long long>(stored));
  EXPECT_LT(stored, 3'000'000u) << "the limit never refused a page";
  ExpectWithinTheBound("3M zero pages offered");
}

TEST_F(MemoryBoundTest, ManyTenantsWithOnePageEach) {
  Start({"--max_tenants=1024"});
  std::mt19937_64 rng(7);
  int refused = 0;
  for (int t = 0; t < 1024; ++t) {
    std::string page(kPageSize, '\0');
    for (char& c : page) c = static_cast<char>(rng());
    if (!client_->Put(absl::StrCat("tenant-", t), 1, page).ok()) ++refused;
  }
  std::printf("tenants refused at the limit: %d of 1024\n", refused);
  ExpectWithinTheBound("1,024 tenants with one page each");
}

TEST_F(MemoryBoundTest, ChurningTenantsStayWithinTheLimit) {
  Start({"--max_tenants=1024", "--tenant_max_bytes=524288"});
  std::mt19937_64 rng(9);
  std::string random_pages;
  for (size_t i = 0; i < 256 * kPageSize; ++i) {
    random_pages += static_cast<char>(rng());
  }
  for (int round = 0; round < 3; ++round) {
    for (int t = 0; t < 256; ++t) {
      const std::string tenant = absl::StrCat("churn-", round, "-", t);
      // More than the 0.5 MiB pool holds: the rest is refused.
      std::vector<uint64_t> keys;
      for (uint64_t k = 1; k <= 160; ++k) keys.push_back(k);
      ASSERT_TRUE(client_
                      ->PutBatch(tenant, keys,
                                 absl::string_view(random_pages)
                                     .substr(0, keys.size() * kPageSize))
                      .ok());
      for (uint64_t k = 1; k <= 160; ++k) {
        ASSERT_TRUE(client_->Delete(tenant, k).ok());
      }
    }
  }
  ExpectWithinTheBound("3 rounds of 256 tenants filling and emptying");
}

}  // namespace
}  // namespace zpaged
