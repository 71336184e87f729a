#include "client/bench/page_client_target.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/bench/process_sample.h"
#include "client/lib/zpaged_client.h"
#include "client/tier/tier_client.h"
#include "contract/page.h"

namespace zpaged::bench {

PageClientTarget::PageClientTarget(PageClientTargetOptions options)
    : options_(std::move(options)) {}

std::string PageClientTarget::mode() const {
  const char* compressor = EdgeCompressorName(options_.compression.compressor);
  if (options_.servers.size() == 1) return absl::StrCat("client-", compressor);
  return absl::StrCat("tier-", compressor, " R=", options_.replicas, "/",
                      options_.servers.size());
}

std::string PageClientTarget::tenant() const {
  return absl::StrCat(options_.tenant,
                      options_.servers.size() == 1 ? "-client-" : "-tier-",
                      EdgeCompressorName(options_.compression.compressor));
}

absl::Status PageClientTarget::Connect(int channels) {
  ClientOptions client;
  client.token = options_.token;
  client.pages_per_call = options_.batch_pages;
  client.calls_in_flight = std::max(1, options_.depth / options_.batch_pages);
  client.compression = options_.compression;
  for (int c = 0; c < channels; ++c) {
    std::unique_ptr<PageClient> one;
    if (options_.servers.size() == 1) {
      one = Client::Connect(options_.servers[0], client);
    } else {
      absl::StatusOr<std::unique_ptr<TierClient>> tier = TierClient::Connect(
          options_.servers, client, {.replicas = options_.replicas});
      if (!tier.ok()) return tier.status();
      one = *std::move(tier);
    }
    absl::StatusOr<bool> serving = one->Serving();
    if (!serving.ok()) return serving.status();
    if (!*serving) return absl::UnavailableError("a server is not serving");
    clients_.push_back(std::move(one));
  }
  return absl::OkStatus();
}

absl::Status PageClientTarget::RunChannel(int channel, int depth,
                                          ChannelLoad& load) {
  PageClient& client = *clients_[channel];
  const std::string name = tenant();
  std::vector<uint64_t> keys;
  std::vector<KeyedPage> pages;
  std::string read(static_cast<size_t>(depth) * kPageSize, '\0');
  std::vector<uint8_t*> outs;
  for (int i = 0; i < depth; ++i) {
    outs.push_back(reinterpret_cast<uint8_t*>(read.data()) + i * kPageSize);
  }
  for (;;) {
    keys.clear();
    uint64_t key;
    while (keys.size() < static_cast<size_t>(depth) && load.NextKey(&key)) {
      keys.push_back(key);
    }
    if (keys.empty()) return absl::OkStatus();
    const Clock::time_point sent = Clock::now();
    switch (load.phase()) {
      case Phase::kPut: {
        pages.clear();
        for (uint64_t k : keys) pages.push_back({k, load.PageOf(k)});
        absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> put =
            client.PutMany(name, pages);
        if (!put.ok()) return put.status();
        for (size_t i = 0; i < keys.size(); ++i) {
          const absl::StatusOr<PutReply>& reply = (*put)[i];
          std::string error;
          if (!reply.ok()) {
            error = reply.status().ToString();
          } else if (reply->copies < static_cast<uint32_t>(options_.replicas)) {
            error = absl::StrCat("stored with ", reply->copies, " copies of ",
                                 options_.replicas);
          }
          load.Done(keys[i], sent, error);
        }
        break;
      }
      case Phase::kGet: {
        absl::StatusOr<std::vector<absl::Status>> got = client.GetMany(
            name, keys, absl::MakeConstSpan(outs.data(), keys.size()));
        if (!got.ok()) return got.status();
        for (size_t i = 0; i < keys.size(); ++i) {
          if ((*got)[i].ok()) {
            load.Done(keys[i], sent, "",
                      absl::string_view(reinterpret_cast<const char*>(outs[i]),
                                        kPageSize));
          } else {
            load.Done(keys[i], sent, (*got)[i].ToString());
          }
        }
        break;
      }
      case Phase::kDelete: {
        absl::StatusOr<std::vector<bool>> deleted =
            client.DeleteMany(name, keys);
        if (!deleted.ok()) return deleted.status();
        for (uint64_t k : keys) load.Done(k, sent, "");
        break;
      }
    }
  }
}

absl::StatusOr<std::optional<ServerSample>> PageClientTarget::SampleServer() {
  if (options_.server_pids.empty()) return std::nullopt;
  ServerSample total;
  for (pid_t pid : options_.server_pids) {
    absl::StatusOr<ServerSample> sample = SampleProcess(pid);
    if (!sample.ok()) return sample.status();
    total.cpu_seconds += sample->cpu_seconds;
    total.memory_bytes += sample->memory_bytes;
  }
  return total;
}

}  // namespace zpaged::bench
