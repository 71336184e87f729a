// nbdkit-zpaged-plugin: exports one zpaged tenant as an NBD block device,
// with a local spill file for what zpaged evicts. The storage logic is
// BlockStore's; this file is nbdkit's callbacks and the bridge's life:
//
//   config, config_complete   parse and check the keys (--help lists them)
//   get_ready (before fork)   open and lock the spill file; is zpaged there?
//   after_fork                connect, bring index and zpaged into agreement,
//                             start the eviction watcher's thread
//   cleanup                   stop the watcher, sync the spill file
//
// gRPC starts threads, which fork would kill, so nothing of gRPC exists
// before after_fork; get_ready's reachability check is a plain connect.

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/lib/zpaged_client.h"
#include "client/nbd/block_store.h"
#include "client/nbd/bridge_metrics.h"
#include "client/nbd/spill_file.h"
#include "client/tier/member_source.h"
#include "client/tier/tier_client.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace zpaged::nbd {
namespace {

struct Config {
  std::string server;
  // A tier instead: each NAME=HOST:PORT or HOST:PORT, and the copies of
  // each block (0: two with two or more servers, else one). The list may
  // come from a source followed while the bridge runs: a DNS name
  // (servers=dns:HOST:PORT) or a file (servers_file=PATH).
  std::vector<std::string> servers;
  std::string servers_dns;
  std::string servers_file;
  int replicas = 0;
  // Repair on a tier: how long a change in which servers answer must hold
  // before the device is swept, and how many blocks a second it checks.
  absl::Duration repair_after = absl::Seconds(5);
  int repair_rate = 20000;
  std::string metrics;  // HOST:PORT of /metrics; empty: none
  // What a flush and a FUA write promise: disk (the blocks are on the
  // local disk, synced: what NBD means) or memory (every copy is stored,
  // in zpaged's memory or the spill file).
  bool flush_to_disk = true;
  std::string tenant;
  int64_t size = -1;
  std::string spill;
  // A write's blocks go in PutBatch calls of 64, four at once, so that
  // zpaged compresses them on several threads (measured: 273 MB/s for
  // 1 MiB writes against 173 as one call); reads likewise.
  // The bridge is its tenant's one writer: its watcher is exclusive.
  ClientOptions client{
      .pages_per_call = 64, .calls_in_flight = 4, .exclusive_watch = true};
  std::string tls_ca, tls_cert, tls_key;  // paths
};

struct Bridge {
  Config config;
  std::unique_ptr<SpillFile> spill;
  std::unique_ptr<PageClient> client;
  TierClient* tier = nullptr;  // client, when it is a tier
  std::unique_ptr<BlockStore> store;
  absl::Notification recovered;  // the store may take evicted pages
  std::thread watcher;
  std::thread repairer;
  RepairProgress repair;
  std::atomic<uint64_t> failed_requests{0};
  std::unique_ptr<MemberReconciler> reconciler;  // with a source of servers
  std::thread membership;
  std::unique_ptr<BridgeMetrics> metrics;  // with metrics=
  std::thread metrics_refresher;
  std::atomic<bool> stopping{false};
};

Bridge& TheBridge() {
  static Bridge* bridge = new Bridge;  // lives as long as the plugin
  return *bridge;
}

void Log(const std::string& message) { nbdkit_error("%s", message.c_str()); }

// What the bridge is doing, for an operator who asks (nbdkit -v).
void Note(const std::string& message) { nbdkit_debug("%s", message.c_str()); }

// Reports `status` to nbdkit with the errno its code calls for.
int Fail(const absl::Status& status) {
  Log(std::string(status.message()));
  switch (status.code()) {
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kInvalidArgument:
      nbdkit_set_error(EINVAL);
      break;
    case absl::StatusCode::kInternal:  // the spill file's disk
      nbdkit_set_error(std::strstr(std::string(status.message()).c_str(),
                                   "No space") != nullptr
                           ? ENOSPC
                           : EIO);
      break;
    default:
      nbdkit_set_error(EIO);
  }
  return -1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Connects to `target` (HOST:PORT, [V6]:PORT or unix:PATH) and hangs up:
// whether anything listens there, with no gRPC (see the top of the file).
absl::Status CheckReachable(const std::string& target) {
  int fd = -1;
  if (absl::string_view path = target; absl::ConsumePrefix(&path, "unix:")) {
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
      return absl::InvalidArgumentError("unix socket path too long");
    }
    std::memcpy(address.sun_path, path.data(), path.size());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&address),
                           sizeof(address)) == 0) {
      close(fd);
      return absl::OkStatus();
    }
  } else {
    const size_t colon = target.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("server=", target, " is not HOST:PORT"));
    }
    std::string host = target.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    const std::string port = target.substr(colon + 1);
    addrinfo hints = {};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve zpaged's address ", target));
    }
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
      close(fd);
      fd = -1;
    }
    freeaddrinfo(found);
    if (fd >= 0) {
      close(fd);
      return absl::OkStatus();
    }
  }
  const int error = errno;
  if (fd >= 0) close(fd);
  return absl::UnavailableError(absl::StrCat(
      "zpaged is not reachable at ", target, ": ", std::strerror(error)));
}

