#include "client/nbd/get_coalescer.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace zpaged::nbd {

static_assert(GetCoalescer::kMaxCallsInFlight == 1,
              "one completion queue serves one call at a time");

GetCoalescer::GetCoalescer(Client* client, std::string tenant)
    : client_(client), tenant_(std::move(tenant)) {}

GetCoalescer::~GetCoalescer() {
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

absl::Status GetCoalescer::Fetch(absl::Span<const uint64_t> keys,
                                 absl::Span<uint8_t* const> outs,
                                 absl::Span<int32_t> codes) {
  Request mine{keys, outs, codes};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&mine);
  while (!mine.done) {
    // A reader that finds a call free issues one for the whole queue, its
    // own request or not; then it wakes the readers it answered, and the
    // one heading the queue to issue the next call.
    if (calls_in_flight_ < kMaxCallsInFlight && !queue_.empty()) {
      const std::vector<Request*> batch = TakeQueued();
      ++calls_in_flight_;
      lock.unlock();
      Call(batch);
      lock.lock();
      --calls_in_flight_;
      for (Request* request : batch) {
        request->done = true;
        request->wake.notify_one();
      }
      if (!queue_.empty()) queue_.front()->wake.notify_one();
      continue;
    }
    mine.wake.wait(lock);
  }
  return mine.status;
}

std::vector<GetCoalescer::Request*> GetCoalescer::TakeQueued() {
  std::vector<Request*> batch;
  size_t keys = 0;
  while (!queue_.empty() &&
         (batch.empty() ||
          keys + queue_.front()->keys.size() <= kMaxKeysPerCall)) {
    keys += queue_.front()->keys.size();
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  return batch;
}

void GetCoalescer::Call(const std::vector<Request*>& requests) {
  v1::GetBatchRequest request;
  request.set_tenant(tenant_);
  for (const Request* r : requests) {
    request.mutable_keys()->Add(r->keys.begin(), r->keys.end());
  }
  std::unique_ptr<grpc::ClientContext> context = client_->NewContext();
  v1::GetBatchResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::GetBatchResponse>> call =
      client_->stub().PrepareAsyncGetBatch(context.get(), request, &cq_);
  call->StartCall();
  call->Finish(&response, &status, call.get());
  void* tag;
  bool ok;
  cq_.Next(&tag, &ok);  // the only call on the queue: this one
  const int keys = request.keys_size();
  absl::Status failed = absl::OkStatus();
  if (!status.ok()) {
    failed = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
  } else if (response.codes_size() != keys ||
             response.pages().size() != static_cast<size_t>(keys) * 4096) {
    failed = absl::InternalError("zpaged answered a GetBatch malformed");
  }
  int at = 0;
  for (Request* r : requests) {
    r->status = failed;
    if (!failed.ok()) continue;
    for (size_t i = 0; i < r->keys.size(); ++i, ++at) {
      r->codes[i] = response.codes(at);
      if (response.codes(at) == 0) {
        std::memcpy(r->outs[i], response.pages().data() + at * 4096, 4096);
      }
    }
  }
}

}  // namespace zpaged::nbd
