#include "server/rpc/request_admission.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace zpaged {

RequestAdmission::Ticket& RequestAdmission::Ticket::operator=(
    Ticket&& other) noexcept {
  if (this != &other) {
    if (admission_ != nullptr) admission_->Release(tenant_, bytes_);
    admission_ = std::exchange(other.admission_, nullptr);
    tenant_ = std::move(other.tenant_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

RequestAdmission::Ticket::~Ticket() {
  if (admission_ != nullptr) admission_->Release(tenant_, bytes_);
}

absl::StatusOr<RequestAdmission::Ticket> RequestAdmission::Admit(
    absl::string_view tenant, uint64_t bytes) {
  {
    MutexLock lock(&mu_);
    uint64_t& mine = by_tenant_[tenant];
    if (mine + bytes > limits_.tenant_bytes) {
      if (mine == 0) by_tenant_.erase(tenant);
      return absl::ResourceExhaustedError(
          absl::StrCat("tenant '", tenant, "' has ", mine,
                       " bytes of write requests in flight; its limit is ",
                       limits_.tenant_bytes,
                       " (an eighth of --grpc_memory_bytes): wait "
                       "for its calls to finish"));
    }
    if (total_ + bytes > limits_.total_bytes) {
      if (mine == 0) by_tenant_.erase(tenant);
      return absl::ResourceExhaustedError(
          absl::StrCat("zpaged holds ", total_,
                       " bytes of write requests in flight; the limit is ",
                       limits_.total_bytes, " (half of --grpc_memory_bytes)"));
    }
    mine += bytes;
    total_ += bytes;
  }
  Ticket ticket;
  ticket.admission_ = this;
  ticket.tenant_ = std::string(tenant);
  ticket.bytes_ = bytes;
  return ticket;
}

void RequestAdmission::Release(const std::string& tenant, uint64_t bytes) {
  MutexLock lock(&mu_);
  total_ -= bytes;
  auto it = by_tenant_.find(tenant);
  if (it == by_tenant_.end()) return;  // a ticket of 0 bytes, released
  it->second -= bytes;
  if (it->second == 0) by_tenant_.erase(it);
}

}  // namespace zpaged