// Subscribes the bridge's (exclusive) eviction watcher: evicted pages go
// to the spill file, once the store has recovered.
absl::StatusOr<std::unique_ptr<EvictionWatcher>> Subscribe(Bridge* bridge) {
  return bridge->client->Watch(
      bridge->config.tenant, [bridge](uint64_t key, absl::string_view page) {
        while (!bridge->recovered.WaitForNotificationWithTimeout(
            absl::Milliseconds(100))) {
          if (bridge->stopping.load()) return false;
        }
        return bridge->store->OnEvicted(key, page);
      });
}

// Keeps the WatchEvictions stream that `first` began open for the tenant,
// reconnecting after zpaged restarts, until the bridge stops. A
// subscription ends when the spill file could not take a page (its disk
// full): the next one, a second later, finds out whether it can again.
void RunWatcher(Bridge* bridge, std::unique_ptr<EvictionWatcher> first) {
  bool said_down = false;
  while (!bridge->stopping.load()) {
    absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher =
        first != nullptr ? std::move(first) : Subscribe(bridge);
    if (watcher.ok()) {
      if (said_down) nbdkit_debug("zpaged eviction watcher connected again");
      said_down = false;
      while (!bridge->stopping.load() &&
             !(*watcher)->WaitFor(absl::Milliseconds(200))) {
      }
      (*watcher)->Stop();
      if (absl::IsFailedPrecondition((*watcher)->Wait())) {
        for (int i = 0; i < 10 && !bridge->stopping.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
      continue;
    }
    if (!said_down) {
      Log(absl::StrCat("eviction watcher cannot connect, retrying: ",
                       watcher.status().message()));
      said_down = true;
    }
    for (int i = 0; i < 5 && !bridge->stopping.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

// Which members do not answer, for the log: "zpaged-1, zpaged-2" or "none".
std::string Unreachable(const TierClient& tier) {
  std::string names;
  for (const std::string& name : tier.member_names()) {
    if (tier.suspect(name))
      absl::StrAppend(&names, names.empty() ? "" : ", ", name);
  }
  return names.empty() ? "none" : names;
}

// Blocks a repair call checks: small, so that a guest's read never waits
// long behind one on a server (256 at a time tripled the p99 of reads at
// one in flight on two cores; scripts/tier_bench.sh).
constexpr uint64_t kRepairChunk = 32;

// One pass over the device: every block in zpaged brought back to its
// copies, at most repair_rate blocks a second. False if the servers that
// answer changed meanwhile (the pass starts again) or the bridge stops.
bool SweepOnce(Bridge* bridge, uint64_t changes) {
  const absl::Time start = absl::Now();
  bridge->repair.running = true;
  struct Done {
    RepairProgress& repair;
    ~Done() { repair.running = false; }
  } done{bridge->repair};
  RepairResult total;
  RepairProgress& progress = bridge->repair;
  for (uint64_t first = 0; first < bridge->spill->blocks();
       first += kRepairChunk) {
    if (bridge->stopping.load() ||
        bridge->tier->reachability_changes() != changes) {
      return false;
    }
    absl::StatusOr<RepairResult> repaired =
        bridge->store->Repair(first, kRepairChunk);
    if (!repaired.ok()) {
      Log(absl::StrCat("repair: blocks from ", first, ": ",
                       repaired.status().message(), "; trying again later"));
      return false;
    }
    total.checked += repaired->checked;
    total.copied += repaired->copied;
    total.lost += repaired->lost;
    total.short_of_copies += repaired->short_of_copies;
    progress.checked += repaired->checked;
    progress.copied += repaired->copied;
    progress.lost += repaired->lost;
    progress.unchecked -=
        std::min<uint64_t>(progress.unchecked.load(), repaired->checked);
    const absl::Time due =
        start + absl::Seconds(static_cast<double>(total.checked) /
                              bridge->config.repair_rate);
    while (!bridge->stopping.load() && absl::Now() < due) {
      absl::SleepFor(std::min(due - absl::Now(), absl::Milliseconds(100)));
    }
  }
  progress.sweeps++;
  progress.unchecked = 0;
  progress.short_of_copies = total.short_of_copies;
  Note(absl::StrCat("repair: done in ",
                    absl::FormatDuration(absl::Now() - start), ": checked ",
                    total.checked, " blocks in zpaged, made ", total.copied,
                    " copies again, ", total.lost, " lost, ",
                    total.short_of_copies, " still short of copies"));
  return true;
}

// On a tier: sweeps the device each time the set of servers that answer
// changes and holds for repair_after (a server lost, or back, perhaps
// empty), and repair_after after a server evicted a copy of a block that
// another still held, until the bridge stops. Evictions go on under memory
// pressure, so they do not restart a sweep: the next one makes their
// copies again.
void RunRepairer(Bridge* bridge) {
  uint64_t seen = bridge->tier->reachability_changes();
  uint64_t evicted_seen = bridge->tier->counters().spare_copies_evicted;
  absl::Time changed_at = absl::Now();
  bool due = false;
  while (!bridge->stopping.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t now = bridge->tier->reachability_changes();
    if (now != seen) {
      seen = now;
      changed_at = absl::Now();
      due = true;
      // Until the sweep has checked them, any block may be short a copy.
      bridge->repair.unchecked = bridge->store->Census().in_zpaged;
      continue;
    }
    if (const uint64_t evicted = bridge->tier->counters().spare_copies_evicted;
        evicted != evicted_seen) {
      if (!due) changed_at = absl::Now();
      bridge->repair.short_of_copies += evicted - evicted_seen;
      evicted_seen = evicted;
      due = true;
    }
    if (!due || absl::Now() - changed_at < bridge->config.repair_after) {
      continue;
    }
    Note(absl::StrCat(
        "repair: servers not answering: ", Unreachable(*bridge->tier),
        "; bringing every block back "
        "to ",
        bridge->config.replicas, " copies"));
    due = !SweepOnce(bridge, now);
  }
}

// Brings /metrics up to date every few seconds until the bridge stops.
void RunMetricsRefresher(Bridge* bridge) {
  while (!bridge->stopping.load()) {
    bridge->metrics->Refresh(*bridge->store, *bridge->spill, bridge->tier,
                             bridge->repair, bridge->failed_requests);
    for (int i = 0; i < 20 && !bridge->stopping.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

int ConfigKey(const char* key, const char* value) {
  Config& config = TheBridge().config;
  const std::string k = key;
  if (k == "server") {
    config.server = value;
  } else if (k == "servers") {
    if (absl::string_view dns = value; absl::ConsumePrefix(&dns, "dns:")) {
      config.servers_dns = std::string(dns);
    } else {
      config.servers = absl::StrSplit(value, ',', absl::SkipEmpty());
    }
  } else if (k == "servers_file") {
    config.servers_file = value;
  } else if (k == "metrics") {
    config.metrics = value;
  } else if (k == "repair_after") {
    int seconds;
    if (!absl::SimpleAtoi(value, &seconds) || seconds < 0) {
      nbdkit_error("repair_after=%s is not a whole number of seconds", value);
      return -1;
    }
    config.repair_after = absl::Seconds(seconds);
  } else if (k == "repair_rate") {
    if (!absl::SimpleAtoi(value, &config.repair_rate) ||
        config.repair_rate < 1) {
      nbdkit_error("repair_rate=%s is not a number of blocks a second >= 1",
                   value);
      return -1;
    }
  } else if (k == "replicas") {
    if (!absl::SimpleAtoi(value, &config.replicas) || config.replicas < 1 ||
        config.replicas > 3) {
      nbdkit_error("replicas=%s is not 1, 2 or 3", value);
      return -1;
    }
  } else if (k == "tenant") {
    config.tenant = value;
  } else if (k == "size") {
    config.size = nbdkit_parse_size(value);
    if (config.size == -1) return -1;  // nbdkit said why
  } else if (k == "spill") {
    config.spill = value;
  } else if (k == "token") {
    char* token = nullptr;
    if (nbdkit_read_password(value, &token) == -1) return -1;
    config.client.token = token;
    std::free(token);
  } else if (k == "tls_ca") {
    config.tls_ca = value;
  } else if (k == "tls_cert") {
    config.tls_cert = value;
  } else if (k == "tls_key") {
    config.tls_key = value;
  } else if (k == "flush") {
    if (std::string(value) != "disk" && std::string(value) != "memory") {
      nbdkit_error("flush=%s: flush=disk or flush=memory", value);
      return -1;
    }
    config.flush_to_disk = std::string(value) == "disk";
  } else if (k == "compress") {
    std::optional<EdgeCompressor> compressor = ParseEdgeCompressor(value);
    if (!compressor.has_value()) {
      nbdkit_error("compress=%s: compress=lz4, zstd or none", value);
      return -1;
    }
    config.client.compression.compressor = *compressor;
  } else if (k == "timeout") {
    int seconds;
    if (!absl::SimpleAtoi(value, &seconds) || seconds < 1) {
      nbdkit_error("timeout=%s is not a whole number of seconds >= 1", value);
      return -1;
    }
    config.client.timeout = absl::Seconds(seconds);
  } else {
    nbdkit_error("unknown parameter '%s'; 'nbdkit zpaged --help' lists them",
                 key);
    return -1;
  }
  return 0;
}

int ConfigComplete() {
  Config& config = TheBridge().config;
  const int sources = !config.server.empty() +
                      (!config.servers.empty() || !config.servers_dns.empty()) +
                      !config.servers_file.empty();
  if (sources != 1) {
    nbdkit_error(
        "give one of server= (one zpaged), servers= or servers_file= (a "
        "tier), not %s",
        sources == 0 ? "none" : "several");
    return -1;
  }
  for (auto [name, missing] : {std::pair{"tenant", config.tenant.empty()},
                               std::pair{"size", config.size < 0},
                               std::pair{"spill", config.spill.empty()}}) {
    if (missing) {
      nbdkit_error("the %s= parameter is required", name);
      return -1;
    }
  }
  if (config.size == 0 || config.size % kBlockSize != 0) {
    nbdkit_error("size=%" PRId64 " is not a positive multiple of %u",
                 config.size, kBlockSize);
    return -1;
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    nbdkit_error("tls_cert= and tls_key= go together");
    return -1;
  }
  for (auto [path, into] :
       {std::pair{&config.tls_ca, &config.client.tls_root_certs},
        std::pair{&config.tls_cert, &config.client.tls_cert_chain},
        std::pair{&config.tls_key, &config.client.tls_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = ReadFile(*path);
    if (!pem.ok()) return Fail(pem.status());
    *into = *std::move(pem);
  }
  if (!config.client.tls_cert_chain.empty() &&
      config.client.tls_root_certs.empty()) {
    nbdkit_error("tls_cert= needs tls_ca= too");
    return -1;
  }
  return 0;
}

// The servers the source lists now: the DNS name's addresses, the file's
// lines, or the fixed list.
absl::StatusOr<std::vector<std::string>> ListServers(const Config& config) {
  if (!config.servers_dns.empty()) return ResolveMembers(config.servers_dns);
  if (!config.servers_file.empty()) return ReadMembersFile(config.servers_file);
  return config.servers;
}

// replicas=: two by default on a tier of two or more, and never more than
// the servers (one for server=).
absl::Status SettleReplicas(Config& config) {
  const size_t servers = config.servers.empty() ? 1 : config.servers.size();
  if (config.replicas == 0) config.replicas = servers >= 2 ? 2 : 1;
  if (static_cast<size_t>(config.replicas) > servers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replicas=", config.replicas, " needs as many servers; ", servers,
        config.servers.empty() ? " with server=" : " listed"));
  }
  return absl::OkStatus();
}

int GetReady() {
  Bridge& bridge = TheBridge();
  absl::StatusOr<std::unique_ptr<SpillFile>> spill = SpillFile::Open(
      bridge.config.spill, bridge.config.size, bridge.config.tenant);
  if (!spill.ok()) return Fail(spill.status());
  bridge.spill = *std::move(spill);
  if (bridge.config.server.empty()) {
    absl::StatusOr<std::vector<std::string>> servers =
        ListServers(bridge.config);
    if (!servers.ok()) return Fail(servers.status());
    bridge.config.servers = *std::move(servers);
  }
  if (absl::Status replicas = SettleReplicas(bridge.config); !replicas.ok()) {
    return Fail(replicas);
  }
  if (!bridge.config.server.empty()) {
    if (absl::Status reachable = CheckReachable(bridge.config.server);
        !reachable.ok()) {
      return Fail(reachable);
    }
    return 0;
  }
  // A tier serves while one server does; the others are said.
  int reachable = 0;
  for (const std::string& server : bridge.config.servers) {
    const std::string address = server.substr(
        server.find('=') == std::string::npos ? 0 : server.find('=') + 1);
    absl::Status up = CheckReachable(address);
    if (up.ok()) {
      ++reachable;
    } else {
      Log(std::string(up.message()));
    }
  }
  if (reachable == 0) {
    return Fail(absl::UnavailableError("no server of servers= is reachable"));
  }
  return 0;
}

// Connects the bridge's client: one server's, or a tier's whose groups are
// 64 neighbouring blocks (the generation in a block's key is below them).
absl::Status ConnectClient(Bridge& bridge) {
  const Config& config = bridge.config;
  if (config.servers.empty()) {
    std::unique_ptr<Client> client =
        Client::Connect(config.server, config.client);
    absl::StatusOr<bool> serving = client->Serving();
    if (!serving.ok() || !*serving) {
      return absl::UnavailableError(absl::StrCat(
          "zpaged at ", config.server, " is not serving: ",
          serving.ok() ? "it is shutting down" : serving.status().message()));
    }
    bridge.client = std::move(client);
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<TierClient>> tier =
      TierClient::Connect(config.servers, config.client,
                          TierOptions{.replicas = config.replicas,
                                      .group_shift = kGenerationBits + 6});
  if (!tier.ok()) return tier.status();
  bridge.tier = tier->get();
  bridge.client = *std::move(tier);
  if (!config.servers_dns.empty() || !config.servers_file.empty()) {
    // Connect kept the servers' order.
    std::map<std::string, std::string> known;
    const std::vector<std::string> names = bridge.tier->member_names();
    for (size_t i = 0; i < config.servers.size(); ++i) {
      known[config.servers[i]] = names[i];
    }
    bridge.reconciler = std::make_unique<MemberReconciler>(
        bridge.tier, config.client,
        TierOptions{.replicas = config.replicas,
                    .group_shift = kGenerationBits + 6},
        std::move(known));
  }
  return absl::OkStatus();
}

// Follows the source of servers (DNS every 10 s, a file every 2 s) until
// the bridge stops, applying what changed.
void RunMembership(Bridge* bridge) {
  const int tenths = bridge->config.servers_dns.empty() ? 20 : 100;
  while (!bridge->stopping.load()) {
    for (int i = 0; i < tenths && !bridge->stopping.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    absl::StatusOr<std::vector<std::string>> servers =
        ListServers(bridge->config);
    if (!servers.ok()) {
      Log(absl::StrCat("servers: ", servers.status().message(),
                       "; keeping the members as they are"));
      continue;
    }
    if (const std::string changed = bridge->reconciler->Reconcile(*servers);
        !changed.empty()) {
      Note(absl::StrCat("servers: ", changed));
    }
  }
}

// How long a starting bridge waits for its tenant's other watcher to go.
constexpr absl::Duration kClaimPatience = absl::Seconds(5);

int AfterFork() {
  Bridge& bridge = TheBridge();
  if (absl::Status connected = ConnectClient(bridge); !connected.ok()) {
    return Fail(connected);
  }
  bridge.store = std::make_unique<BlockStore>(
      bridge.spill.get(), bridge.client.get(), bridge.config.tenant,
      bridge.config.replicas, Log);
  // Claim the tenant before touching it: a new spill file's recovery
  // deletes whatever the tenant holds, and a second bridge must not do
  // that to a live one's pages, nor write beside it.
  // A bridge restarted on its spill file may find its last run's watcher
  // still going away at zpaged: it is given a few seconds.
  absl::StatusOr<std::unique_ptr<EvictionWatcher>> watcher = Subscribe(&bridge);
  for (const absl::Time give_up = absl::Now() + kClaimPatience;
       absl::IsFailedPrecondition(watcher.status()) && absl::Now() < give_up;
       watcher = Subscribe(&bridge)) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  if (absl::IsFailedPrecondition(watcher.status())) {
    bridge.stopping = true;
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "tenant '", bridge.config.tenant,
        "' already has a live NBD bridge (one bridge per tenant): ",
        watcher.status().message())));
  }
  // Any other failure (zpaged down): the watcher thread keeps trying.
  std::unique_ptr<EvictionWatcher> first =
      watcher.ok() ? *std::move(watcher) : nullptr;
  if (absl::Status recovered = bridge.store->Recover(); !recovered.ok()) {
    bridge.stopping = true;
    return Fail(recovered);
  }
  bridge.recovered.Notify();
  if (!bridge.config.metrics.empty()) {
    absl::StatusOr<std::unique_ptr<BridgeMetrics>> metrics =
        BridgeMetrics::Serve(bridge.config.metrics);
    if (!metrics.ok()) return Fail(metrics.status());
    bridge.metrics = *std::move(metrics);
    bridge.metrics_refresher = std::thread(RunMetricsRefresher, &bridge);
  }
  bridge.watcher = std::thread(RunWatcher, &bridge, std::move(first));
  if (bridge.tier != nullptr) {
    bridge.repairer = std::thread(RunRepairer, &bridge);
  }
  if (bridge.reconciler != nullptr) {
    bridge.membership = std::thread(RunMembership, &bridge);
  }
  return 0;
}

void Cleanup() {
  Bridge& bridge = TheBridge();
  bridge.stopping = true;
  if (bridge.watcher.joinable()) bridge.watcher.join();
  if (bridge.repairer.joinable()) bridge.repairer.join();
  if (bridge.membership.joinable()) bridge.membership.join();
  if (bridge.metrics_refresher.joinable()) bridge.metrics_refresher.join();
  if (bridge.store != nullptr) {
    if (absl::Status synced = bridge.store->Flush(); !synced.ok()) {
      Log(std::string(synced.message()));
    }
  }
}

void* Open(int /*readonly*/) { return &TheBridge(); }

BlockStore& Store(void* handle) { return *static_cast<Bridge*>(handle)->store; }

int64_t GetSize(void* handle) {
  return static_cast<int64_t>(Store(handle).size_bytes());
}

int Yes(void*) { return 1; }
// Native: a FUA write makes only its own blocks durable (flush=), where
// nbdkit's emulation would flush the whole device.
int CanFua(void*) { return NBDKIT_FUA_NATIVE; }

int BlockSize(void*, uint32_t* minimum, uint32_t* preferred,
              uint32_t* maximum) {
  *minimum = kBlockSize;
  *preferred = kBlockSize;
  *maximum = 32 << 20;
  return 0;
}

// A request's answer to nbdkit: 0, or its failure, counted for /metrics.
int Answer(const absl::Status& status) {
  if (status.ok()) return 0;
  TheBridge().failed_requests++;
  return Fail(status);
}

int Pread(void* handle, void* buf, uint32_t count, uint64_t offset,
          uint32_t /*flags*/) {
  return Answer(Store(handle).Read(
      offset, absl::MakeSpan(static_cast<uint8_t*>(buf), count)));
}

// What a flush or FUA write of [offset, offset + length) waits for.
absl::Status MakeDurable(void* handle, uint64_t offset, uint64_t length) {
  if (static_cast<Bridge*>(handle)->config.flush_to_disk) {
    return Store(handle).Persist(offset, length);
  }
  return Store(handle).Flush();
}

int Pwrite(void* handle, const void* buf, uint32_t count, uint64_t offset,
           uint32_t flags) {
  absl::Status written = Store(handle).Write(
      offset, absl::MakeConstSpan(static_cast<const uint8_t*>(buf), count));
  if (written.ok() && (flags & NBDKIT_FLAG_FUA)) {
    written = MakeDurable(handle, offset, count);
  }
  return Answer(written);
}

int Flush(void* handle, uint32_t) {
  return Answer(MakeDurable(handle, 0, Store(handle).size_bytes()));
}

int Trim(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  absl::Status trimmed = Store(handle).Trim(offset, count);
  if (trimmed.ok() && (flags & NBDKIT_FLAG_FUA)) {
    trimmed = MakeDurable(handle, offset, count);
  }
  return Answer(trimmed);
}

// Always fast: zeroing whole blocks only changes the index.
int Zero(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  absl::Status zeroed = Store(handle).Zero(offset, count);
  if (zeroed.ok() && (flags & NBDKIT_FLAG_FUA)) {
    zeroed = MakeDurable(handle, offset, count);
  }
  return Answer(zeroed);
}

int Extents(void* handle, uint32_t count, uint64_t offset, uint32_t flags,
            nbdkit_extents* extents) {
  for (const Extent& e : Store(handle).Extents(offset, count)) {
    const uint32_t type =
        (e.hole ? NBDKIT_EXTENT_HOLE : 0) | (e.zero ? NBDKIT_EXTENT_ZERO : 0);
    if (nbdkit_add_extent(extents, e.offset, e.length, type) == -1) return -1;
    if (flags & NBDKIT_FLAG_REQ_ONE) break;
  }
  return 0;
}

nbdkit_plugin MakePlugin() {
  nbdkit_plugin plugin = {};
  plugin.name = "zpaged";
  plugin.longname = "zpaged: a block device kept in zpaged, spilling locally";
  plugin.version = "1";
  plugin.description =
      "Exports one zpaged tenant as a block device of 4 KiB blocks; pages "
      "zpaged evicts go to a local spill file.";
  plugin.config = ConfigKey;
  plugin.config_complete = ConfigComplete;
  plugin.config_help =
      "server=HOST:PORT     zpaged's address; also [V6]:PORT, unix:PATH\n"
      "servers=NAME=HOST:PORT,...  instead of server=: a tier of zpaged "
      "servers, each\n"
      "                     by its --node_name (or HOST:PORT, asked its "
      "name at start)\n"
      "servers=dns:HOST:PORT  a tier of the addresses HOST resolves to, "
      "re-resolved every\n"
      "                     10 s (a Kubernetes headless Service)\n"
      "servers_file=PATH    a tier listed in PATH, a server a line, re-read "
      "every 2 s\n"
      "replicas=N           copies of each block on a tier, 1 to 3 "
      "(default 2)\n"
      "repair_after=SECONDS on a tier: how long a change in the servers "
      "that answer must\n"
      "                     hold before blocks are copied again (default "
      "5)\n"
      "repair_rate=N        blocks checked a second by repair (default "
      "20000)\n"
      "metrics=HOST:PORT    serve Prometheus metrics at /metrics there "
      "(default: none)\n"
      "tenant=NAME          (required) the zpaged tenant this device uses; "
      "one bridge per tenant\n"
      "size=SIZE            (required) device size, a multiple of 4096; "
      "takes K, M, G, T\n"
      "spill=PATH           (required) the spill file: block index and "
      "evicted pages; made if absent\n"
      "token=PASSWORD       bearer token for zpaged: +FILE reads it from "
      "FILE, - from stdin\n"
      "tls_ca=PATH          serve over TLS: the CA zpaged's certificate "
      "chains to\n"
      "tls_cert=PATH tls_key=PATH  mutual TLS: this bridge's certificate and "
      "key\n"
      "flush=disk|memory    what a flush or FUA write waits for: the "
      "blocks on the\n"
      "                     local disk (default), or every copy stored, in "
      "zpaged too\n"
      "compress=lz4|zstd|none  blocks are compressed here, before they go "
      "to zpaged\n"
      "                     (default lz4); none leaves it to zpaged\n"
      "timeout=SECONDS      deadline of each zpaged call (default 30)";
  plugin.get_ready = GetReady;
  plugin.after_fork = AfterFork;
  plugin.cleanup = Cleanup;
  plugin.open = Open;
  plugin.get_size = GetSize;
  plugin.block_size = BlockSize;
  plugin.can_write = Yes;
  plugin.can_flush = Yes;
  plugin.can_trim = Yes;
  plugin.can_zero = Yes;
  plugin.can_fast_zero = Yes;
  plugin.can_fua = CanFua;
  plugin.can_multi_conn = Yes;
  plugin.can_extents = Yes;
  plugin.pread = Pread;
  plugin.pwrite = Pwrite;
  plugin.flush = Flush;
  plugin.trim = Trim;
  plugin.zero = Zero;
  plugin.extents = Extents;
  plugin.errno_is_preserved = 0;
  return plugin;
}

nbdkit_plugin plugin = MakePlugin();

}  // namespace
}  // namespace zpaged::nbd

NBDKIT_REGISTER_PLUGIN(zpaged::nbd::plugin)
