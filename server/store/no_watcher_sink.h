// NoWatcherSink: the EvictionSink of a store that nobody watches. Every
// delivery is refused, so reclaim frees nothing and a full pool refuses
// Puts. Tests and benchmarks of the store use it where evictions are beside
// the point.

#ifndef ZPAGED_SERVER_STORE_NO_WATCHER_SINK_H_
#define ZPAGED_SERVER_STORE_NO_WATCHER_SINK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/store/eviction_sink.h"

namespace zpaged {

class NoWatcherSink final : public EvictionSink {
 public:
  bool CanAccept(absl::string_view) override { return false; }
  absl::Status Deliver(absl::string_view tenant, uint64_t,
                       absl::Span<const uint8_t>) override {
    return absl::UnavailableError(
        absl::StrCat("tenant '", tenant, "' has no eviction watcher"));
  }
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_NO_WATCHER_SINK_H_
