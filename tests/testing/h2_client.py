"""A raw HTTP/2 gRPC client for hostile-client tests and figures, on
Debian's python3-h2: it speaks frames, so it can do what a gRPC library
would refuse to (ignore the advertised stream limit, never read, reset at
once). Also the server's resident memory and CPU time from /proc.
"""
import os
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def field(number, wire_type, payload):
    """One protobuf field: a varint (wire type 0) or bytes (2)."""
    head = varint(number << 3 | wire_type)
    if wire_type == 0:
        return head + varint(payload)
    return head + varint(len(payload)) + payload


def message_fields(data):
    """The varint fields of a protobuf message, by number (others are
    skipped): enough to read codes and keys from responses."""
    fields, i = {}, 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            fields[number], i = _read_varint(data, i)
        elif wire_type == 2:
            length, i = _read_varint(data, i)
            i += length
        elif wire_type == 1:
            i += 8
        elif wire_type == 5:
            i += 4
        else:
            break
    return fields


def _read_varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def get_request(key, tenant=b"vm-h2"):  # zpaged.v1.GetRequest, by hand
    return field(1, 2, tenant) + field(2, 0, key)


def get_batch_request(keys, tenant=b"vm-h2"):  # zpaged.v1.GetBatchRequest
    return field(1, 2, tenant) + field(2, 2, b"".join(varint(k) for k in keys))


def put_request(key, tenant=b"vm-h2"):  # zpaged.v1.PutRequest
    """A page that compresses, unlike a same-filled one, so it takes pool
    memory."""
    page = (f"guest page {key} " * 400).encode()[:4096]
    return field(1, 2, tenant) + field(2, 0, key) + field(3, 2, page)


def frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


