// ProgressLine: tells the person running a benchmark what it is doing. While
// alive it prints "<label>: <count> pages, <rate>/s" to stderr: on a
// terminal one line rewritten four times a second, elsewhere a line every
// five seconds.

#ifndef ZPAGED_CLIENT_BENCH_PROGRESS_LINE_H_
#define ZPAGED_CLIENT_BENCH_PROGRESS_LINE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace zpaged::bench {

class ProgressLine {
 public:
  // `done` is read until the destructor returns.
  ProgressLine(std::string label, const std::atomic<uint64_t>& done);
  ~ProgressLine();  // prints the final count
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

 private:
  void Print(bool last);

  const std::string label_;
  const std::atomic<uint64_t>& done_;
  const bool terminal_;
  const std::chrono::steady_clock::time_point start_;

  std::mutex mu_;
  std::condition_variable stop_changed_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_PROGRESS_LINE_H_
