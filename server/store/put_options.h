// PutOptions: how one Put may behave when it finds no room, after
// leveldb's WriteOptions: every field documented, with its default.

#ifndef ZPAGED_SERVER_STORE_PUT_OPTIONS_H_
#define ZPAGED_SERVER_STORE_PUT_OPTIONS_H_

#include <cstdint>
#include <functional>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/codec/page_codec.h"

namespace zpaged {

struct PutOptions {
  // When the pool is at a limit and a watcher of the tenant is connected:
  // true, evict least recently used frames to the watchers and store the
  // page once their acks make room; false, fail at once with
  // RESOURCE_EXHAUSTED. Without a watcher a full pool always fails at once.
  bool wait_for_room = true;

  // A Put is never stored after this time: one that starts past it, or
  // waits for room past it, fails with DEADLINE_EXCEEDED and changes
  // nothing (a waiting Put starts no new round of reclaim after it; a
  // round in progress ends by its own ack deadline). The RPC layer passes
  // the call's deadline.
  absl::Time deadline = absl::InfiniteFuture();

  // True once the caller has gone (the call was cancelled): a Put then
  // stores nothing and fails with CANCELLED. Empty: never. Called from any
  // thread, before the Put and while it waits.
  std::function<bool()> cancelled;
};

struct PutResult {
  PageEncoding encoding;
  uint32_t stored_bytes;  // bytes the page takes in the pool; 0 if same-filled
};

// Receives the result of a Put that had to wait for room, once.
using PutDone = absl::AnyInvocable<void(absl::StatusOr<PutResult>) &&>;

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_PUT_OPTIONS_H_
