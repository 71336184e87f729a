// Fuzzes the pool drivers with operation sequences: the first input byte
// picks the driver, then every 3 bytes are one operation (allocate, allocate
// a whole frame, free, free a stale handle, shrink, check, and map one
// allocation across the next operation), checked against a model of the
// live allocations, each filled with a pattern derived from its handle.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <vector>

#include "server/core/testing/zpool_shrink.h"
#include "server/core/zpool.h"

namespace {

using zpaged::ZpoolHandle;

struct Live {
  ZpoolHandle handle;
  size_t size;
};

uint8_t PatternByte(ZpoolHandle handle, size_t i) {
  return static_cast<uint8_t>((handle * 0x9E3779B97F4A7C15ull >> 56) + i);
}

void Fill(zpaged::Zpool& pool, const Live& live) {
  auto m = pool.Map(live.handle);
  if (!m.ok() || m->capacity < live.size) std::abort();
  for (size_t i = 0; i < live.size; ++i)
    m->data[i] = PatternByte(live.handle, i);
  pool.Unmap(live.handle);
}

void Check(zpaged::Zpool& pool, const Live& live) {
  auto m = pool.Map(live.handle);
  if (!m.ok()) std::abort();
  for (size_t i = 0; i < live.size; ++i) {
    if (m->data[i] != PatternByte(live.handle, i)) std::abort();
  }
  pool.Unmap(live.handle);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<Live> live;
  std::vector<ZpoolHandle> freed;
  bool refuse = false;
  if (size == 0) return 0;
  const absl::string_view driver =
      zpaged::kZpoolDrivers[data[0] % std::size(zpaged::kZpoolDrivers)];
  zpaged::ZpoolOptions options;
  options.arena.max_bytes = 64 * zpaged::kPageSize;
  // A small region: mapping 64 MiB per input would dominate the run.
  options.arena.region_bytes = 64 * zpaged::kPageSize;
  std::unique_ptr<zpaged::Zpool> owned =
      *zpaged::CreateZpool(driver, std::move(options));
  zpaged::Zpool& pool = *owned;
  const size_t max_allocation = pool.MaxAllocationSize();
  // An allocation held mapped across one operation: frees and moves in its
  // frame must leave its bytes where they are.
  std::optional<Live> mapped;
  const uint8_t* mapped_at = nullptr;
  auto evict = [&](ZpoolHandle h) -> absl::Status {
    if (refuse || (mapped.has_value() && mapped->handle == h)) {
      return absl::UnavailableError("refused");
    }
    for (size_t i = 0; i < live.size(); ++i) {
      if (live[i].handle == h) {
        Check(pool, live[i]);
        live[i] = live.back();
        live.pop_back();
        freed.push_back(h);
        return pool.Free(h);
      }
    }
    return absl::NotFoundError("not live");
  };

  auto unmap = [&] {
    for (size_t i = 0; i < mapped->size; ++i) {
      if (mapped_at[i] != PatternByte(mapped->handle, i)) std::abort();
    }
    pool.Unmap(mapped->handle);
    mapped.reset();
  };
  for (size_t at = 1; at + 3 <= size; at += 3) {
    const uint8_t op = data[at] % 7;
    const uint16_t arg =
        static_cast<uint16_t>(data[at + 1] | data[at + 2] << 8);
    switch (op) {
      case 0: {  // allocate arg bytes (0 and too-big sizes included)
        auto h = pool.Allocate(arg);
        if (arg == 0 || arg > max_allocation) {
          if (h.ok()) std::abort();
          break;
        }
        if (h.ok()) {
          live.push_back({*h, arg});
          Fill(pool, live.back());
        } else if (!absl::IsResourceExhausted(h.status())) {
          std::abort();
        }
        break;
      }
      case 1: {  // a whole frame
        auto h = pool.AllocateWholeFrame();
        if (h.ok()) {
          live.push_back({*h, zpaged::kPageSize});
          Fill(pool, live.back());
        }
        break;
      }
      case 2:  // free a live allocation
        if (!live.empty()) {
          const size_t i = arg % live.size();
          if (mapped.has_value() && mapped->handle == live[i].handle) break;
          Check(pool, live[i]);
          if (!pool.Free(live[i].handle).ok()) std::abort();
          freed.push_back(live[i].handle);
          live[i] = live.back();
          live.pop_back();
        }
        break;
      case 3: {  // a stale or garbage handle must be refused
        const ZpoolHandle h = freed.empty() ? ZpoolHandle{arg} * 0x10001
                                            : freed[arg % freed.size()];
        bool is_live = false;
        for (const Live& l : live) is_live |= l.handle == h;
        if (!is_live && pool.Free(h).ok()) std::abort();
        break;
      }
      case 4:  // shrink, sometimes with a refusing callback
        refuse = arg & 1;
        zpaged::Shrink(pool, arg % 5 + 1, evict);
        break;
      case 5:  // everything still holds its pattern
        for (const Live& l : live) Check(pool, l);
        break;
      case 6:  // map one allocation until the next operation is done
        if (!live.empty() && !mapped.has_value()) {
          mapped = live[arg % live.size()];
          auto m = pool.Map(mapped->handle);
          if (!m.ok()) std::abort();
          mapped_at = m->data;
        }
        break;
    }
    if (mapped.has_value() && op != 6) unmap();
    const zpaged::ZpoolStats stats = pool.Stats();
    if (stats.allocations != live.size()) std::abort();
    if (stats.pool_frames > stats.allocations) std::abort();  // density >= 1
  }
  if (mapped.has_value()) unmap();
  if (!pool.CheckConsistency().ok()) std::abort();
  for (const Live& l : live) Check(pool, l);
  return 0;
}
