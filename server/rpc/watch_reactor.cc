#include "server/rpc/watch_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/rpc/authorization_metadata.h"
#include "server/rpc/status_conversion.h"
#include "server/store/tenant_name.h"

namespace zpaged {

WatchReactor::WatchReactor(grpc::CallbackServerContext* context,
                           EvictionHub* hub, const Authorizer* authorizer,
                           CallObserver* observer)
    : context_(context),
      hub_(hub),
      authorizer_(authorizer),
      observer_(observer),
      start_(absl::Now()) {
  StartRead(&incoming_);
}

bool WatchReactor::Send(absl::string_view tenant, uint64_t key,
                        absl::Span<const uint8_t> page, uint64_t* sequence,
                        std::shared_ptr<PendingAck>* pending) {
  MutexLock lock(&mu_);
  if (!subscribed_ || finished_ || stalled_) return false;
  *sequence = next_sequence_++;
  *pending = std::make_shared<PendingAck>();
  pending_[*sequence] = *pending;
  v1::EvictedPage& out = outbox_.emplace_back();
  out.set_tenant(std::string(tenant));
  out.set_key(key);
  out.set_data(page.data(), page.size());
  out.set_sequence(*sequence);
  if (!writing_) {
    writing_ = true;
    StartWrite(&outbox_.front());
  }
  return true;
}

void WatchReactor::ExpireAck(uint64_t sequence, const PendingAck* pending,
                             uint64_t key) {
  MutexLock lock(&mu_);
  auto it = pending_.find(sequence);
  if (it == pending_.end() || it->second.get() != pending) return;
  pending_.erase(it);
  stalled_ = true;
  overdue_key_by_sequence_[sequence] = key;
  ++overdue_copies_of_key_[key];
}

bool WatchReactor::HoldsOverdueCopyOf(uint64_t key) {
  MutexLock lock(&mu_);
  return overdue_copies_of_key_.contains(key);
}

bool WatchReactor::Ready() {
  MutexLock lock(&mu_);
  return subscribed_ && !finished_ && !stalled_;
}

void WatchReactor::FailPending(absl::string_view why) {
  for (auto& [sequence, pending] : pending_) {
    pending->Resolve(PendingAck::State::kFailed, why);
  }
  pending_.clear();
}

void WatchReactor::FinishOnce(const grpc::Status& status) {
  MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  FailPending("the watcher's stream ended before it acked");
  if (observer_ != nullptr) {
    observer_->OnCallFinished(RpcMethod::kWatchEvictions, status.error_code(),
                              absl::Now() - start_);
  }
  Finish(status);
}

std::string WatchReactor::Tenant() {
  MutexLock lock(&mu_);
  return tenant_;
}

void WatchReactor::End(const grpc::Status& status) {
  if (std::string tenant = Tenant(); !tenant.empty()) {
    hub_->Unregister(tenant, this);
  }
  FinishOnce(status);
}

void WatchReactor::OnReadDone(bool ok) {
  if (!ok) {
    // The client closed its side, or the call broke: either way no more
    // acks can come.
    End(grpc::Status::OK);
    return;
  }
  std::string tenant = Tenant();
  if (tenant.empty()) {
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
    {
      MutexLock lock(&mu_);
      tenant_ = incoming_.tenant();
    }
    if (absl::Status registered = hub_->Register(incoming_.tenant(), this);
        !registered.ok()) {
      FinishOnce(ToGrpcStatus(registered));
      return;
    }
    {
      // Ready before the client hears it is subscribed, so a Reclaim it
      // sends on hearing so finds this watcher; and the metadata goes out
      // before any page could, as StartWrite would send it otherwise.
      MutexLock lock(&mu_);
      if (!finished_) {
        subscribed_ = true;
        context_->AddInitialMetadata(kSubscribedMetadata, incoming_.tenant());
        StartSendInitialMetadata();
      }
    }
    StartRead(&incoming_);
    return;
  }

  if (!incoming_.tenant().empty()) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("this stream is already subscribed to '",
                                  tenant, "'; open another stream to watch '",
                                  incoming_.tenant(), "'")));
    return;
  }
  const uint64_t sequence = incoming_.sequence();
  bool never_sent;
  {
    MutexLock lock(&mu_);
    never_sent = sequence == 0 || sequence >= next_sequence_;
    if (!never_sent) {
      // Any ack shows the client is alive again.
      stalled_ = false;
      if (auto it = pending_.find(sequence); it != pending_.end()) {
        it->second->Resolve(PendingAck::State::kAcked);
        pending_.erase(it);
      } else if (auto late = overdue_key_by_sequence_.find(sequence);
                 late != overdue_key_by_sequence_.end()) {
        // The page stayed stored; newer copies of its key may go out now.
        auto copies = overdue_copies_of_key_.find(late->second);
        if (--copies->second == 0) overdue_copies_of_key_.erase(copies);
        overdue_key_by_sequence_.erase(late);
      }
    }
  }
  if (never_sent) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("ack for sequence ", sequence,
                                  ", which this stream never sent")));
    return;
  }
  StartRead(&incoming_);
}

void WatchReactor::OnWriteDone(bool ok) {
  MutexLock lock(&mu_);
  outbox_.pop_front();
  if (ok && !finished_ && !outbox_.empty()) {
    StartWrite(&outbox_.front());
  } else {
    writing_ = false;
  }
}

void WatchReactor::OnDone() {
  if (std::string tenant = Tenant(); !tenant.empty()) {
    hub_->Unregister(tenant, this);
  }
  {
    MutexLock lock(&mu_);
    FailPending("the watcher's stream ended before it acked");
  }
  delete this;
}

}  // namespace zpaged