class Conn:
    """One HTTP/2 connection to zpaged on 127.0.0.1:`port`."""

    def __init__(self, port, initial_window=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(30)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.h2.local_settings.max_concurrent_streams = 2**31 - 1
        if initial_window is not None:  # 0: the server may send no DATA
            self.h2.local_settings.initial_window_size = initial_window
        self.h2.initiate_connection()
        self.flush()
        self.port = port
        self.next_stream = 1

    def lift_stream_limit(self):
        """Ignores the server's MAX_CONCURRENT_STREAMS, as an attacker
        would: h2 otherwise refuses to open streams past it."""
        self.drain(0.2)  # the server's SETTINGS
        self.h2.remote_settings[
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 2**31 - 1
        self.h2.remote_settings.acknowledge()

    def call(self, method, messages, compressed_flag=0, encoding=None,
             seconds=5):
        """One call on a fresh stream, read to its end: returns (messages
        answered, grpc-status, grpc-message)."""
        stream = self.next_stream
        self.next_stream += 2
        headers = self.headers(stream, method)
        if encoding:
            headers.append(("grpc-encoding", encoding))
        self.h2.send_headers(stream, headers)
        self.send(stream, b"".join(
            bytes([compressed_flag]) + len(m).to_bytes(4, "big") + m
            for m in messages), end_stream=True)
        body, answer, end = b"", {}, time.time() + seconds
        while time.time() < end and "grpc-status" not in answer:
            for e in self.drain(0.05):
                if getattr(e, "stream_id", None) != stream:
                    continue
                if isinstance(e, h2.events.DataReceived):
                    body += e.data
                    self.h2.acknowledge_received_data(
                        e.flow_controlled_length, stream)
                elif isinstance(e, (h2.events.ResponseReceived,
                                    h2.events.TrailersReceived)):
                    answer.update(dict(e.headers))
            self.flush()
        answered = 0
        while len(body) >= 5:
            answered += 1
            body = body[5 + int.from_bytes(body[1:5], "big"):]
        return (answered, answer.get("grpc-status"),
                answer.get("grpc-message", ""))

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def headers(self, stream, method):
        return [(":method", "POST"), (":scheme", "http"),
                (":path", f"/zpaged.v1.PageStore/{method}"),
                (":authority", f"127.0.0.1:{self.port}"),
                ("content-type", "application/grpc"), ("te", "trailers")]

    def send_some(self, stream, data):
        """Queues as much of `data` as the server's flow-control windows let
        through now (flush sends it); returns the rest."""
        window = min(self.h2.local_flow_control_window(stream),
                     self.h2.max_outbound_frame_size)
        if window <= 0:
            return data
        self.h2.send_data(stream, data[:window])
        return data[window:]

    def send(self, stream, data, end_stream=False, seconds=30):
        """Sends `data` as the server's flow control lets it through;
        TimeoutError if its windows stay closed for `seconds`."""
        give_up = time.time() + seconds
        while data:
            data = self.send_some(stream, data)
            self.flush()
            if data:
                if time.time() > give_up:
                    raise TimeoutError("the server's window stayed closed")
                self.drain(0.01)
        if end_stream:
            self.h2.end_stream(stream)
            self.flush()

    def drain(self, seconds=0.0):
        """Reads what comes for `seconds`, answering pings; returns events."""
        events, end = [], time.time() + seconds
        self.sock.settimeout(max(seconds, 0.001))
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                break
            if not data:
                break
            try:
                events += self.h2.receive_data(data)
            except h2.exceptions.ProtocolError:
                break
            self.flush()
            if time.time() >= end:
                break
        return events


def reset_streams(conn, count):
    """Sends up to `count` HEADERS+RST_STREAM pairs on `conn`; returns how
    many were sent before the server ended the connection (count if it did
    not)."""
    stream = conn.next_stream
    for sent in range(count):
        try:
            if sent % 500 == 0:
                conn.flush()
                conn.sock.settimeout(0.001)
                try:
                    data = conn.sock.recv(1 << 20)
                    if not data:
                        return sent
                    conn.h2.receive_data(data)
                except (socket.timeout, BlockingIOError):
                    pass
            conn.h2.send_headers(stream, conn.headers(stream, "Get"))
            conn.h2.reset_stream(stream)
            stream += 2
        except (OSError, h2.exceptions.ProtocolError):
            return sent
    conn.next_stream = stream
    try:
        conn.flush()
    except OSError:
        return count
    return count


def start_zpaged(binary, flags=(), log=subprocess.DEVNULL):
    """Starts `binary` on a free loopback port with `flags`, its log to
    `log`; returns the process and the port once it accepts connections."""
    port = free_port()
    server = subprocess.Popen(
        [binary, f"--listen=127.0.0.1:{port}", "--metrics_listen=", *flags],
        stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, port


def put_pages(port, count):
    """Stores pages under keys 0 to `count` - 1 of tenant vm-h2."""
    conn = Conn(port)
    conn.call("PutStream", [put_request(key) for key in range(count)])
    conn.sock.close()


def open_unread_get_streams(port, connections, streams, gets, keys):
    """Opens `streams` GetStreams on each of `connections` connections, each
    sending `gets` Gets (of keys 0 to `keys` - 1) and reading nothing.
    Returns the connections, which stay open while referenced."""
    conns = []
    for _ in range(connections):
        conn = Conn(port)
        for s in range(streams):
            stream = 1 + 2 * s
            try:
                conn.h2.send_headers(stream, conn.headers(stream, "GetStream"))
                conn.h2.send_data(stream, b"".join(
                    frame(get_request(k % keys)) for k in range(gets)))
            except h2.exceptions.ProtocolError:
                break  # flow control or the server's limits
        conn.flush()
        conns.append(conn)
    return conns


def open_unread_get_batches(port, connections, calls, keys):
    """Sends `calls` GetBatch calls of `keys` keys (0 to `keys` - 1) on each
    of `connections` connections whose flow-control window is 0, so that no
    reply can be sent. Returns the connections, open while referenced."""
    conns = []
    request = frame(get_batch_request(range(keys)))
    for _ in range(connections):
        conn = Conn(port, initial_window=0)
        conn.lift_stream_limit()
        for c in range(calls):
            stream = conn.h2.get_next_available_stream_id()
            try:
                conn.h2.send_headers(stream, conn.headers(stream, "GetBatch"))
                conn.h2.send_data(stream, request, end_stream=True)
            except h2.exceptions.ProtocolError:
                break  # the server's limits
        conn.flush()
        conns.append(conn)
    return conns
