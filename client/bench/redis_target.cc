#include "client/bench/redis_target.h"

#include <hiredis/hiredis.h>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/bench/in_flight_window.h"
#include "contract/page.h"
#include "server/codec/page_codec.h"

namespace zpaged::bench {
namespace {

// The value of `field` in the text of an INFO reply.
absl::StatusOr<double> InfoField(absl::string_view info,
                                 absl::string_view field) {
  for (absl::string_view line : absl::StrSplit(info, "\r\n")) {
    if (!absl::ConsumePrefix(&line, field) ||
        !absl::ConsumePrefix(&line, ":")) {
      continue;
    }
    double value;
    if (absl::SimpleAtod(line, &value)) return value;
  }
  return absl::InternalError(absl::StrCat("Redis INFO has no ", field));
}

}  // namespace

absl::StatusOr<RedisAddress> ParseRedisUrl(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "redis://") || rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a Redis address must look like redis://HOST:PORT, not \"", url, "\""));
  }
  RedisAddress address;
  const size_t colon = rest.rfind(':');
  address.host = std::string(rest.substr(0, colon));
  if (colon != absl::string_view::npos &&
      (!absl::SimpleAtoi(rest.substr(colon + 1), &address.port) ||
       address.port <= 0 || address.port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port in Redis address ", url));
  }
  return address;
}

void RedisTarget::ContextFree::operator()(redisContext* context) const {
  redisFree(context);
}

RedisTarget::RedisTarget(Flavour flavour, RedisAddress address,
                         std::optional<RedisAddress> replica)
    : flavour_(flavour),
      address_(std::move(address)),
      replica_(std::move(replica)) {}

RedisTarget::~RedisTarget() = default;

std::string RedisTarget::mode() const {
  switch (flavour_) {
    case Flavour::kRaw:
      return "raw";
    case Flavour::kLz4:
      return "lz4";
    case Flavour::kZstd:
      return "zstd";
  }
  return "unknown";
}

absl::StatusOr<RedisTarget::Connection> RedisTarget::Open(
    const RedisAddress& address) {
  Connection connection(redisConnect(address.host.c_str(), address.port));
  if (connection == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate a Redis context");
  }
  if (connection->err != 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to Redis at ",
                                               address.host, ":", address.port,
                                               ": ", connection->errstr));
  }
  return connection;
}

absl::Status RedisTarget::Connect(int channels) {
  connections_.clear();
  for (int i = 0; i < channels; ++i) {
    absl::StatusOr<Connection> connection = Open(address_);
    if (!connection.ok()) return connection.status();
    connections_.push_back(std::move(*connection));
  }
  absl::StatusOr<Connection> info = Open(address_);
  if (!info.ok()) return info.status();
  info_connection_ = std::move(*info);
  if (replica_.has_value()) {
    absl::StatusOr<Connection> replica = Open(*replica_);
    if (!replica.ok()) return replica.status();
    replica_connection_ = std::move(*replica);
  }
  return absl::OkStatus();
}

