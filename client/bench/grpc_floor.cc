// grpc-floor: how much of a zpaged Get's latency is gRPC's own. At one call
// in flight, it alternates a no-op call (grpc.health.v1 Check) and a Get of
// one stored page against the same server, and prints the latency of both:
// the no-op is the floor any gRPC service on this machine pays.
//
//   grpc-floor --server=127.0.0.1:50051 --calls=10000

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "client/bench/latency_histogram.h"
#include "client/lib/zpaged_client.h"
#include "contract/page.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "zpaged address");
ABSL_FLAG(std::string, tenant, "grpc-floor", "tenant for the one page");
ABSL_FLAG(std::string, token, "", "bearer token, if the server wants one");
ABSL_FLAG(int, calls, 10000, "calls of each kind");

namespace zpaged::bench {
namespace {

// Runs `call` and records how long it took; false if it failed.
template <typename Call>
bool Timed(LatencyHistogram& histogram, Call call) {
  const auto start = std::chrono::steady_clock::now();
  const bool ok = call();
  histogram.Record(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count());
  return ok;
}

int Main() {
  ClientOptions options;
  options.token = absl::GetFlag(FLAGS_token);
  std::unique_ptr<Client> client =
      Client::Connect(absl::GetFlag(FLAGS_server), options);
  const std::string tenant = absl::GetFlag(FLAGS_tenant);
  std::string page(kPageSize, '\0');
  for (size_t i = 0; i < page.size(); ++i) page[i] = "a text page "[i % 12];
  if (absl::Status put = client->Put(tenant, 0, page).status(); !put.ok()) {
    std::fprintf(stderr, "grpc-floor: %s\n", put.ToString().c_str());
    return 1;
  }
  const int calls = absl::GetFlag(FLAGS_calls);
  std::fprintf(stderr, "grpc-floor: %d no-op calls and %d Gets, alternating\n",
               calls, calls);
  LatencyHistogram noop, get;
  for (int i = 0; i < calls; ++i) {
    const bool ok =
        Timed(noop, [&] { return client->Serving().ok(); }) && Timed(get, [&] {
          absl::StatusOr<std::string> got = client->Get(tenant, 0);
          return got.ok() && *got == page;
        });
    if (!ok) {
      std::fprintf(stderr, "grpc-floor: a call failed or read wrong bytes\n");
      return 1;
    }
  }
  (void)client->Delete(tenant, 0);
  std::printf("%-22s %9s %9s %9s\n", "1 call in flight", "p50 us", "p99 us",
              "p99.9 us");
  for (auto [name, histogram] :
       {std::pair{"no-op (health Check)", &noop}, std::pair{"Get", &get}}) {
    std::printf(
        "%-22s %9.1f %9.1f %9.1f\n", name, histogram->PercentileMicros(0.5),
        histogram->PercentileMicros(0.99), histogram->PercentileMicros(0.999));
  }
  std::printf("Get / no-op: p50 %.2fx, p99 %.2fx\n",
              get.PercentileMicros(0.5) / noop.PercentileMicros(0.5),
              get.PercentileMicros(0.99) / noop.PercentileMicros(0.99));
  return 0;
}

}  // namespace
}  // namespace zpaged::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Latency of a zpaged Get beside a no-op gRPC call, one in flight.\n"
      "Usage: grpc-floor [--server=HOST:PORT] [--calls=N]");
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return zpaged::bench::Main();
}
