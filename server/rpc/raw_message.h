// Requests reach zpaged, and responses leave it, as grpc::ByteBuffer: the
// service parses and serializes its own messages.
//
// Left to gRPC 1.51, a message that does not parse is reported to a
// streaming reactor exactly as the client closing its side, so a stream cut
// by garbage ended with status OK and its later items silently unhandled;
// and an unparseable unary request was answered UNIMPLEMENTED with no
// message. Parsed here, either ends the call with INVALID_ARGUMENT naming
// the message that did not parse.
//
// Nor does gRPC 1.51 refuse a message whose Compressed-Flag is set while
// the call's grpc-encoding is missing, "identity" or unknown: it hands the
// bytes on as if plain. Such a message is INVALID_ARGUMENT here too.

#ifndef ZPAGED_SERVER_RPC_RAW_MESSAGE_H_
#define ZPAGED_SERVER_RPC_RAW_MESSAGE_H_

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/status.h"

namespace zpaged {

// Whether the message `context`'s call received last was flagged compressed
// and handed on undecompressed. Call it from the read's completion, before
// the next read starts.
bool FlaggedCompressedButNotDecompressed(grpc::ServerContextBase& context);

// INVALID_ARGUMENT when the message `context`'s call received last is
// flagged compressed without an algorithm to decompress it. Same timing as
// FlaggedCompressedButNotDecompressed.
grpc::Status CheckDecompressed(grpc::ServerContextBase& context);

// Parses the bytes of `raw` into `*message`: INVALID_ARGUMENT, with
// `*message` unspecified, when they are not a valid `Message`.
template <typename Message>
grpc::Status ParseMessageBytes(const grpc::ByteBuffer& raw, Message* message) {
  // The reader only reads the buffer; it takes a mutable pointer because
  // gRPC's own deserializer empties the buffer after it.
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(&raw));
  if (reader.status().ok() && message->ParseFromZeroCopyStream(&reader)) {
    return grpc::Status::OK;
  }
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("the message is not a valid ", message->GetTypeName()));
}

// Parses `raw`, the message `context`'s call received last, into
// `*message`: CheckDecompressed, then ParseMessageBytes.
template <typename Message>
grpc::Status ParseMessage(grpc::ServerContextBase& context,
                          const grpc::ByteBuffer& raw, Message* message) {
  if (grpc::Status decompressed = CheckDecompressed(context);
      !decompressed.ok()) {
    return decompressed;
  }
  return ParseMessageBytes(raw, message);
}

// Serializes `message` into `*raw`, replacing what it held.
template <typename Message>
void SerializeMessage(const Message& message, grpc::ByteBuffer* raw) {
  bool own_buffer;
  raw->Clear();  // gRPC's writer takes an empty buffer
  // Fails only past 2 GiB; zpaged's largest message is one batch.
  grpc::SerializationTraits<Message>::Serialize(message, raw, &own_buffer)
      .IgnoreError();
}

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_RAW_MESSAGE_H_
