// WatcherChannel: how the EvictionBroker reaches one watcher, a client that
// takes its tenant's evicted pages, writes each to its own backing store and
// acks it by sequence. The RPC layer implements it with a WatchEvictions
// stream; the broker's tests with fakes.

#ifndef ZPAGED_SERVER_EVICT_WATCHER_CHANNEL_H_
#define ZPAGED_SERVER_EVICT_WATCHER_CHANNEL_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/evict/page_bytes.h"

namespace zpaged {

// One evicted page as it goes out to a watcher. Views into the broker's
// caller: valid only during Send.
struct OutgoingPage {
  absl::string_view tenant;
  uint64_t key = 0;
  uint64_t sequence = 0;  // what the watcher acks; 1, 2, ... per watcher
  PageBytes data;         // as stored: the channel expands it if it must
};

class WatcherChannel {
 public:
  virtual ~WatcherChannel() = default;

  // Queues `page` for the client (copying it) and returns at once, true; or
  // false, having queued nothing, when the channel cannot take it now (it is
  // ending, or its outbox is full). Never waits for the network.
  //
  // Both methods are called with the broker's lock held: they must not call
  // into the broker.
  virtual bool Send(const OutgoingPage& page) = 0;

  // Ends the channel with `status`. The channel's owner still calls
  // EvictionBroker::Detach when it is gone.
  virtual void Close(const absl::Status& status) = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_EVICT_WATCHER_CHANNEL_H_
