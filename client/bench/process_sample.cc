#include "client/bench/process_sample.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace zpaged::bench {

absl::StatusOr<ServerSample> SampleProcess(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/");
  std::ifstream stat_file(dir + "stat");
  std::ifstream statm_file(dir + "statm");
  std::string stat;
  if (!std::getline(stat_file, stat)) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  // The command name (field 2) may hold spaces; fields after it are plain.
  const size_t name_end = stat.rfind(')');
  if (name_end == std::string::npos) {
    return absl::InternalError(absl::StrCat("cannot parse ", dir, "stat"));
  }
  std::istringstream fields(stat.substr(name_end + 2));
  std::string skipped;
  // Fields 3 to 13, then utime (14) and stime (15), in clock ticks.
  for (int field = 3; field <= 13; ++field) fields >> skipped;
  uint64_t user_ticks = 0, system_ticks = 0;
  fields >> user_ticks >> system_ticks;
  uint64_t size_pages = 0, resident_pages = 0;
  statm_file >> size_pages >> resident_pages;
  if (!fields || !statm_file) {
    return absl::InternalError(absl::StrCat("cannot parse ", dir, "stat(m)"));
  }
  ServerSample sample;
  sample.cpu_seconds = static_cast<double>(user_ticks + system_ticks) /
                       static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.memory_bytes = resident_pages * static_cast<uint64_t>(getpagesize());
  return sample;
}

}  // namespace zpaged::bench
