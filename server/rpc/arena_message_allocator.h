// ArenaMessageAllocator: request and response of a callback method on one
// protobuf arena per call, whose first block holds a whole call.
//
// A PutBatch response holds a PutItemResult per page; allocated one by one
// they would cost a heap allocation per page. On an arena they come out of
// one block, so a call costs the same few allocations however many pages it
// carries.

#ifndef ZPAGED_SERVER_RPC_ARENA_MESSAGE_ALLOCATOR_H_
#define ZPAGED_SERVER_RPC_ARENA_MESSAGE_ALLOCATOR_H_

#include <cstddef>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace zpaged {

template <typename Request, typename Response>
class ArenaMessageAllocator final
    : public grpc::MessageAllocator<Request, Response> {
 public:
  // `first_block_bytes`: the arena's first block; make it hold a whole call
  // apart from its large byte fields, which live on the heap either way.
  explicit ArenaMessageAllocator(size_t first_block_bytes) {
    options_.start_block_size = first_block_bytes;
    options_.max_block_size = first_block_bytes;
  }

  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder(options_);
  }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    explicit Holder(const google::protobuf::ArenaOptions& options)
        : arena_(options) {
      this->set_request(
          google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(
          google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    google::protobuf::Arena arena_;
  };

  google::protobuf::ArenaOptions options_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_ARENA_MESSAGE_ALLOCATOR_H_
