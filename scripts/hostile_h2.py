#!/usr/bin/env python3
"""Hostile HTTP/2 clients against a real zpaged, with the server's resident
memory and CPU after each: the figures behind issue 11 #4 (a benchmark of
resilience, not a pass/fail test; tests/integration/h2_limits_test.py holds
the assertions).

  streams   one connection opens 100,000 streams that never end
  unread    32 connections x 128 GetStreams that send Gets and read nothing
  flood     tenant A keeps 8 connections x 16 PutBatch calls of 256 random
            pages in flight at the server's limit, its watcher never acking,
            while tenant B acks its evictions and Puts, for 25 s: B's Put
            latency and statuses, how often B's eviction stream is ended,
            and the server's peak resident memory
  reset     rapid reset (CVE-2023-44487's pattern): streams opened and
            reset at once, as fast as one client can, reconnecting whenever
            the server ends the connection, for three rounds of 10 s, while
            another connection measures unary Get latency; without the limit
            (as before issue 22) and with the default

Usage: scripts/hostile_h2.py [ZPAGED [SCENARIO...]]
  (default: build/server/zpaged, every scenario)
Needs Debian's python3-h2 (/usr/bin/python3).
"""
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "testing"))
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
from h2_client import (Conn, cpu_s, field, frame,  # noqa: E402
                       get_request, message_fields, open_unread_get_streams,
                       put_pages, put_request, reset_streams, rss_mib,
                       start_zpaged, varint)

zpaged = sys.argv[1] if len(sys.argv) > 1 else "build/server/zpaged"


def timed_call(conn, method, message):
    """One unary call on `conn`, read to its end: (grpc-status, ms). The
    status is None when the connection ended first; TimeoutError when no
    answer came within Conn's 30 s."""
    stream = conn.next_stream
    conn.next_stream += 2
    start = time.perf_counter()
    conn.h2.send_headers(stream, conn.headers(stream, method))
    conn.send(stream, frame(message), end_stream=True)
    conn.sock.settimeout(30)  # drain shortened it
    status = None
    while True:
        data = conn.sock.recv(1 << 20)
        if not data:
            return None, (time.perf_counter() - start) * 1e3
        for e in conn.h2.receive_data(data):
            if isinstance(e, h2.events.TrailersReceived) and \
                    e.stream_id == stream:
                status = dict(e.headers).get("grpc-status")
            if isinstance(e, h2.events.DataReceived):
                conn.h2.acknowledge_received_data(
                    e.flow_controlled_length, e.stream_id)
            if isinstance(e, h2.events.StreamEnded) and e.stream_id == stream:
                conn.flush()
                return status, (time.perf_counter() - start) * 1e3
        conn.flush()


def unary_get_p99(port, calls=300):
    """The 99th percentile of `calls` unary Gets one after another, in ms;
    infinite if one got no answer within Conn's 30 s."""
    conn = Conn(port)
    latencies = []
    for i in range(calls):
        try:
            _, ms = timed_call(conn, "Get", get_request(i % 100))
        except TimeoutError:
            return float("inf")
        latencies.append(ms)
    conn.sock.close()
    return statistics.quantiles(latencies, n=100)[98]


def start_server(flags=()):
    server, port = start_zpaged(zpaged, flags)
    put_pages(port, 100)
    return server, port


def report(what, server, before_rss, before_cpu, extra=""):
    print(f"{what}: resident {before_rss:.0f} -> {rss_mib(server.pid):.0f} "
          f"MiB, server CPU {cpu_s(server.pid) - before_cpu:.1f} s{extra}",
          flush=True)


def streams_scenario():
    server, port = start_server()
    rss, cpu = rss_mib(server.pid), cpu_s(server.pid)
    print("opening 100,000 streams on one connection", flush=True)
    conn = Conn(port)
    conn.lift_stream_limit()
    stream = 1
    try:
        for _ in range(100_000):
            conn.h2.send_headers(stream, conn.headers(stream, "GetStream"))
            stream += 2
            if stream % 2000 == 1:
                conn.flush()
                conn.drain()
        conn.flush()
    except (OSError, h2.exceptions.ProtocolError) as e:
        print(f"  the server ended the connection: {type(e).__name__}")
    conn.drain(1.0)
    report("100,000 streams on one connection", server, rss, cpu)
    server.kill()


def unread_scenario():
    server, port = start_server()
    rss, cpu = rss_mib(server.pid), cpu_s(server.pid)
    print("32 connections x 128 GetStreams, 128 Gets each, nothing read",
          flush=True)
    conns = open_unread_get_streams(port, 32, 128, 128, keys=100)
    time.sleep(3)
    report("4,096 unread GetStreams", server, rss, cpu)
    server.kill()


