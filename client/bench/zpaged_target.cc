#include "client/bench/zpaged_target.h"

#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/bench/in_flight_window.h"
#include "client/bench/process_sample.h"
#include "client/lib/zpaged_client.h"
#include "contract/grpc_status.h"
#include "contract/metadata.h"
#include "contract/page.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "zpaged/v1/page_store.pb.h"

namespace zpaged::bench {
namespace {

// A call's outcome as ChannelLoad::Done takes it: empty when OK.
std::string ErrorOf(const grpc::Status& status) {
  return status.ok() ? std::string() : FromGrpcStatus(status).ToString();
}

// A stream item's outcome (its code and message), likewise.
template <typename StreamResponse>
std::string ItemErrorOf(const StreamResponse& response) {
  if (response.code() == 0) return std::string();
  return absl::Status(static_cast<absl::StatusCode>(response.code()),
                      response.message())
      .ToString();
}

// Keeps up to `depth` items in flight on one bidi stream: `fill(key)` makes
// the request for a key, `answer(key, sent, response)` records its response.
// Responses come in request order, so the oldest item in flight is the one
// answered.
template <typename Request, typename Response, typename Fill, typename Answer>
absl::Status PumpStream(grpc::ClientReaderWriter<Request, Response>& stream,
                        int depth, ChannelLoad& load, Fill fill,
                        Answer answer) {
  InFlightWindow window(depth);
  const size_t refill_at = depth / 2;
  bool sending = true;
  Response response;
  while (sending || !window.empty()) {
    // Refill the window in bursts once half of it is answered: a burst is
    // buffered and goes out in one write, where one item at a time would
    // cost a system call (and a server wakeup) per item.
    if (sending && window.size() <= refill_at) {
      uint64_t key;
      bool sent = true;
      while (sent && !window.full()) {
        if (!load.NextKey(&key)) {
          sending = false;
          break;
        }
        window.Push(key);
        grpc::WriteOptions options;
        if (!window.full()) options.set_buffer_hint();
        sent = stream.Write(fill(key), options);
      }
      if (!sent) break;
      if (!sending) stream.WritesDone();
      continue;
    }
    if (!stream.Read(&response)) break;
    const InFlightWindow::Item item = window.Pop();
    if (response.key() != item.key) {
      return absl::InternalError(absl::StrCat("response for key ",
                                              response.key(), " where key ",
                                              item.key, " was due"));
    }
    answer(item.key, item.sent, response);
  }
  if (sending) stream.WritesDone();
  if (absl::Status status = FromGrpcStatus(stream.Finish()); !status.ok()) {
    return status;
  }
  if (!window.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "the stream ended with ", window.size(), " items unanswered"));
  }
  return absl::OkStatus();
}

using ContextFactory = std::function<std::unique_ptr<grpc::ClientContext>()>;

// Keeps a fixed number of calls in flight with the callback API: each call's
// completion records it and sends the slot's next call, on gRPC's thread.
// Derived::Send(slot) sends a slot's next call, or Retire()s the slot when
// the load has nothing more.
template <typename Derived, typename Slot>
class CallWindow {
 public:
  CallWindow(v1::PageStore::Stub& stub, ContextFactory context, int calls,
             ChannelLoad& load)
      : stub_(stub),
        new_context_(std::move(context)),
        load_(load),
        slots_(calls),
        active_(calls) {}

  // Returns once every call has been answered.
  void Run() {
    for (Slot& slot : slots_) static_cast<Derived*>(this)->Send(slot);
    std::unique_lock<std::mutex> lock(mu_);
    all_retired_.wait(lock, [this] { return active_ == 0; });
  }

 protected:
  void Retire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) all_retired_.notify_all();
  }

  v1::PageStore::Stub& stub_;
  const ContextFactory new_context_;
  ChannelLoad& load_;
  std::vector<Slot> slots_;

 private:
  std::mutex mu_;
  std::condition_variable all_retired_;
  int active_;  // guarded by mu_: slots still sending
};

// One unary call in flight, reused for the next once answered.
struct UnarySlot {
  std::unique_ptr<grpc::ClientContext> context;
  uint64_t key = 0;
  Clock::time_point sent;
  v1::PutRequest put;
  v1::PutResponse put_response;
  v1::GetRequest get;
  v1::GetResponse get_response;
  v1::DeleteRequest del;
  v1::DeleteResponse del_response;
};

// Keeps up to `depth` unary calls in flight.
class UnaryWindow : public CallWindow<UnaryWindow, UnarySlot> {
 public:
  UnaryWindow(v1::PageStore::Stub& stub, const std::string& tenant,
              ContextFactory context, int depth, ChannelLoad& load)
      : CallWindow(stub, std::move(context), depth, load) {
    for (UnarySlot& slot : slots_) {
      slot.put.set_tenant(tenant);
      slot.get.set_tenant(tenant);
      slot.del.set_tenant(tenant);
    }
  }

