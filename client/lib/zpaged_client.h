// zpaged::Client: the PageClient (page_client.h) of one zpaged server, and
// that server's own calls beside it: the batch RPCs as the wire has them,
// Stats and Reclaim.
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

#ifndef ZPAGED_CLIENT_LIB_ZPAGED_CLIENT_H_
#define ZPAGED_CLIENT_LIB_ZPAGED_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/lib/edge_codec.h"
#include "client/lib/page_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "zpaged/v1/page_store.grpc.pb.h"

namespace zpaged {

struct ClientOptions {
  // Deadline of each unary call. Reclaim waits for evictions, so give it at
  // least a few ack deadlines.
  absl::Duration timeout = absl::Seconds(30);
  // Deadline of the calls that only read (Get, GetMany, GetBatch, Serving)
  // and of a watcher's subscription, which never wait for evictions: a
  // shorter one lets a client of several servers pass a hung server by
  // sooner. Zero: `timeout`.
  absl::Duration read_timeout = absl::ZeroDuration();
  // Longest wait between attempts to connect again to a server that went
  // away (gRPC's own default grows to two minutes). gRPC adds up to 20%
  // of jitter: 800 ms keeps a client back within a second of its server.
  absl::Duration max_reconnect_backoff = absl::Milliseconds(800);
  // Sent as "authorization: Bearer TOKEN" on every call when not empty.
  std::string token;
  // TLS, when tls_root_certs is not empty: the PEM CA bundle that the
  // server's certificate must chain to, and for mutual TLS the client's own
  // PEM certificate chain and key.
  std::string tls_root_certs;
  std::string tls_cert_chain;
  std::string tls_private_key;
  // PutMany, GetMany and DeleteMany: pages (keys) per batch call, 1 to 256,
  // and calls kept in flight at once, 1 to 64.
  int pages_per_call = 16;
  int calls_in_flight = 4;
  // Compression at the edge (edge_codec.h): pages are encoded on the
  // caller's thread before they are sent and decoded after they come back,
  // and the server keeps the client's bytes. kNone sends whole pages for
  // the server to compress, as clients before it did.
  EdgeCompression compression;
  // Watch claims the tenant: the subscription is refused while the tenant
  // has another watcher, and while it stays any other is
  // (FAILED_PRECONDITION). The NBD bridge's, so that a tenant has one
  // writer.
  bool exclusive_watch = false;
};

class Client final : public PageClient {
 public:
  // Connects (lazily, as gRPC does) to `target`, e.g. "127.0.0.1:50051".
  static std::unique_ptr<Client> Connect(const std::string& target,
                                         const ClientOptions& options = {});
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);

  // PageClient.
  absl::StatusOr<PutReply> Put(absl::string_view tenant, uint64_t key,
                               absl::string_view page) override;
  absl::StatusOr<std::string> Get(absl::string_view tenant,
                                  uint64_t key) override;
  absl::StatusOr<bool> Delete(absl::string_view tenant, uint64_t key) override;
  absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> PutMany(
      absl::string_view tenant, absl::Span<const KeyedPage> pages) override;
  absl::StatusOr<std::vector<absl::Status>> GetMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys,
      absl::Span<uint8_t* const> outs) override;
  absl::StatusOr<std::vector<bool>> DeleteMany(
      absl::string_view tenant, absl::Span<const uint64_t> keys) override;
  absl::StatusOr<uint64_t> DeleteAll(absl::string_view tenant) override;
  // One server holds one copy: nothing to bring back.
  absl::StatusOr<RepairResult> Repair(
      absl::string_view, absl::Span<const uint64_t> keys) override {
    return RepairResult{.checked = keys.size()};
  }
  // `on_page` runs on the watcher's own thread.
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> Watch(
      absl::string_view tenant, EvictionCallback on_page) override;
  // The server's grpc.health.v1 status: true when SERVING, false when it
  // answers anything else (NOT_SERVING once shutdown has begun).
  absl::StatusOr<bool> Serving() override;

  // This server's own calls.
  absl::StatusOr<v1::ReclaimResponse> Reclaim(absl::string_view tenant,
                                              uint32_t pages);
  // One tenant's counters; totals over all tenants for an empty name. Every
  // answer names the server (node_name) and its max_memory_bytes.
  absl::StatusOr<v1::StatsResponse> Stats(absl::string_view tenant);

  // One batch RPC each, as the wire has them (1 to 256 keys): for callers
  // that test or measure the protocol itself.
  // Stores `pages` (keys.size() pages of 4096 bytes, back to back) under
  // `keys` in one PutBatch call. The call's error (a bad batch, a tenant the
  // token may not use), or one result per key, in order.
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
      const Request& request, absl::Duration timeout);
  // A context carrying the token and a deadline `timeout` from now.
  std::unique_ptr<grpc::ClientContext> ContextWithin(
      absl::Duration timeout) const;
  absl::Duration ReadTimeout() const {
    return options_.read_timeout > absl::ZeroDuration() ? options_.read_timeout
                                                        : options_.timeout;
  }

  // Issues batch calls for `count` items, options_.pages_per_call items a
  // call and up to options_.calls_in_flight calls at once, on one
  // completion queue polled by this thread. `make_request(first, n)` builds the
  // call for items [first, first + n); `take(first, n, response)` consumes its
  // answer. The first failed call's status, once every call is answered.
  template <typename Request, typename Response>
  absl::Status RunBatches(
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (
          v1::PageStore::Stub::*prepare)(grpc::ClientContext*, const Request&,
                                         grpc::CompletionQueue*),
      size_t count, absl::Duration timeout,
      absl::FunctionRef<Request(size_t first, size_t n)> make_request,
      absl::FunctionRef<void(size_t first, size_t n, const Response&)> take);

  const ClientOptions options_;
  std::unique_ptr<v1::PageStore::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace zpaged

#endif  // ZPAGED_CLIENT_LIB_ZPAGED_CLIENT_H_
