// The one place an absl::Status becomes a grpc::Status.

#ifndef ZPAGED_SERVER_RPC_STATUS_CONVERSION_H_
#define ZPAGED_SERVER_RPC_STATUS_CONVERSION_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace zpaged {

// Same code (the two enums share google.rpc.Code numbers), same message.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_STATUS_CONVERSION_H_