def rapid_reset(port, seconds):
    """Resets streams as fast as one client can for `seconds`, opening a new
    connection whenever the server ends one; returns (resets sent,
    connections the server ended)."""
    sent, ended, end = 0, 0, time.time() + seconds
    while time.time() < end:
        try:
            attacker = Conn(port)
            attacker.lift_stream_limit()
        except OSError:
            ended += 1
            continue
        while time.time() < end:
            done = reset_streams(attacker, 1000)
            sent += done
            if done < 1000:
                ended += 1
                break
        attacker.sock.close()
    return sent, ended


def reset_scenario(flags, label):
    server, port = start_server(flags)
    quiet_p99 = unary_get_p99(port)
    p99 = []
    measurer = threading.Thread(
        target=lambda: p99.append(unary_get_p99(port, calls=3000)))
    measurer.start()
    print(f"rapid reset, {label}: three rounds of 10 s", flush=True)
    for round in range(3):
        rss, cpu = rss_mib(server.pid), cpu_s(server.pid)
        sent, ended = rapid_reset(port, 10)
        report(f"  round {round + 1}", server, rss, cpu,
               f"; {sent:,} resets sent, {ended} connections ended by the "
               "server")
    measurer.join()
    print(f"  unary Get p99 {quiet_p99:.2f} ms quiet, {p99[0]:.2f} ms during",
          flush=True)
    server.kill()


def put_batch_request(tenant, first_key, count):
    """A PutBatchRequest of `count` random pages: none compresses, so each
    takes a whole page of the pool."""
    keys = b"".join(varint(first_key + i) for i in range(count))
    return (field(1, 2, tenant) + field(2, 2, keys) +
            field(3, 2, os.urandom(4096 * count)))


class Flooder(threading.Thread):
    """One connection of tenant A that keeps `depth` PutBatch calls of 256
    random pages in flight until `stop` is set; counts their statuses."""

    def __init__(self, port, index, depth, stop):
        super().__init__(daemon=True)
        self.port, self.index, self.depth, self.stop = port, index, depth, stop
        self.statuses = {}

    def run(self):
        key = self.index << 40
        while not self.stop.is_set():
            try:
                conn = Conn(self.port)
            except OSError:
                time.sleep(0.1)
                continue
            unsent, answered = {}, {}
            try:
                while not self.stop.is_set():
                    while len(unsent) + len(answered) < self.depth:
                        stream = conn.h2.get_next_available_stream_id()
                        conn.h2.send_headers(stream,
                                             conn.headers(stream, "PutBatch"))
                        unsent[stream] = frame(put_batch_request(b"A", key, 256))
                        answered[stream] = None
                        key += 256
                    for stream in list(unsent):
                        unsent[stream] = data = conn.send_some(stream,
                                                               unsent[stream])
                        if not data:
                            conn.h2.end_stream(stream)
                            del unsent[stream]
                    conn.flush()
                    events = conn.drain(0.02)
                    for e in events:
                        stream = getattr(e, "stream_id", None)
                        if isinstance(e, h2.events.ConnectionTerminated):
                            raise OSError("GOAWAY")
                        if isinstance(e, h2.events.DataReceived):
                            conn.h2.acknowledge_received_data(
                                e.flow_controlled_length, stream)
                        elif isinstance(e, h2.events.TrailersReceived):
                            status = dict(e.headers).get("grpc-status", "?")
                            self.count(status)
                            answered.pop(stream, None)
                            unsent.pop(stream, None)
                        elif isinstance(e, h2.events.StreamReset):
                            self.count(f"reset {e.error_code}")
                            answered.pop(stream, None)
                            unsent.pop(stream, None)
            except (OSError, h2.exceptions.ProtocolError):
                self.count("connection lost")
            conn.sock.close()

    def count(self, what):
        self.statuses[what] = self.statuses.get(what, 0) + 1


