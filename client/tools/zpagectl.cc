// zpagectl: zpaged from the command line.
//
//   zpagectl --tenant=T put KEY [FILE]     a page from FILE or stdin
//   zpagectl --tenant=T get KEY [FILE]     a page to FILE or stdout
//   zpagectl --tenant=T delete KEY
//   zpagectl --tenant=T reclaim PAGES      evict to the tenant's watchers
//   zpagectl [--tenant=T] stats [--json]   all tenants if none
//   zpagectl --tenant=T watch DIR          evicted pages to DIR/KEY.page,
//                                          acked once synced
//   zpagectl health                        exit 0 if SERVING
//
// With several servers (--server=A,B,C, each NAME=HOST:PORT or HOST:PORT)
// put, get, delete and watch go through a tier client with --replicas
// copies of each page; stats, reclaim and health ask each server in turn.
//
// Exit status: 0 on success, 1 when the server refuses (the gRPC status is
// printed), 2 for a usage error.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/lib/zpaged_client.h"
#include "client/tier/tier_client.h"
#include "contract/page.h"

ABSL_FLAG(std::string, server, "",
          "zpaged address (default: $ZPAGED_SERVER, else 127.0.0.1:50051); "
          "several, comma-separated, each NAME=HOST:PORT or HOST:PORT, make "
          "a tier");
ABSL_FLAG(int, replicas, 2,
          "with several servers: copies of each page put, 1 to 3");
ABSL_FLAG(std::string, tenant, "", "tenant name (default: $ZPAGED_TENANT)");
ABSL_FLAG(std::string, token, "",
          "bearer token, for servers with --auth_tokens_file (default: "
          "$ZPAGED_TOKEN)");
ABSL_FLAG(
    std::string, tls_ca, "",
    "PEM CA bundle to verify a TLS server with (default: $ZPAGED_TLS_CA); "
    "without it zpagectl speaks plaintext");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain, for servers that require mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(bool, json, false, "stats: print one JSON object");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each call");

