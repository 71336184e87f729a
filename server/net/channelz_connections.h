// What gRPC's channelz knows of the server connections of this process.
//
// gRPC 1.51 serves a stream its client opens and at once resets without the
// application ever seeing it (a unary call waits for its request message
// before it reaches a handler), so zpaged's handlers cannot count such
// streams. channelz is the one per-connection account of streams gRPC keeps
// and lets the application read: grpc/grpc.h's grpc_channelz_get_* calls,
// which answer in JSON. A stream counts as failed when it ends without the
// server having sent its end: the client reset or cancelled it, or the
// connection was cut. A call the server answers, with any status, succeeds.

#ifndef ZPAGED_SERVER_NET_CHANNELZ_CONNECTIONS_H_
#define ZPAGED_SERVER_NET_CHANNELZ_CONNECTIONS_H_

#include <cstdint>
#include <vector>

#include "server/net/peer_address.h"

namespace zpaged {

struct ConnectionStreams {
  int64_t socket_id = 0;  // channelz's, unique for the process' lifetime
  PeerAddress peer;
  int64_t streams_failed = 0;
};

// Calls that failed on all the gRPC servers of the process together (any
// call that did not end OK, resets included). One small answer, cheap to
// ask for often: a connection's failed streams never exceed it.
int64_t ServerCallsFailed();

// Every TCP connection of every gRPC server of the process, with its count
// of failed streams. Costs a JSON answer per connection.
std::vector<ConnectionStreams> ServerConnections();

}  // namespace zpaged

#endif  // ZPAGED_SERVER_NET_CHANNELZ_CONNECTIONS_H_
