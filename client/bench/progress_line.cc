#include "client/bench/progress_line.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

namespace zpaged::bench {

ProgressLine::ProgressLine(std::string label, const std::atomic<uint64_t>& done)
    : label_(std::move(label)),
      done_(done),
      terminal_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {
  const auto interval = terminal_ ? std::chrono::milliseconds(250)
                                  : std::chrono::milliseconds(5000);
  thread_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_changed_.wait_for(lock, interval, [this] { return stop_; })) {
      Print(/*last=*/false);
    }
  });
}

ProgressLine::~ProgressLine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_changed_.notify_all();
  thread_.join();
  Print(/*last=*/true);
}

void ProgressLine::Print(bool last) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
          .count();
  const uint64_t done = done_.load(std::memory_order_relaxed);
  const double rate = seconds > 0 ? done / seconds : 0;
  std::fprintf(stderr, "%s%s: %llu pages, %.0f/s, %.1f s%s",
               terminal_ ? "\r\033[K" : "", label_.c_str(),
               static_cast<unsigned long long>(done), rate, seconds,
               terminal_ && !last ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace zpaged::bench
