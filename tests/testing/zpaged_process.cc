#include "tests/testing/zpaged_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/lib/zpaged_client.h"

extern char** environ;

namespace zpaged {
namespace {

absl::Status ErrnoError(int error, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(error)));
}

// A loopback port free a moment ago. Another process may take it before
// zpaged binds it; then Start fails with the server's own error.
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return ErrnoError(errno, "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound =
      bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  close(fd);
  if (!bound) return ErrnoError(error, "binding a free port");
  return ntohs(address.sin_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZpagedProcess>> ZpagedProcess::Start(
    const std::vector<std::string>& flags) {
  const char* binary = std::getenv("ZPAGED_BINARY");
  if (binary == nullptr) {
    return absl::FailedPreconditionError(
        "set ZPAGED_BINARY to the zpaged binary");
  }
  absl::StatusOr<int> port = FreePort();
  if (!port.ok()) return port.status();
  std::string address = absl::StrCat("127.0.0.1:", *port);
  std::vector<std::string> args = {binary, "--listen=" + address,
                                   "--metrics_listen="};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int error =
          posix_spawn(&pid, binary, nullptr, nullptr, argv.data(), environ);
      error != 0) {
    return ErrnoError(error, absl::StrCat("starting ", binary));
  }
  std::unique_ptr<ZpagedProcess> process(
      new ZpagedProcess(pid, std::move(address)));
  std::unique_ptr<Client> client = Client::Connect(process->address());
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<bool> serving = client->Serving();
    if (serving.ok() && *serving) return process;
    if (waitpid(pid, nullptr, WNOHANG) == pid) {
      process->pid_ = 0;
      return absl::InternalError(
          absl::StrCat(binary, " exited before serving; see its log above"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      binary, " did not report SERVING on ", process->address(), " in 10 s"));
}

ZpagedProcess::~ZpagedProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

}  // namespace zpaged
