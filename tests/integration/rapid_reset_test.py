#!/usr/bin/env python3
"""HTTP/2 rapid reset is bounded (issue 22 #3, CVE-2023-44487): a client
that opens streams and resets them at once, on one connection, took the
server to 2.4 GB and 8-13 s of CPU per 10 s, and was never stopped. Now a
connection whose client resets more than --max_stream_resets_per_second
(1,000 by default, as many at once) is closed and its address refused for
--stream_reset_bar. Checked with a raw HTTP/2 client, as an attacker would
send it:

  - a client that resets 500 streams at once keeps its connection;
  - an attacker's connection is closed well before 100,000 resets (before
    the guard, all 100,000 went through on one connection);
  - a new connection from the attacker's address is closed on arrival while
    barred, and served once the bar is over;
  - connections already open from that address are still served, and the
    server says what it did, naming the limit, in its log and on /metrics.

Usage: rapid_reset_test.py ZPAGED
"""
import os
import re
import socket
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testing"))
from checks import check, finish  # noqa: E402
from h2_client import (Conn, free_port, get_request,  # noqa: E402
                       put_pages, reset_streams, start_zpaged)


def get_ok(conn):
    _, status, message = conn.call("Get", [get_request(1)])
    return status == "0", f"status {status} {message}"


def closed_on_arrival(port):
    """Whether a new connection is closed by the server without a word."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    finally:
        sock.close()


log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log")
metrics_port = free_port()
server, port = start_zpaged(
    sys.argv[1],
    ["--stream_reset_bar=3s", f"--metrics_listen=127.0.0.1:{metrics_port}"],
    log=log)
try:
    put_pages(port, 10)
    bystander = Conn(port)
    ok, detail = get_ok(bystander)
    check(ok, f"a connection opened before the attack is served ({detail})")

    polite = Conn(port)
    polite.lift_stream_limit()
    reset_streams(polite, 500)
    time.sleep(1)  # several of the guard's checks
    ok, detail = get_ok(polite)
    check(ok, f"a client that reset 500 streams at once is still served "
          f"({detail})")

    print("rapid reset: up to 100,000 streams opened and reset at once on "
          "one connection", flush=True)
    attacker = Conn(port)
    attacker.lift_stream_limit()
    sent = reset_streams(attacker, 100_000)
    closed_at = time.time()
    check(sent < 100_000,
          f"the attacker's connection was closed after {sent:,} resets")
    check(closed_on_arrival(port),
          "a new connection from its address is closed on arrival")
    for name, conn in (("before the attack", bystander),
                       ("by the polite client", polite)):
        ok, detail = get_ok(conn)
        check(ok, f"the connection opened {name} is still served ({detail})")
    log.seek(0)
    said = [line for line in log if "closed the connection from 127.0.0.1"
            in line]
    check(len(said) == 1 and "--max_stream_resets_per_second=1000" in said[0],
          f"the server says what it did: {said}")
    scrape = urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    counted = re.findall(r'^zpaged_connections_(?:closed|refused)_total'
                         r'\{reason="(?:stream_resets|barred)"\} \d+$',
                         scrape, re.M)
    check('zpaged_connections_closed_total{reason="stream_resets"} 1' in
          counted and not any(line.endswith('"barred"} 0')
                              for line in counted),
          f"/metrics counts the closed connection and the refusal: {counted}")

    time.sleep(max(0.0, closed_at + 3.5 - time.time()))
    ok, detail = get_ok(Conn(port))
    check(ok, f"once the bar is over, a new connection is served ({detail})")
finally:
    server.kill()
    server.wait()

finish("rapid reset: all checks passed")