absl::Status RedisTarget::RunChannel(int channel, int depth,
                                     ChannelLoad& load) {
  redisContext* const redis = connections_[channel].get();
  const bool raw = flavour_ == Flavour::kRaw;
  const CodecOptions codec{.compressor = flavour_ == Flavour::kZstd
                                             ? PageCompressor::kZstd
                                             : PageCompressor::kLz4};
  InFlightWindow window(depth);
  bool sending = true;
  // Room for any page, compressed: both bounds are below two pages.
  std::array<uint8_t, 2 * kPageSize> compressed;
  std::array<uint8_t, kPageSize> page;
  const std::string flavour = mode();
  char name[64];

  while (sending || !window.empty()) {
    uint64_t key;
    if (sending && !window.full()) {
      if (!load.NextKey(&key)) {
        sending = false;
        continue;
      }
      const int name_size =
          std::snprintf(name, sizeof(name), "zpaged-bench:%s:%llu",
                        flavour.c_str(), static_cast<unsigned long long>(key));
      window.Push(key);
      int appended = REDIS_ERR;
      switch (load.phase()) {
        case Phase::kPut: {
          absl::string_view value = load.PageOf(key);
          if (!raw) {
            const Compressed c =
                CompressPage(codec,
                             absl::MakeConstSpan(
                                 reinterpret_cast<const uint8_t*>(value.data()),
                                 value.size()),
                             absl::MakeSpan(compressed));
            value = absl::string_view(
                reinterpret_cast<const char*>(compressed.data()), c.bytes);
          }
          appended = redisAppendCommand(redis, "SET %b %b", name,
                                        static_cast<size_t>(name_size),
                                        value.data(), value.size());
          break;
        }
        case Phase::kGet:
          appended = redisAppendCommand(redis, "GET %b", name,
                                        static_cast<size_t>(name_size));
          break;
        case Phase::kDelete:
          appended = redisAppendCommand(redis, "DEL %b", name,
                                        static_cast<size_t>(name_size));
          break;
      }
      if (appended != REDIS_OK) {
        return absl::UnavailableError(absl::StrCat("Redis: ", redis->errstr));
      }
      continue;
    }
    void* reply_memory = nullptr;
    if (redisGetReply(redis, &reply_memory) != REDIS_OK) {
      return absl::UnavailableError(absl::StrCat("Redis: ", redis->errstr));
    }
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(
        static_cast<redisReply*>(reply_memory), freeReplyObject);
    const InFlightWindow::Item item = window.Pop();
    if (reply->type == REDIS_REPLY_ERROR) {
      load.Done(item.key, item.sent, absl::string_view(reply->str, reply->len));
    } else if (load.phase() != Phase::kGet) {
      load.Done(item.key, item.sent, "");
    } else if (reply->type != REDIS_REPLY_STRING) {
      load.Done(item.key, item.sent, "NOT_FOUND: no such key");
    } else if (raw) {
      load.Done(item.key, item.sent, "",
                absl::string_view(reply->str, reply->len));
    } else {
      const absl::Status decoded = DecompressPage(
          codec.compressor == PageCompressor::kZstd ? PageEncoding::kZstd
                                                    : PageEncoding::kLz4,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(reply->str),
                              reply->len),
          absl::MakeSpan(page));
      load.Done(item.key, item.sent, decoded.ok() ? "" : decoded.ToString(),
                absl::string_view(reinterpret_cast<const char*>(page.data()),
                                  decoded.ok() ? page.size() : 0));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RedisTarget::Info(redisContext* connection) {
  void* reply_memory = redisCommand(connection, "INFO");
  if (reply_memory == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("Redis INFO: ", connection->errstr));
  }
  std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(
      static_cast<redisReply*>(reply_memory), freeReplyObject);
  if (reply->type != REDIS_REPLY_STRING) {
    return absl::InternalError("Redis INFO answered no text");
  }
  return std::string(reply->str, reply->len);
}

absl::StatusOr<std::optional<ServerSample>> RedisTarget::SampleServer() {
  std::vector<std::string> infos;
  absl::StatusOr<std::string> primary = Info(info_connection_.get());
  if (!primary.ok()) return primary.status();
  infos.push_back(*std::move(primary));
  if (replica_connection_ != nullptr) {
    // The replica counts once it holds what the primary acknowledged.
    absl::StatusOr<double> written = InfoField(infos[0], "master_repl_offset");
    if (!written.ok()) return written.status();
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    for (;;) {
      absl::StatusOr<std::string> replica = Info(replica_connection_.get());
      if (!replica.ok()) return replica.status();
      absl::StatusOr<double> applied = InfoField(*replica, "slave_repl_offset");
      if (applied.ok() && *applied >= *written) {
        infos.push_back(*std::move(replica));
        break;
      }
      if (absl::Now() > give_up) {
        return absl::DeadlineExceededError(
            "the Redis replica did not catch up with its primary in 30 s");
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ServerSample sample;
  for (const std::string& info : infos) {
    absl::StatusOr<double> user = InfoField(info, "used_cpu_user");
    absl::StatusOr<double> system = InfoField(info, "used_cpu_sys");
    absl::StatusOr<double> memory = InfoField(info, "used_memory");
    for (const auto* field : {&user, &system, &memory}) {
      if (!field->ok()) return field->status();
    }
    sample.cpu_seconds += *user + *system;
    sample.memory_bytes += static_cast<uint64_t>(*memory);
  }
  return sample;
}

}  // namespace zpaged::bench
