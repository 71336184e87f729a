// The one place a status crosses between absl and gRPC, both ways.
//
// The two enums share google.rpc.Code's numbers, so a code crosses as it is,
// with its message.

#ifndef ZPAGED_CONTRACT_GRPC_STATUS_H_
#define ZPAGED_CONTRACT_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace zpaged {

// Server side: what the RPC edge answers for a store status.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Client side: what a call's status means to callers of the client library.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_GRPC_STATUS_H_
