// PageClient: what an application asks of zpaged, pages of 4096 bytes by
// (tenant, key), whether the pages live on one server (Client,
// zpaged_client.h) or on a tier of several. The NBD bridge and zpagectl
// program against this interface only, in the project's own types: no
// generated protobuf message and no gRPC stub crosses it.
//
//   std::unique_ptr<PageClient> client = Client::Connect("127.0.0.1:50051");
//   client->Put("vm-1", 42, page);
//   absl::StatusOr<std::string> back = client->Get("vm-1", 42);
//
// Errors are absl::Status with the server's code and message: NOT_FOUND for
// a page that is not there, RESOURCE_EXHAUSTED for one there was no room
// for, INVALID_ARGUMENT for a bad tenant name or a page that is not 4096
// bytes. Implementations are thread-safe.

#ifndef ZPAGED_CLIENT_LIB_PAGE_CLIENT_H_
#define ZPAGED_CLIENT_LIB_PAGE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "contract/page_encoding.h"

namespace zpaged {

// How a stored page is kept, what it costs in the pool (0 for
// SAME_FILLED), and on how many servers it is: 1 for one server, up to the
// replicas asked for on a tier.
struct PutReply {
  PageEncoding encoding;
  uint32_t stored_bytes;
  uint32_t copies = 1;
};

// One page of PutMany: its key and its 4096 bytes, which the caller keeps
// alive for the call; or, with `encoding` set, the page already encoded that
// way (edge_codec.h: a client of several servers encodes a page once for
// all of its copies).
struct KeyedPage {
  uint64_t key;
  absl::string_view page;
  std::optional<PageEncoding> encoding = std::nullopt;
};

// What Repair did: keys checked, copies made again, copies dropped from
// servers no longer theirs, keys no server has, and keys left with fewer
// copies than asked for (too few servers answer, or none that holds one).
struct RepairResult {
  uint64_t checked = 0;
  uint64_t copied = 0;
  uint64_t dropped = 0;
  uint64_t lost = 0;
  uint64_t short_of_copies = 0;
};

// Called for each evicted page; return true once the page is safe (the
// client then acks it and the server drops its copy), false to leave it on
// the server. A refusal ends the subscription (FAILED_PRECONDITION): a
// server sends nothing more to a watcher that leaves a page unacked, so
// the caller subscribes again once it can keep pages, and the server,
// which kept the page, delivers it again.
using EvictionCallback =
    std::function<bool(uint64_t key, absl::string_view page)>;

// A subscription to a tenant's evictions, delivering to its callback until
// Stop or its end.
class EvictionWatcher {
 public:
  virtual ~EvictionWatcher() = default;  // implementations Stop()

  // Ends the subscription, as a client that drops would, and waits for the
  // callback to return. Pages delivered but not acked stay on the server.
  virtual void Stop() = 0;

  // Waits for the subscription to end and returns how it ended (OK if the
  // server closed it cleanly, CANCELLED after Stop).
  virtual absl::Status Wait() = 0;

  // Waits at most `timeout` for the subscription to end; true if it has.
  virtual bool WaitFor(absl::Duration timeout) = 0;
};

class PageClient {
 public:
  virtual ~PageClient() = default;

  // One page.
  virtual absl::StatusOr<PutReply> Put(absl::string_view tenant, uint64_t key,
                                       absl::string_view page) = 0;
  // The page's bytes; NOT_FOUND if there is none.
  virtual absl::StatusOr<std::string> Get(absl::string_view tenant,
                                          uint64_t key) = 0;
  // Whether there was a page.
  virtual absl::StatusOr<bool> Delete(absl::string_view tenant,
                                      uint64_t key) = 0;

  // Many pages in batch calls, several in flight (the implementation's
  // options say how many and how large), driven from the caller's thread.
  // Each item has its own outcome, in order; the whole call fails only when
  // nothing can be said of its items (the server refused the tenant, or
  // could not be reached), and then any of them may have been stored.
  virtual absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> PutMany(
      absl::string_view tenant, absl::Span<const KeyedPage> pages) = 0;
  // Reads page keys[i] into the 4096 bytes at outs[i]; its status is OK, or
  // NOT_FOUND (outs[i] untouched), or the item's error.
  virtual absl::StatusOr<std::vector<absl::Status>> GetMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys,
      absl::Span<uint8_t* const> outs) = 0;
  // Deletes `keys`, idempotently: whether each had a page.
  virtual absl::StatusOr<std::vector<bool>> DeleteMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys) = 0;
  // Deletes every page of `tenant`; how many there were.
  virtual absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant) = 0;

  // Subscribes to `tenant`'s evictions and returns once they will reach
  // `on_page`, or the reason they cannot. `on_page` may run on a thread of
  // the watcher's, one page at a time.
  virtual absl::StatusOr<std::unique_ptr<EvictionWatcher>> Watch(
      absl::string_view tenant, EvictionCallback on_page) = 0;

  // Brings each of `keys` back to the copies it should have after servers
  // were lost or came back: on a tier, one on each of the first `replicas`
  // reachable servers of its rank, copied from a surviving copy. Nothing to
  // do on one server. A key being written or deleted meanwhile may be copied
  // as it was; the caller excludes such keys (the bridge holds their write
  // locks) or deletes what it no longer needs.
  virtual absl::StatusOr<RepairResult> Repair(
      absl::string_view tenant, absl::Span<const uint64_t> keys) = 0;

  // True when every server behind the client is serving, false when one
  // answers that it is not (it is shutting down); an error when one cannot
  // be asked.
  virtual absl::StatusOr<bool> Serving() = 0;
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_LIB_PAGE_CLIENT_H_
