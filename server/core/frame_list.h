// FrameList: a doubly linked list of arena frames whose links live in a
// pool's side table, so that a pool can keep LRUs and free lists of frames
// without storing pointers or touching the frames' memory.
//
// `State` is the pool's side-table entry type; `kPrev` and `kNext` name its
// two link members. A frame is on at most one list per pair of members.
// Not thread-safe: the owning pool serialises every call under its lock.

#ifndef ZPAGED_SERVER_CORE_FRAME_LIST_H_
#define ZPAGED_SERVER_CORE_FRAME_LIST_H_

#include <vector>

#include "server/core/arena.h"

namespace zpaged {

template <typename State, FrameIndex State::*kPrev, FrameIndex State::*kNext>
class FrameList {
 public:
  FrameIndex head() const { return head_; }
  FrameIndex tail() const { return tail_; }
  bool empty() const { return head_ == kNoFrame; }

  // Requires `frame` on no list of this pair of links.
  void PushHead(std::vector<State>& states, FrameIndex frame) {
    State& state = states[frame];
    state.*kPrev = kNoFrame;
    state.*kNext = head_;
    if (head_ != kNoFrame) states[head_].*kPrev = frame;
    head_ = frame;
    if (tail_ == kNoFrame) tail_ = frame;
  }

  // Requires `frame` on this list.
  void Remove(std::vector<State>& states, FrameIndex frame) {
    State& state = states[frame];
    if (state.*kPrev != kNoFrame) {
      states[state.*kPrev].*kNext = state.*kNext;
    } else {
      head_ = state.*kNext;
    }
    if (state.*kNext != kNoFrame) {
      states[state.*kNext].*kPrev = state.*kPrev;
    } else {
      tail_ = state.*kPrev;
    }
    state.*kPrev = state.*kNext = kNoFrame;
  }

 private:
  FrameIndex head_ = kNoFrame;
  FrameIndex tail_ = kNoFrame;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_CORE_FRAME_LIST_H_
