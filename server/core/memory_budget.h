// A byte budget shared by several arenas: the server-wide memory limit that
// every tenant's pool draws from.

#ifndef ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_
#define ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <limits>

namespace zpaged {

// Thread-safe: arenas of different pools charge it concurrently.
class MemoryBudget {
 public:
  static constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

  explicit MemoryBudget(uint64_t limit_bytes = kUnlimited)
      : limit_bytes_(limit_bytes) {}

  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Adds `bytes` to the usage and returns true if the result stays within the
  // limit; otherwise leaves the usage unchanged and returns false.
  bool TryCharge(uint64_t bytes) {
    uint64_t used = used_bytes_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_bytes_ || used > limit_bytes_ - bytes) return false;
    } while (!used_bytes_.compare_exchange_weak(used, used + bytes,
                                                std::memory_order_relaxed));
    return true;
  }

  // Returns bytes previously charged with TryCharge.
  void Release(uint64_t bytes) {
    used_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  uint64_t used_bytes() const {
    return used_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t limit_bytes() const { return limit_bytes_; }

 private:
  const uint64_t limit_bytes_;
  std::atomic<uint64_t> used_bytes_{0};
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_MEMORY_BUDGET_H_
