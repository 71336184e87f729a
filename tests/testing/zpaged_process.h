// The real zpaged binary as a child process of a test, for the tests that
// measure it from outside (resident size) or need its flag parsing.
//
//   absl::StatusOr<std::unique_ptr<ZpagedProcess>> server =
//       ZpagedProcess::Start({"--max_memory_bytes=8M"});
//   auto client = Client::Connect((*server)->address());
//
// The binary is the one ZPAGED_BINARY names (ctest sets it).

#ifndef ZPAGED_TESTS_TESTING_ZPAGED_PROCESS_H_
#define ZPAGED_TESTS_TESTING_ZPAGED_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace zpaged {

class ZpagedProcess {
 public:
  // Starts zpaged listening on a free loopback port, with no metrics
  // listener, and `flags`; returns once it reports SERVING (or an error
  // after 10 s).
  static absl::StatusOr<std::unique_ptr<ZpagedProcess>> Start(
      const std::vector<std::string>& flags);
  // Kills the server (SIGKILL: tests do not wait for a drain) and reaps it.
  ~ZpagedProcess();

  ZpagedProcess(const ZpagedProcess&) = delete;
  ZpagedProcess& operator=(const ZpagedProcess&) = delete;

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

 private:
  ZpagedProcess(pid_t pid, std::string address)
      : pid_(pid), address_(std::move(address)) {}

  pid_t pid_;
  std::string address_;
};

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_ZPAGED_PROCESS_H_