namespace zpaged {
namespace {

int UsageError(const std::string& message) {
  std::fprintf(stderr, "zpagectl: %s (try --help)\n", message.c_str());
  return 2;
}

int Failed(const std::string& command, const absl::Status& status) {
  std::fprintf(stderr, "zpagectl: %s: %s: %s\n", command.c_str(),
               absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

std::string FlagOrEnv(const std::string& flag, const char* variable,
                      const std::string& fallback) {
  if (!flag.empty()) return flag;
  if (const char* value = std::getenv(variable)) return value;
  return fallback;
}

// Decimal, or hex with 0x.
bool ParseKey(const std::string& text, uint64_t* key) {
  if (text.rfind("0x", 0) == 0 || text.rfind("0X", 0) == 0) {
    return absl::SimpleHexAtoi(text.substr(2), key);
  }
  return absl::SimpleAtoi(text, key);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::string data;
  if (path == "-") {
    data.assign(std::istreambuf_iterator<char>(std::cin),
                std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    data.assign(std::istreambuf_iterator<char>(in),
                std::istreambuf_iterator<char>());
  }
  return data;  // the server judges the size, so the message is the same
}

// Writes `data` to DIR/NAME durably: a temporary file, fsync, rename, fsync
// of the directory. Only then may the page be acked.
bool WriteDurably(const std::string& dir, const std::string& name,
                  absl::string_view data) {
  const std::string tmp = absl::StrCat(dir, "/.", name, ".tmp");
  const std::string path = absl::StrCat(dir, "/", name);
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) ==
                static_cast<ssize_t>(data.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd < 0) return false;
  ok = fsync(dir_fd) == 0;
  close(dir_fd);
  return ok;
}

void PrintStats(const std::string& tenant, const v1::StatsResponse& s) {
  if (absl::GetFlag(FLAGS_json)) {
    std::printf(
        "{\"node\":\"%s\",\"max_memory_bytes\":%lu,"
        "\"tenant\":\"%s\",\"stored_pages\":%lu,\"pool_pages\":%lu,"
        "\"density\":%.6f,\"same_filled_pages\":%lu,\"raw_pages\":%lu,"
        "\"compressed_bytes\":%lu,\"evicted_pages\":%lu,"
        "\"reclaimed_pool_pages\":%lu,\"rejected_puts\":%lu,\"tenants\":%lu}"
        "\n",
        s.node_name().c_str(), s.max_memory_bytes(), tenant.c_str(),
        s.stored_pages(), s.pool_pages(), s.density(), s.same_filled_pages(),
        s.raw_pages(), s.compressed_bytes(), s.evicted_pages(),
        s.reclaimed_pool_pages(), s.rejected_puts(), s.tenants());
    return;
  }
  const double ratio =
      s.pool_pages() == 0
          ? 0
          : static_cast<double>(s.stored_pages()) / s.pool_pages();
  std::printf("%-22s %s\n", "node", s.node_name().c_str());
  std::printf("%-22s %.1f MiB\n", "server memory limit",
              s.max_memory_bytes() / 1048576.0);
  std::printf("%-22s %s\n", "tenant",
              tenant.empty() ? "(all)" : tenant.c_str());
  std::printf("%-22s %lu\n", "tenants", s.tenants());
  std::printf("%-22s %lu\n", "stored pages", s.stored_pages());
  std::printf("%-22s %lu\n", "  same-filled", s.same_filled_pages());
  std::printf("%-22s %lu\n", "  raw", s.raw_pages());
  std::printf("%-22s %lu (%.1f MiB)\n", "pool pages", s.pool_pages(),
              s.pool_pages() * kPageSize / 1048576.0);
  std::printf("%-22s %.3f pages/frame\n", "density", s.density());
  std::printf("%-22s %.2fx\n", "compression ratio", ratio);
  std::printf("%-22s %lu\n", "compressed bytes", s.compressed_bytes());
  std::printf("%-22s %lu\n", "evicted pages", s.evicted_pages());
  std::printf("%-22s %lu\n", "reclaimed pool pages", s.reclaimed_pool_pages());
  std::printf("%-22s %lu\n", "rejected puts", s.rejected_puts());
}

// The signals that end `watch`. Blocked before gRPC starts any thread, so
// that every thread inherits the mask and only sigtimedwait receives them;
// otherwise one of gRPC's threads could take SIGTERM and die of it.
sigset_t StopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  return stop;
}

int Watch(PageClient& client, const std::string& tenant,
          const std::string& dir) {
  const sigset_t stop = StopSignals();
  auto watcher = client.Watch(tenant, [&](uint64_t key, absl::string_view p) {
    if (!WriteDurably(dir, absl::StrCat(key, ".page"), p)) {
      std::fprintf(stderr, "zpagectl: watch: cannot write %s/%lu.page: %s\n",
                   dir.c_str(), key, std::strerror(errno));
      return false;  // not safe: leave it on the server
    }
    std::printf("evicted %lu -> %s/%lu.page\n", key, dir.c_str(), key);
    std::fflush(stdout);
    return true;
  });
  if (!watcher.ok()) return Failed("watch", watcher.status());
  std::printf("watching tenant '%s'; evicted pages go to %s\n", tenant.c_str(),
              dir.c_str());
  std::fflush(stdout);

  const timespec tick{0, 200 * 1000 * 1000};
  for (;;) {
    if ((*watcher)->WaitFor(absl::ZeroDuration())) break;
    if (sigtimedwait(&stop, nullptr, &tick) > 0) {
      (*watcher)->Stop();
      return 0;
    }
  }
  absl::Status ended = (*watcher)->Wait();
  return ended.ok() ? 0 : Failed("watch", ended);
}

int Run(const std::vector<char*>& args) {
  if (args.size() < 2) return UsageError("no command");
  const std::string command = args[1];
  const std::string server = FlagOrEnv(absl::GetFlag(FLAGS_server),
                                       "ZPAGED_SERVER", "127.0.0.1:50051");
  const std::string tenant =
      FlagOrEnv(absl::GetFlag(FLAGS_tenant), "ZPAGED_TENANT", "");
  if (command == "watch") {
    const sigset_t stop = StopSignals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  ClientOptions options;
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.token = FlagOrEnv(absl::GetFlag(FLAGS_token), "ZPAGED_TOKEN", "");
  const std::string tls_ca =
      FlagOrEnv(absl::GetFlag(FLAGS_tls_ca), "ZPAGED_TLS_CA", "");
  for (const auto& [path, pem] :
       {std::pair{tls_ca, &options.tls_root_certs},
        std::pair{absl::GetFlag(FLAGS_tls_cert), &options.tls_cert_chain},
        std::pair{absl::GetFlag(FLAGS_tls_key), &options.tls_private_key}}) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> contents = ReadFile(path);
    if (!contents.ok()) return Failed("tls", contents.status());
    *pem = *std::move(contents);
  }
  if (options.tls_root_certs.empty() && !options.tls_cert_chain.empty()) {
    return UsageError("--tls_cert needs --tls_ca");
  }
  // One server's own calls go to each server; pages go through one client,
  // a tier's when there are several.
  const std::vector<std::string> servers =
      absl::StrSplit(server, ',', absl::SkipEmpty());
  if (servers.empty()) return UsageError("--server names no server");
  std::vector<std::pair<std::string, std::unique_ptr<Client>>> each;
  for (const std::string& s : servers) {
    const size_t equals = s.find('=');
    const std::string address =
        equals == std::string::npos ? s : s.substr(equals + 1);
    each.emplace_back(s, Client::Connect(address, options));
  }
  auto arg = [&](size_t i) -> std::string {
    return i < args.size() ? args[i] : "";
  };
  const bool needs_tenant = command != "stats" && command != "health";
  if (needs_tenant && tenant.empty()) {
    return UsageError(command + " needs --tenant");
  }

  // Before each server's answer when there are several.
  auto heading = [&](const std::string& s) {
    if (each.size() > 1 && !absl::GetFlag(FLAGS_json)) {
      std::printf("== %s\n", s.c_str());
    }
  };
  if (command == "health") {
    int status = 0;
    for (auto& [s, client] : each) {
      absl::StatusOr<bool> serving = client->Serving();
      if (!serving.ok()) return Failed(command, serving.status());
      std::printf("%s%s%s\n", each.size() > 1 ? s.c_str() : "",
                  each.size() > 1 ? " " : "",
                  *serving ? "SERVING" : "NOT_SERVING");
      if (!*serving) status = 1;
    }
    return status;
  }
  if (command == "stats") {
    for (auto& [s, client] : each) {
      absl::StatusOr<v1::StatsResponse> stats = client->Stats(tenant);
      if (!stats.ok()) return Failed(command, stats.status());
      heading(s);
      PrintStats(tenant, *stats);
    }
    return 0;
  }
  if (command == "reclaim") {
    uint32_t pages;
    if (!absl::SimpleAtoi(arg(2), &pages)) {
      return UsageError("reclaim needs a page count");
    }
    for (auto& [s, client] : each) {
      absl::StatusOr<v1::ReclaimResponse> r = client->Reclaim(tenant, pages);
      if (!r.ok()) return Failed(command, r.status());
      heading(s);
      std::printf("reclaimed %u pool pages, evicted %lu pages\n",
                  r->reclaimed_pool_pages(), r->evicted_pages());
    }
    return 0;
  }

  std::unique_ptr<PageClient> tier;
  if (each.size() > 1) {
    absl::StatusOr<std::unique_ptr<TierClient>> connected = TierClient::Connect(
        servers, options, {.replicas = absl::GetFlag(FLAGS_replicas)});
    if (!connected.ok()) return Failed("connect", connected.status());
    tier = *std::move(connected);
  }
  PageClient* const client =
      tier != nullptr ? tier.get() : each[0].second.get();
  if (command == "watch") {
    if (arg(2).empty()) return UsageError("watch needs a directory");
    return Watch(*client, tenant, arg(2));
  }

  uint64_t key;
  if (!ParseKey(arg(2), &key)) {
    return UsageError(
        absl::StrCat(command, " needs a key, not '", arg(2), "'"));
  }
  const std::string file = arg(3).empty() ? "-" : arg(3);
  if (command == "put") {
    absl::StatusOr<std::string> page = ReadFile(file);
    if (!page.ok()) return Failed(command, page.status());
    absl::StatusOr<PutReply> r = client->Put(tenant, key, *page);
    if (!r.ok()) return Failed(command, r.status());
    std::fprintf(stderr, "put %lu: %s, %u bytes in the pool%s\n", key,
                 absl::AsciiStrToUpper(PageEncodingName(r->encoding)).c_str(),
                 r->stored_bytes,
                 each.size() > 1
                     ? absl::StrCat(", ", r->copies, " copies").c_str()
                     : "");
    return 0;
  }
  if (command == "get") {
    absl::StatusOr<std::string> page = client->Get(tenant, key);
    if (!page.ok()) return Failed(command, page.status());
    if (file == "-") {
      std::fwrite(page->data(), 1, page->size(), stdout);
      return std::fflush(stdout) == 0 ? 0 : 1;
    }
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(page->data(), static_cast<std::streamsize>(page->size()));
    if (!out.flush())
      return Failed(command, absl::InternalError("cannot write " + file));
    return 0;
  }
  if (command == "delete") {
    absl::StatusOr<bool> existed = client->Delete(tenant, key);
    if (!existed.ok()) return Failed(command, existed.status());
    std::printf(*existed ? "deleted %lu\n" : "%lu was not stored\n", key);
    return 0;
  }
  return UsageError("unknown command '" + command + "'");
}

}  // namespace
}  // namespace zpaged

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "zpaged from the command line.\n\n"
      "  zpagectl --tenant=T put KEY [FILE]     store a 4096-byte page (stdin "
      "if no FILE)\n"
      "  zpagectl --tenant=T get KEY [FILE]     fetch it (stdout if no FILE)\n"
      "  zpagectl --tenant=T delete KEY\n"
      "  zpagectl --tenant=T reclaim PAGES      evict to the tenant's "
      "watchers\n"
      "  zpagectl [--tenant=T] stats [--json]   counters (all tenants if no "
      "--tenant)\n"
      "  zpagectl --tenant=T watch DIR          take evicted pages into "
      "DIR/KEY.page\n"
      "  zpagectl health                        exit 0 if the server is "
      "SERVING\n\n"
      "KEY is decimal or 0x-hex. --server, --tenant and --token default to "
      "$ZPAGED_SERVER, $ZPAGED_TENANT and $ZPAGED_TOKEN. Several servers "
      "(--server=A,B,C) make a tier: pages go to --replicas of them; stats, "
      "reclaim and health ask each.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  return zpaged::Run(args);
}
