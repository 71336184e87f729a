// PageRecord and RawKeys: how a page sits in its pool allocation, after
// leveldb's table/format.h: named sizes, one encoder, one decoder.
//
//   compressed page   | key: 8 bytes, host order | compressed bytes ...   |
//                     0                          8              stored_bytes+8
//   RAW page          | the page itself: a whole 4096-byte frame           |
//
// The key prefix lets reclaim name the page it evicts from its handle alone,
// as zswap prefixes its entries. A RAW page fills its frame and leaves no
// room for one, so RAW pages' keys are kept beside the pool, in RawKeys.

#ifndef ZPAGED_SERVER_STORE_PAGE_RECORD_H_
#define ZPAGED_SERVER_STORE_PAGE_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "server/core/zpool.h"

namespace zpaged {

struct PageRecord {
  static constexpr size_t kKeyBytes = sizeof(uint64_t);

  // The allocation a compressed payload of `payload_bytes` needs.
  static constexpr size_t AllocationSize(size_t payload_bytes) {
    return kKeyBytes + payload_bytes;
  }
  // The largest payload that fits an allocation of `max_allocation` bytes.
  static constexpr size_t MaxPayload(size_t max_allocation) {
    return max_allocation - kKeyBytes;
  }

  // Writes the record to `dst`, which must hold AllocationSize(payload).
  static void EncodeTo(uint64_t key, absl::Span<const uint8_t> payload,
                       uint8_t* dst) {
    std::memcpy(dst, &key, kKeyBytes);
    std::memcpy(dst + kKeyBytes, payload.data(), payload.size());
  }
  static uint64_t DecodeKey(const uint8_t* src) {
    uint64_t key;
    std::memcpy(&key, src, kKeyBytes);
    return key;
  }
  static absl::Span<const uint8_t> DecodePayload(const uint8_t* src,
                                                 size_t payload_bytes) {
    return absl::MakeConstSpan(src + kKeyBytes, payload_bytes);
  }
};

// The keys of RAW pages, by their whole-frame handle. Not thread-safe: the
// tenant guards it with its index lock.
class RawKeys {
 public:
  void Insert(ZpoolHandle handle, uint64_t key) { keys_[handle] = key; }
  void Erase(ZpoolHandle handle) { keys_.erase(handle); }
  std::optional<uint64_t> Find(ZpoolHandle handle) const {
    auto it = keys_.find(handle);
    if (it == keys_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::flat_hash_map<ZpoolHandle, uint64_t> keys_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PAGE_RECORD_H_
