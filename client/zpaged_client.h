// zpaged::Client: the C++ client of zpaged.v1.PageStore.
//
//   auto client = zpaged::Client::Connect("127.0.0.1:50051");
//   client->Put("vm-1", 42, page);                  // page: 4096 bytes
//   absl::StatusOr<std::string> back = client->Get("vm-1", 42);
//
//   // Take evicted pages and keep them safe; return true to ack.
//   auto watcher = client->Watch("vm-1", [](uint64_t key, absl::string_view p)
//   {
//     return WriteToSwap(key, p);
//   });
//
// Errors come back as absl::Status with the server's gRPC code and message.
// Thread-safe: one Client may serve many threads.

#ifndef ZPAGED_CLIENT_ZPAGED_CLIENT_H_
#define ZPAGED_CLIENT_ZPAGED_CLIENT_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "zpaged/v1/page_store.grpc.pb.h"

namespace zpaged {

struct ClientOptions {
  // Deadline of each unary call. Reclaim waits for evictions, so give it at
  // least a few ack deadlines.
  absl::Duration timeout = absl::Seconds(30);
  // Sent as "authorization: Bearer TOKEN" on every call when not empty.
  std::string token;
  // TLS, when tls_root_certs is not empty: the PEM CA bundle that the
  // server's certificate must chain to, and for mutual TLS the client's own
  // PEM certificate chain and key.
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
};

// Called for each evicted page; return true once the page is safe (the
// client then acks it and the server drops its copy), false to leave it on
// the server.
using EvictionCallback =
    std::function<bool(uint64_t key, absl::string_view page)>;

// One WatchEvictions stream, run on its own thread until Stop or the end of
// the stream.
class EvictionWatcher {
 public:
  ~EvictionWatcher();  // Stop()s
  EvictionWatcher(const EvictionWatcher&) = delete;
  EvictionWatcher& operator=(const EvictionWatcher&) = delete;

  // Cancels the stream, as a client that drops would, and waits for the
  // thread. Pages delivered but not acked stay on the server.
  void Stop();

  // Waits for the stream to end and returns how it ended (OK if the server
  // closed it cleanly, CANCELLED after Stop).
  absl::Status Wait();

  // Waits at most `timeout` for the stream to end; true if it has.
  bool WaitFor(absl::Duration timeout);

 private:
  friend class Client;
  EvictionWatcher() = default;
  void SetEnded(absl::Status status);

  std::unique_ptr<grpc::ClientContext> context_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable ended_changed_;
  bool ended_ = false;         // guarded by mu_
  absl::Status final_status_;  // guarded by mu_
};

struct PutReply {
  v1::Encoding encoding;
  uint32_t stored_bytes;
};

class Client {
 public:
  // Connects (lazily, as gRPC does) to `target`, e.g. "127.0.0.1:50051".
  static std::unique_ptr<Client> Connect(const std::string& target,
                                         const ClientOptions& options = {});
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);

  absl::StatusOr<PutReply> Put(absl::string_view tenant, uint64_t key,
                               absl::string_view page);
  // The page's bytes; NOT_FOUND if there is none.
  absl::StatusOr<std::string> Get(absl::string_view tenant, uint64_t key);
  // Whether there was a page.
  absl::StatusOr<bool> Delete(absl::string_view tenant, uint64_t key);
  absl::StatusOr<v1::ReclaimResponse> Reclaim(absl::string_view tenant,
                                              uint32_t pages);
  // One tenant's counters; totals over all tenants for an empty name.
  absl::StatusOr<v1::StatsResponse> Stats(absl::string_view tenant);

  // Stores `pages` (keys.size() pages of 4096 bytes, back to back) under
  // `keys` in one PutBatch call (1 to 256 keys). The call's error (a bad
  // batch, a tenant the token may not use), or one result per key, in order.
  absl::StatusOr<v1::PutBatchResponse> PutBatch(absl::string_view tenant,
                                                absl::Span<const uint64_t> keys,
                                                absl::string_view pages);
  // Fetches `keys` in one GetBatch call: a code per key and the pages back to
  // back (zeros where the code is not OK).
  absl::StatusOr<v1::GetBatchResponse> GetBatch(
      absl::string_view tenant, absl::Span<const uint64_t> keys);
  // Deletes `keys` in one DeleteBatch call: whether each had a page.
  absl::StatusOr<v1::DeleteBatchResponse> DeleteBatch(
      absl::string_view tenant, absl::Span<const uint64_t> keys);
  // Deletes every page of `tenant`; how many there were.
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant);

  // Puts (key, page) pairs in PutBatch calls of `batch_pages` (1 to 256)
  // pages, keeping up to `max_in_flight` (1 to 64) calls unanswered, all
  // driven from this thread: no thread wakeup per page or per call. Returns
  // one response per page, in order, each with its own code; an error only
  // if a whole call fails.
  absl::StatusOr<std::vector<v1::PutStreamResponse>> PutMany(
      absl::string_view tenant,
      const std::vector<std::pair<uint64_t, std::string>>& pages,
      int max_in_flight = 4, int batch_pages = 16);
  // Gets `keys` in GetBatch calls, as PutMany.
  absl::StatusOr<std::vector<v1::GetStreamResponse>> GetMany(
      absl::string_view tenant, const std::vector<uint64_t>& keys,
      int max_in_flight = 4, int batch_pages = 16);

  // The server's grpc.health.v1 status: true when SERVING, false when it
  // answers anything else (NOT_SERVING once shutdown has begun); an error
  // status when it cannot be asked.
  absl::StatusOr<bool> Serving();

  // Subscribes to `tenant`'s evictions and returns once the server has the
  // watcher ready, or the reason it refused. `on_page` runs on the watcher's
  // thread, one page at a time.
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> Watch(
      absl::string_view tenant, EvictionCallback on_page);

  v1::PageStore::Stub& stub() { return *stub_; }
  // A context carrying the token; with the call deadline unless `streaming`.
  // For callers that drive calls on stub() themselves.
  std::unique_ptr<grpc::ClientContext> NewContext(bool streaming = false) const;

 private:
  // One unary call of `method` with the options' deadline and token.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      grpc::Status (v1::PageStore::Stub::*method)(grpc::ClientContext*,
                                                  const Request&, Response*),
      const Request& request);

  // Issues batch calls for `count` items, `batch_pages` items a call and up
  // to `max_in_flight` calls at once, on one completion queue polled by
  // this thread. `make_request(first, n)` builds the call for items
  // [first, first + n); `take(first, n, response)` consumes its answer.
  // The first failed call's status, once every call is answered.
  template <typename Request, typename Response>
  absl::Status RunBatches(
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (
          v1::PageStore::Stub::*prepare)(grpc::ClientContext*, const Request&,
                                         grpc::CompletionQueue*),
      size_t count, int batch_pages, int max_in_flight,
      absl::FunctionRef<Request(size_t first, size_t n)> make_request,
      absl::FunctionRef<void(size_t first, size_t n, const Response&)> take);

  const ClientOptions options_;
  std::unique_ptr<v1::PageStore::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_ZPAGED_CLIENT_H_
