#!/usr/bin/env python3
"""Hostile HTTP/2 clients against a real zpaged, with the server's resident
memory and CPU after each: the figures behind issue 11 #4 (a benchmark of
resilience, not a pass/fail test; tests/integration/h2_limits_test.py holds
the assertions).

  streams   one connection opens 100,000 streams that never end
  unread    32 connections x 128 GetStreams that send Gets and read nothing
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
from h2_client import (Conn, cpu_s, frame, get_request,  # noqa: E402
                       open_unread_get_streams, put_pages, reset_streams,
                       rss_mib, start_zpaged)

zpaged = sys.argv[1] if len(sys.argv) > 1 else "build/server/zpaged"


def unary_get_p99(port, calls=300):
    """The 99th percentile of `calls` unary Gets one after another, in ms;
    infinite if one got no answer within Conn's 30 s."""
    conn = Conn(port)
    latencies = []
    stream = 1
    for i in range(calls):
        start = time.perf_counter()
        conn.h2.send_headers(stream, conn.headers(stream, "Get"))
        conn.h2.send_data(stream, frame(get_request(i % 100)), end_stream=True)
        conn.flush()
        done = False
        while not done:
            try:
                data = conn.sock.recv(1 << 20)
            except TimeoutError:
                return float("inf")
            if not data:
                return float("nan")
            for e in conn.h2.receive_data(data):
                if isinstance(e, h2.events.StreamEnded) and e.stream_id == stream:
                    done = True
                if isinstance(e, h2.events.DataReceived):
                    conn.h2.acknowledge_received_data(
                        e.flow_controlled_length, e.stream_id)
            conn.flush()
        latencies.append((time.perf_counter() - start) * 1e3)
        stream += 2
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


scenarios = sys.argv[2:] or ["streams", "unread", "reset"]
if "streams" in scenarios:
    streams_scenario()
if "unread" in scenarios:
    unread_scenario()
if "reset" in scenarios:
    reset_scenario(["--max_stream_resets_per_second=0"],
                   "no limit (as before)")
    reset_scenario([], "--max_stream_resets_per_second=1000 (the default)")
print(f"reproduce: /usr/bin/python3 scripts/hostile_h2.py {zpaged}")
