// A byte budget: a limit that several users charge against, such as the
// server-wide limit every tenant's pool and index draw from. A budget may
// have a parent that is charged with it (a tenant's limit inside the
// server's), so one charge checks both.

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

  // `name` names the limit in refusals ("server memory limit"). `parent`,
  // if not null, is charged with every charge here and must outlive this.
  explicit MemoryBudget(uint64_t limit_bytes = kUnlimited,
                        std::string name = "memory limit",
                        MemoryBudget* parent = nullptr)
      : limit_bytes_(limit_bytes), name_(std::move(name)), parent_(parent) {}

  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Adds `bytes` to the usage here and in every parent, or, if that would
  // pass a limit, to none: RESOURCE_EXHAUSTED naming that limit.
  absl::Status Charge(uint64_t bytes) {
    uint64_t used = used_bytes_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_bytes_ || used > limit_bytes_ - bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(name_, " of ", limit_bytes_, " bytes reached"));
      }
    } while (!used_bytes_.compare_exchange_weak(used, used + bytes,
                                                std::memory_order_relaxed));
    if (parent_ != nullptr) {
      if (absl::Status charged = parent_->Charge(bytes); !charged.ok()) {
        used_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
        return charged;
      }
    }
    return absl::OkStatus();
  }

  // Returns bytes previously charged, here and in every parent.
  void Release(uint64_t bytes) {
    used_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    if (parent_ != nullptr) parent_->Release(bytes);
  }

  uint64_t used_bytes() const {
    return used_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t limit_bytes() const { return limit_bytes_; }

 private:
  const uint64_t limit_bytes_;
  const std::string name_;
  MemoryBudget* const parent_;
  std::atomic<uint64_t> used_bytes_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_
