// Bytes on the wire, from the kernel's own count: the loopback interface's
// transmitted bytes. A benchmark whose client and server talk over
// loopback, one target at a time, sees its traffic both ways in the
// difference across a phase, with every header (TCP/IP, HTTP/2, gRPC or
// RESP) and acknowledgement: the same count for zpaged and Redis.

#ifndef ZPAGED_CLIENT_BENCH_WIRE_BYTES_H_
#define ZPAGED_CLIENT_BENCH_WIRE_BYTES_H_

#include <cstdint>
#include <optional>

namespace zpaged::bench {

// /sys/class/net/lo/statistics/tx_bytes now; nullopt where it cannot be
// read.
std::optional<uint64_t> LoopbackBytes();

}  // namespace zpaged::bench

#endif  // ZPAGED_CLIENT_BENCH_WIRE_BYTES_H_