  void Send(UnarySlot& slot) {
    if (!load_.NextKey(&slot.key)) {
      Retire();
      return;
    }
    // A context serves one call only; the previous one is done with it.
    slot.context = new_context_();
    slot.sent = Clock::now();
    switch (load_.phase()) {
      case Phase::kPut:
        slot.put.set_key(slot.key);
        {
          absl::string_view page = load_.PageOf(slot.key);
          slot.put.mutable_data()->assign(page.data(), page.size());
        }
        stub_.async()->Put(slot.context.get(), &slot.put, &slot.put_response,
                           [this, &slot](grpc::Status status) {
                             load_.Done(slot.key, slot.sent, ErrorOf(status));
                             Send(slot);
                           });
        break;
      case Phase::kGet:
        slot.get.set_key(slot.key);
        stub_.async()->Get(slot.context.get(), &slot.get, &slot.get_response,
                           [this, &slot](grpc::Status status) {
                             load_.Done(slot.key, slot.sent, ErrorOf(status),
                                        slot.get_response.data());
                             Send(slot);
                           });
        break;
      case Phase::kDelete:
        slot.del.set_key(slot.key);
        stub_.async()->Delete(slot.context.get(), &slot.del, &slot.del_response,
                              [this, &slot](grpc::Status status) {
                                load_.Done(slot.key, slot.sent,
                                           ErrorOf(status));
                                Send(slot);
                              });
        break;
    }
  }
};

// Keeps batch calls in flight with the callback API, as UnaryWindow keeps
// unary ones: each answered call records its pages and sends the next batch
// on gRPC's thread. Every page of a call counts from the call's send.
struct BatchSlot {
  std::unique_ptr<grpc::ClientContext> context;
  std::vector<uint64_t> keys;
  Clock::time_point sent;
  v1::PutBatchRequest put;
  v1::PutBatchResponse put_response;
  v1::GetBatchRequest get;
  v1::GetBatchResponse get_response;
};

class BatchWindow : public CallWindow<BatchWindow, BatchSlot> {
 public:
  BatchWindow(v1::PageStore::Stub& stub, const std::string& tenant,
              ContextFactory context, int calls, int batch_pages,
              ChannelLoad& load)
      : CallWindow(stub, std::move(context), calls, load),
        batch_pages_(batch_pages) {
    for (BatchSlot& slot : slots_) {
      slot.put.set_tenant(tenant);
      slot.get.set_tenant(tenant);
      slot.keys.reserve(batch_pages);
    }
  }

  void Send(BatchSlot& slot) {
    slot.keys.clear();
    uint64_t key;
    while (static_cast<int>(slot.keys.size()) < batch_pages_ &&
           load_.NextKey(&key)) {
      slot.keys.push_back(key);
    }
    if (slot.keys.empty()) {
      Retire();
      return;
    }
    slot.context = new_context_();
    slot.sent = Clock::now();
    if (load_.phase() == Phase::kPut) {
      slot.put.clear_keys();
      std::string* pages = slot.put.mutable_pages();
      pages->clear();
      for (uint64_t k : slot.keys) {
        slot.put.add_keys(k);
        const absl::string_view page = load_.PageOf(k);
        pages->append(page.data(), page.size());
      }
      stub_.async()->PutBatch(slot.context.get(), &slot.put, &slot.put_response,
                              [this, &slot](grpc::Status status) {
                                for (size_t i = 0; i < slot.keys.size(); ++i) {
                                  load_.Done(slot.keys[i], slot.sent,
                                             ItemError(status, slot, i));
                                }
                                Send(slot);
                              });
      return;
    }
    slot.get.clear_keys();
    for (uint64_t k : slot.keys) slot.get.add_keys(k);
    stub_.async()->GetBatch(
        slot.context.get(), &slot.get, &slot.get_response,
        [this, &slot](grpc::Status status) {
          const std::string& pages = slot.get_response.pages();
          for (size_t i = 0; i < slot.keys.size(); ++i) {
            const std::string error = ItemError(status, slot, i);
            load_.Done(slot.keys[i], slot.sent, error,
                       error.empty() ? absl::string_view(pages).substr(
                                           i * kPageSize, kPageSize)
                                     : absl::string_view());
          }
          Send(slot);
        });
  }

