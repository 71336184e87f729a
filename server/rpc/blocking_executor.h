// BlockingExecutor: a few threads for RPC work that may block for seconds.
//
// A Reclaim, or a Put that must reclaim to make room, waits for watchers to
// acknowledge evicted pages. Those acks arrive through gRPC's own callback
// threads; if the waiting ran on those threads, enough waiters would leave
// none to deliver the acks. Such work is handed to this executor instead.

#ifndef ZPAGED_SERVER_RPC_BLOCKING_EXECUTOR_H_
#define ZPAGED_SERVER_RPC_BLOCKING_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "server/core/mutex.h"

namespace zpaged {

class BlockingExecutor {
 public:
  explicit BlockingExecutor(int threads);
  // Runs every task already submitted, then joins the threads.
  ~BlockingExecutor();

  BlockingExecutor(const BlockingExecutor&) = delete;
  BlockingExecutor& operator=(const BlockingExecutor&) = delete;

  // Queues `task` to run on one of the threads.
  void Submit(std::function<void()> task);

 private:
  void Run();

  Mutex mu_;
  CondVar work_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_RPC_BLOCKING_EXECUTOR_H_
