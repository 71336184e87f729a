// RequestAdmission: bounds the bytes of write requests (Put, PutBatch) that
// zpaged holds while it serves them, per tenant and in all. A Put at a
// tenant's limit waits for evictions, and its request waits with it: one
// tenant's flood of batches would otherwise hold gRPC's memory until gRPC's
// quota, shared by every connection, started resetting streams and closing
// connections of other tenants. Admission refuses the flood first, with
// RESOURCE_EXHAUSTED to the tenant that sent it.
//
// Thread-safe.

#ifndef ZPAGED_SERVER_RPC_REQUEST_ADMISSION_H_
#define ZPAGED_SERVER_RPC_REQUEST_ADMISSION_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/mutex.h"

namespace zpaged {

class RequestAdmission {
 public:
  struct Limits {
    uint64_t total_bytes;
    uint64_t tenant_bytes;
  };
  // The limits within gRPC's memory quota: half of it for requests in
  // flight, an eighth for any one tenant's, so that gRPC is never pressed
  // by requests zpaged holds and a tenant leaves room for three others.
  static Limits WithinGrpcMemory(uint64_t grpc_memory_bytes) {
    return Limits{grpc_memory_bytes / 2, grpc_memory_bytes / 8};
  }

  explicit RequestAdmission(Limits limits) : limits_(limits) {}

  // What an admitted request holds; the bytes go back when it is destroyed.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept { *this = std::move(other); }
    Ticket& operator=(Ticket&& other) noexcept;
    ~Ticket();

   private:
    friend class RequestAdmission;
    RequestAdmission* admission_ = nullptr;
    std::string tenant_;
    uint64_t bytes_ = 0;
  };

  // Admits a request of `bytes` for `tenant`, or RESOURCE_EXHAUSTED naming
  // the limit it would pass.
  absl::StatusOr<Ticket> Admit(absl::string_view tenant, uint64_t bytes);

 private:
  void Release(const std::string& tenant, uint64_t bytes);

  const Limits limits_;
  Mutex mu_;
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint64_t> by_tenant_ ABSL_GUARDED_BY(mu_);
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_REQUEST_ADMISSION_H_
