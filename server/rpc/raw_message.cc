#include "server/rpc/raw_message.h"

#include <cstdint>

// gRPC 1.51 tells whether a received message was left compressed only
// through this function, exported by libgrpc for its own tests and declared
// in no installed header (Debian's libgrpc29 exports it with this C++
// signature; a gRPC without it fails at link time, not silently).
uint32_t grpc_call_test_only_get_message_flags(grpc_call* call);

namespace zpaged {
namespace {

// The message flag gRPC core keeps set on a message it did not decompress
// (GRPC_WRITE_INTERNAL_COMPRESS in its private headers). After a successful
// decompression it is cleared.
constexpr uint32_t kLeftCompressed = 0x80000000u;

}  // namespace

bool FlaggedCompressedButNotDecompressed(grpc::ServerContextBase& context) {
  return (grpc_call_test_only_get_message_flags(context.c_call()) &
          kLeftCompressed) != 0;
}

grpc::Status CheckDecompressed(grpc::ServerContextBase& context) {
  if (!FlaggedCompressedButNotDecompressed(context)) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      "the message is flagged compressed, but the call's grpc-encoding "
      "names no algorithm this server decompresses (gzip, deflate)");
}

}  // namespace zpaged
