#include "server/rpc/watch_reactor.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "contract/grpc_status.h"
#include "contract/metadata.h"
#include "contract/names.h"
#include "contract/page.h"
#include "contract/wire_encoding.h"
#include "server/codec/page_codec.h"
#include "server/rpc/authorization_metadata.h"
#include "server/rpc/raw_message.h"

namespace zpaged {

WatchReactor::WatchReactor(grpc::CallbackServerContext* context,
                           EvictionBroker* broker, const Authorizer* authorizer,
                           CallObserver* observer, MemoryBudget* buffer_budget)
    : context_(context),
      broker_(broker),
      authorizer_(authorizer),
      observer_(observer),
      buffer_budget_(buffer_budget),
      start_(absl::Now()) {
  StartRead(&raw_incoming_);
}

bool WatchReactor::Send(const OutgoingPage& page) {
  MutexLock lock(&mu_);
  if (!subscribed_ || finished_ || outbox_.size() >= kMaxOutboxPages ||
      buffer_budget_->used_bytes() >= buffer_budget_->limit_bytes()) {
    return false;
  }
  // One message object per thread, so a page costs no allocation beyond its
  // serialized bytes.
  thread_local v1::EvictedPage out;
  thread_local std::array<uint8_t, kPageSize> whole;
  absl::Span<const uint8_t> data = page.data.bytes;
  PageEncoding encoding = page.data.encoding;
  if (encoding != PageEncoding::kRaw && !accept_.Contains(encoding)) {
    // The pool's own bytes, so they decode; if they did not, the page
    // stays on the server, as for a watcher that cannot take it.
    if (!ExpandEncodedPage(encoding, data, absl::MakeSpan(whole)).ok()) {
      return false;
    }
    data = absl::MakeConstSpan(whole);
    encoding = PageEncoding::kRaw;
  }
  out.set_tenant(std::string(page.tenant));
  out.set_key(page.key);
  out.set_data(data.data(), data.size());
  out.set_sequence(page.sequence);
  out.set_encoding(accept_.empty() ? v1::ENCODING_UNSPECIFIED
                                   : ToWireEncoding(encoding));
  grpc::ByteBuffer& queued = outbox_.emplace_back();
  SerializeMessage(out, &queued);
  buffer_budget_->ChargeAnyway(queued.Length());
  if (!writing_) {
    writing_ = true;
    StartWrite(&outbox_.front());
  }
  return true;
}

void WatchReactor::Close(const absl::Status& status) {
  FinishOnce(ToGrpcStatus(status));
}

void WatchReactor::Reauthorize(absl::string_view tenant) {
  if (absl::Status allowed =
          authorizer_->Check(AuthorizationOf(*context_), tenant);
      !allowed.ok()) {
    FinishOnce(ToGrpcStatus(allowed));
  }
}

void WatchReactor::FinishOnce(const grpc::Status& status) {
  MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  if (observer_ != nullptr) {
    observer_->OnCallFinished(RpcMethod::kWatchEvictions, status.error_code(),
                              absl::Now() - start_);
  }
  Finish(status);
}

std::optional<EvictionBroker::WatcherId> WatchReactor::id() {
  MutexLock lock(&mu_);
  return id_;
}

void WatchReactor::End(const grpc::Status& status) {
  if (std::optional<EvictionBroker::WatcherId> watcher = id()) {
    broker_->Detach(*watcher);
  }
  FinishOnce(status);
}

void WatchReactor::Subscribe() {
  if (incoming_.sequence() != 0) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "the first message must subscribe: set tenant, not "
                     "sequence"));
    return;
  }
  if (absl::Status allowed =
          authorizer_->Check(AuthorizationOf(*context_), incoming_.tenant());
      !allowed.ok()) {
    End(ToGrpcStatus(allowed));
    return;
  }
  if (absl::Status valid = ValidateTenantName(incoming_.tenant());
      !valid.ok()) {
    End(ToGrpcStatus(valid));
    return;
  }
  absl::StatusOr<EvictionBroker::WatcherId> attached =
      broker_->Attach(incoming_.tenant(), this, incoming_.exclusive());
  if (!attached.ok()) {
    FinishOnce(ToGrpcStatus(attached.status()));
    return;
  }
  {
    // Send refuses pages until the metadata is out (StartWrite would send
    // it otherwise); the client hears it is subscribed only once the broker
    // knows this watcher, so a Reclaim it sends on hearing so finds it.
    MutexLock lock(&mu_);
    id_ = *attached;
    if (!finished_) {
      subscribed_ = true;
      accept_ = FromWireAccept(incoming_.accept());
      context_->AddInitialMetadata(kSubscribedMetadata, incoming_.tenant());
      StartSendInitialMetadata();
    }
  }
  StartRead(&raw_incoming_);
}

void WatchReactor::OnReadDone(bool ok) {
  if (!ok) {
    // The client closed its side, or the call broke: either way no more
    // acks can come.
    End(grpc::Status::OK);
    return;
  }
  if (grpc::Status parsed = ParseMessage(*context_, raw_incoming_, &incoming_);
      !parsed.ok()) {
    End(parsed);
    return;
  }
  const std::optional<EvictionBroker::WatcherId> watcher = id();
  if (!watcher.has_value()) {
    Subscribe();
    return;
  }
  if (!incoming_.tenant().empty()) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("this stream is already subscribed; open "
                                  "another stream to watch '",
                                  incoming_.tenant(), "'")));
    return;
  }
  if (absl::Status acked = broker_->Ack(*watcher, incoming_.sequence());
      !acked.ok()) {
    End(ToGrpcStatus(acked));
    return;
  }
  StartRead(&raw_incoming_);
}

void WatchReactor::PopOutbox() {
  buffer_budget_->Release(outbox_.front().Length());
  outbox_.pop_front();
}

void WatchReactor::OnWriteDone(bool ok) {
  MutexLock lock(&mu_);
  PopOutbox();
  if (ok && !finished_ && !outbox_.empty()) {
    StartWrite(&outbox_.front());
  } else {
    writing_ = false;
  }
}

void WatchReactor::OnDone() {
  if (std::optional<EvictionBroker::WatcherId> watcher = id()) {
    broker_->Detach(*watcher);
  }
  {
    MutexLock lock(&mu_);
    while (!outbox_.empty()) PopOutbox();
  }
  delete this;
}

}  // namespace zpaged
