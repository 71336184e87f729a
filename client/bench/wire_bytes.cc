#include "client/bench/wire_bytes.h"

#include <fstream>

namespace zpaged::bench {

std::optional<uint64_t> LoopbackBytes() {
  std::ifstream counter("/sys/class/net/lo/statistics/tx_bytes");
  uint64_t bytes = 0;
  if (!(counter >> bytes)) return std::nullopt;
  return bytes;
}

}  // namespace zpaged::bench