class AckingWatcher(threading.Thread):
    """Tenant B's eviction stream on its own connection: acks every page,
    and counts how often its stream is ended (subscribing again each time)."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.ends, self.acked = {}, 0

    def run(self):
        while not self.stop.is_set():
            try:
                conn = Conn(self.port)
                self.watch(conn)
            except (OSError, h2.exceptions.ProtocolError):
                self.ended("connection lost")
                time.sleep(0.1)

    def watch(self, conn):
        while not self.stop.is_set():
            stream = conn.h2.get_next_available_stream_id()
            conn.h2.send_headers(stream,
                                 conn.headers(stream, "WatchEvictions"))
            conn.h2.send_data(stream, frame(field(1, 2, b"B")))
            conn.flush()
            buffered, open_ = b"", True
            while open_ and not self.stop.is_set():
                for e in conn.drain(0.05):
                    if isinstance(e, h2.events.ConnectionTerminated):
                        self.ended(f"GOAWAY {e.error_code}")
                        raise OSError("GOAWAY")
                    if getattr(e, "stream_id", None) != stream:
                        continue
                    if isinstance(e, h2.events.DataReceived):
                        conn.h2.acknowledge_received_data(
                            e.flow_controlled_length, stream)
                        buffered += e.data
                        while len(buffered) >= 5:
                            size = int.from_bytes(buffered[1:5], "big")
                            if len(buffered) < 5 + size:
                                break
                            page = message_fields(buffered[5:5 + size])
                            buffered = buffered[5 + size:]
                            conn.h2.send_data(stream,
                                              frame(field(2, 0, page[4])))
                            self.acked += 1
                    elif isinstance(e, h2.events.TrailersReceived):
                        status = dict(e.headers).get("grpc-status", "?")
                        self.ended(f"status {status}")
                        open_ = False
                    elif isinstance(e, h2.events.StreamReset):
                        self.ended(f"RST_STREAM {e.error_code}")
                        open_ = False
                conn.flush()

    def ended(self, why):
        self.ends[why] = self.ends.get(why, 0) + 1


def flood_scenario(seconds=25):
    """Issue 22 #2: tenant A floods PutBatches that wait for evictions its
    watcher never acks, while tenant B acks its evictions and Puts."""
    server, port = start_server(["--max_memory_bytes=256M",
                                 "--grpc_memory_bytes=64M"])
    rss = rss_mib(server.pid)
    b_conn = Conn(port)
    quiet = [timed_call(b_conn, "Put", put_request(key, tenant=b"B"))[1]
             for key in range(200)]
    stop = threading.Event()
    watcher_b = AckingWatcher(port, stop)
    watcher_b.start()
    a_watch = Conn(port)  # A's watcher: subscribes, reads, never acks
    a_watch.h2.send_headers(1, a_watch.headers(1, "WatchEvictions"))
    a_watch.h2.send_data(1, frame(field(1, 2, b"A")))
    a_watch.flush()
    print(f"flood (--max_memory_bytes=256M --grpc_memory_bytes=64M): "
          f"tenant A, 8 connections x 16 PutBatch of 256 "
          f"random pages in flight, its watcher never acks; tenant B acks "
          f"and Puts; {seconds} s", flush=True)
    flooders = [Flooder(port, i, 16, stop) for i in range(8)]
    for f in flooders:
        f.start()
    latencies, statuses, peak = [], {}, rss
    end, key = time.time() + seconds, 1000
    while time.time() < end:
        a_watch.drain(0)
        try:
            status, ms = timed_call(b_conn, "Put",
                                    put_request(key, tenant=b"B"))
        except OSError as e:
            status, ms = type(e).__name__, 30_000
        if status is None or not status.isdigit():
            b_conn = Conn(port)
        latencies.append(ms)
        statuses[status] = statuses.get(status, 0) + 1
        key += 1
        peak = max(peak, rss_mib(server.pid))
        time.sleep(0.02)
    stop.set()
    a_statuses = {}
    for f in flooders:
        f.join(5)
        for k, v in f.statuses.items():
            a_statuses[k] = a_statuses.get(k, 0) + v
    watcher_b.join(5)
    for tenant in (b"A", b"B"):
        stats = Conn(port)
        stats.h2.send_headers(1, stats.headers(1, "Stats"))
        stats.h2.send_data(1, frame(field(1, 2, tenant)), end_stream=True)
        stats.flush()
        body = b"".join(e.data for e in stats.drain(0.5)
                        if isinstance(e, h2.events.DataReceived))
        fields = message_fields(body[5:])
        print(f"  tenant {tenant.decode()}: {fields.get(1, 0)} pages stored, "
              f"{fields.get(7, 0)} evicted, {fields.get(9, 0)} Puts refused",
              flush=True)
    print(f"  resident {rss:.0f} -> peak {peak:.0f} MiB; tenant A's "
          f"PutBatches: {a_statuses}", flush=True)
    print(f"  tenant B: Put p50 {statistics.median(quiet):.1f} ms quiet, "
          f"{statistics.median(latencies):.1f} ms during, statuses "
          f"{statuses}; its eviction stream ended "
          f"{sum(watcher_b.ends.values())} times {watcher_b.ends}, "
          f"{watcher_b.acked} pages acked", flush=True)
    server.kill()


scenarios = sys.argv[2:] or ["streams", "unread", "flood", "reset"]
if "streams" in scenarios:
    streams_scenario()
if "unread" in scenarios:
    unread_scenario()
if "flood" in scenarios:
    flood_scenario()
if "reset" in scenarios:
    reset_scenario(["--max_stream_resets_per_second=0"],
                   "no limit (as before)")
    reset_scenario([], "--max_stream_resets_per_second=1000 (the default)")
print(f"reproduce: /usr/bin/python3 scripts/hostile_h2.py {zpaged}")