  // Item i's error: the call's, else its own code's; empty when OK.
  std::string ItemError(const grpc::Status& status, const BatchSlot& slot,
                        size_t i) const {
    if (!status.ok()) return ErrorOf(status);
    if (load_.phase() == Phase::kPut) {
      if (static_cast<int>(i) >= slot.put_response.results_size()) {
        return "INTERNAL: a result is missing";
      }
      const v1::PutItemResult& result = slot.put_response.results(i);
      return result.code() == 0
                 ? std::string()
                 : absl::StrCat(
                       absl::StatusCodeToString(
                           static_cast<absl::StatusCode>(result.code())),
                       ": ", result.message());
    }
    if (static_cast<int>(i) >= slot.get_response.codes_size() ||
        slot.get_response.pages().size() != slot.keys.size() * kPageSize) {
      return "INTERNAL: a page is missing";
    }
    const int code = slot.get_response.codes(i);
    return code == 0
               ? std::string()
               : absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  const int batch_pages_;
};

}  // namespace

ZpagedTarget::ZpagedTarget(Mode mode, ZpagedTargetOptions options)
    : mode_(mode),
      options_(std::move(options)),
      tenant_(absl::StrCat(options_.tenant, "-", this->mode())) {}

std::string ZpagedTarget::mode() const {
  switch (mode_) {
    case Mode::kStream:
      return "stream";
    case Mode::kUnary:
      return "unary";
    case Mode::kBatch:
      return absl::StrCat("batch", options_.batch_pages);
  }
  return "unknown";
}

absl::Status ZpagedTarget::Connect(int channels) {
  stubs_.clear();
  for (int i = 0; i < channels; ++i) {
    // A distinct argument keeps gRPC from sharing one connection.
    grpc::ChannelArguments arguments;
    arguments.SetInt("zpaged.bench.channel", i);
    std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
        options_.server, grpc::InsecureChannelCredentials(), arguments);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(10))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to zpaged at ", options_.server));
    }
    stubs_.push_back(v1::PageStore::NewStub(channel));
  }
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> ZpagedTarget::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!options_.token.empty()) {
    context->AddMetadata(kAuthorizationMetadata,
                         absl::StrCat(kBearerPrefix, options_.token));
  }
  return context;
}

absl::Status ZpagedTarget::RunChannel(int channel, int depth,
                                      ChannelLoad& load) {
  v1::PageStore::Stub& stub = *stubs_[channel];
  // There is no delete stream or batch: cleanup is unary in every mode.
  if (mode_ == Mode::kUnary || load.phase() == Phase::kDelete) {
    RunUnary(stub, depth, load);
    return absl::OkStatus();
  }
  if (mode_ == Mode::kBatch) {
    RunBatches(stub, depth, load);
    return absl::OkStatus();
  }
  return RunStream(stub, depth, load);
}

void ZpagedTarget::RunBatches(v1::PageStore::Stub& stub, int depth,
                              ChannelLoad& load) {
  const int calls = std::max(1, depth / options_.batch_pages);
  BatchWindow window(
      stub, tenant_, [this] { return NewContext(); }, calls,
      options_.batch_pages, load);
  window.Run();
}

absl::Status ZpagedTarget::RunStream(v1::PageStore::Stub& stub, int depth,
                                     ChannelLoad& load) {
  std::unique_ptr<grpc::ClientContext> context = NewContext();
  if (load.phase() == Phase::kPut) {
    v1::PutRequest request;
    request.set_tenant(tenant_);
    auto stream = stub.PutStream(context.get());
    return PumpStream(
        *stream, depth, load,
        [&](uint64_t key) -> const v1::PutRequest& {
          request.set_key(key);
          absl::string_view page = load.PageOf(key);
          request.mutable_data()->assign(page.data(), page.size());
          return request;
        },
        [&](uint64_t key, Clock::time_point sent,
            const v1::PutStreamResponse& response) {
          load.Done(key, sent, ItemErrorOf(response));
        });
  }
  v1::GetRequest request;
  request.set_tenant(tenant_);
  auto stream = stub.GetStream(context.get());
  return PumpStream(
      *stream, depth, load,
      [&](uint64_t key) -> const v1::GetRequest& {
        request.set_key(key);
        return request;
      },
      [&](uint64_t key, Clock::time_point sent,
          const v1::GetStreamResponse& response) {
        load.Done(key, sent, ItemErrorOf(response), response.data());
      });
}

void ZpagedTarget::RunUnary(v1::PageStore::Stub& stub, int depth,
                            ChannelLoad& load) {
  UnaryWindow window(
      stub, tenant_, [this] { return NewContext(); }, depth, load);
  window.Run();
}

absl::StatusOr<std::optional<ServerSample>> ZpagedTarget::SampleServer() {
  if (options_.server_pid == 0) return std::nullopt;
  absl::StatusOr<ServerSample> sample = SampleProcess(options_.server_pid);
  if (!sample.ok()) return sample.status();
  return *sample;
}

}  // namespace zpaged::bench
