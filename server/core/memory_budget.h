// A byte budget: a limit that several users charge against, such as the
// server-wide limit every tenant's pool and index draw from.

#ifndef ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_
#define ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zpaged {

// Thread-safe: pools and indexes of different tenants charge it
// concurrently.
class MemoryBudget {
 public:
  static constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

  // `name` names the limit in refusals ("server memory limit").
  explicit MemoryBudget(uint64_t limit_bytes = kUnlimited,
                        std::string name = "memory limit")
      : limit_bytes_(limit_bytes), name_(std::move(name)) {}

  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Adds `bytes` to the usage, or, if that would pass the limit, leaves it
  // unchanged: RESOURCE_EXHAUSTED naming the limit.
  absl::Status Charge(uint64_t bytes) {
    uint64_t used = used_bytes_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_bytes_ || used > limit_bytes_ - bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(name_, " of ", limit_bytes_, " bytes reached"));
      }
    } while (!used_bytes_.compare_exchange_weak(used, used + bytes,
                                                std::memory_order_relaxed));
    return absl::OkStatus();
  }

  // Adds `bytes` to the usage even past the limit: for memory already in
  // use that was not charged in advance. The limit then refuses more until
  // enough is released.
  void ChargeAnyway(uint64_t bytes) {
    used_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }

  // Returns bytes previously charged.
  void Release(uint64_t bytes) {
    used_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  uint64_t used_bytes() const {
    return used_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t limit_bytes() const { return limit_bytes_; }

 private:
  const uint64_t limit_bytes_;
  const std::string name_;
  std::atomic<uint64_t> used_bytes_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_
