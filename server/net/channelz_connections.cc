#include "server/net/channelz_connections.h"

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>

#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace zpaged {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// A channelz answer, parsed; empty if gRPC returned nothing or bad JSON.
Struct Parse(char* json) {
  Struct parsed;
  if (json == nullptr) return parsed;
  if (!google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) {
    parsed.Clear();
  }
  gpr_free(json);
  return parsed;
}

// gRPC 1.51 writes some of channelz.proto's names as in the .proto
// (tcpip_address) where its JSON mapping says lowerCamelCase (tcpipAddress):
// `name` is the mapping's, `proto_name` the other if it differs.
const Value* Field(const Struct& object, const char* name,
                   const char* proto_name = nullptr) {
  auto it = object.fields().find(name);
  if (it == object.fields().end() && proto_name != nullptr) {
    it = object.fields().find(proto_name);
  }
  return it == object.fields().end() ? nullptr : &it->second;
}

const Struct& Object(const Struct& object, const char* name,
                     const char* proto_name = nullptr) {
  const Value* value = Field(object, name, proto_name);
  return value != nullptr && value->has_struct_value()
             ? value->struct_value()
             : Struct::default_instance();
}

// channelz writes 64-bit counts as strings and leaves out zeros.
int64_t Count(const Struct& object, const char* name) {
  const Value* value = Field(object, name);
  if (value == nullptr) return 0;
  if (value->has_number_value()) {
    return static_cast<int64_t>(value->number_value());
  }
  int64_t count = 0;
  return absl::SimpleAtoi(value->string_value(), &count) ? count : 0;
}

// Visits the objects of `page`'s list `list` with their ids (the field `id`
// of their field `ref`, or of themselves when `ref` is empty); returns the
// id to start the next page at (0 after the last page).
template <typename Visit>
int64_t ForEach(const Struct& page, const char* list, const char* ref,
                const char* id, Visit visit) {
  int64_t last = 0;
  if (const Value* items = Field(page, list);
      items != nullptr && items->has_list_value()) {
    for (const Value& item : items->list_value().values()) {
      if (!item.has_struct_value()) continue;
      const Struct& object = item.struct_value();
      const int64_t item_id =
          Count(*ref == '\0' ? object : Object(object, ref), id);
      last = std::max(last, item_id);
      visit(object, item_id);
    }
  }
  const Value* end = Field(page, "end");
  const bool at_end = end == nullptr || !end->has_bool_value() ||
                      end->bool_value() || last == 0;
  return at_end ? 0 : last + 1;
}

template <typename Visit>
void ForEachServer(Visit visit) {
  int64_t next = 0;
  do {
    next = ForEach(Parse(grpc_channelz_get_servers(next)), "server", "ref",
                   "serverId", visit);
  } while (next != 0);
}

}  // namespace

int64_t ServerCallsFailed() {
  // Asked ten times a second on every server, so the one page a process'
  // few servers fit in is read as text: each server's count is the only
  // "callsFailed" in it. More servers than a page holds are parsed.
  char* const json = grpc_channelz_get_servers(0);
  if (json == nullptr) return 0;
  const absl::string_view text(json);
  int64_t failed = 0;
  const bool one_page = absl::StrContains(text, "\"end\":true");
  if (one_page) {
    constexpr absl::string_view kKey = "\"callsFailed\":\"";
    for (size_t at = text.find(kKey); at != absl::string_view::npos;
         at = text.find(kKey, at)) {
      at += kKey.size();
      const size_t end = text.find('"', at);
      int64_t count = 0;
      if (absl::SimpleAtoi(text.substr(at, end - at), &count)) {
        failed += count;
      }
    }
  }
  gpr_free(json);
  if (one_page) return failed;
  ForEachServer([&failed](const Struct& server, int64_t) {
    failed += Count(Object(server, "data"), "callsFailed");
  });
  return failed;
}

std::vector<ConnectionStreams> ServerConnections() {
  std::vector<ConnectionStreams> connections;
  ForEachServer([&connections](const Struct&, int64_t server_id) {
    int64_t next = 0;
    do {
      next = ForEach(
          Parse(grpc_channelz_get_server_sockets(server_id, next, 100)),
          "socketRef", "", "socketId",
          [&connections](const Struct&, int64_t socket_id) {
            const Struct answer = Parse(grpc_channelz_get_socket(socket_id));
            const Struct& socket = Object(answer, "socket");
            const Struct& remote = Object(Object(socket, "remote"),
                                          "tcpipAddress", "tcpip_address");
            const Value* ip = Field(remote, "ipAddress", "ip_address");
            std::string ip_bytes;
            if (ip == nullptr ||
                !absl::Base64Unescape(ip->string_value(), &ip_bytes)) {
              return;  // a unix socket
            }
            const std::optional<PeerAddress> peer = PeerAddress::FromBytes(
                ip_bytes, static_cast<uint16_t>(Count(remote, "port")));
            if (!peer.has_value()) return;
            connections.push_back(ConnectionStreams{
                .socket_id = socket_id,
                .peer = *peer,
                .streams_failed =
                    Count(Object(socket, "data"), "streamsFailed")});
          });
    } while (next != 0);
  });
  return connections;
}

}  // namespace zpaged
