#!/usr/bin/env python3
"""zpaged's own stream buffers are bounded (issue 11 #4): 32 connections x
128 GetStreams that send Gets and read nothing held 343-652 MiB of the
server's memory, 285 KiB a stream, because each stream queued up to 64
responses and kept every slot's page buffer. Now every stream's unwritten
responses are charged to --stream_buffer_bytes; past it a stream reads on
only when its own queue is empty.

Checked with --stream_buffer_bytes=16M: the server's resident growth stays
under 16 MiB + one response a stream + slack, and a well-behaved GetStream
of 300 Gets opened meanwhile is answered in full.

Usage: stream_buffer_test.py ZPAGED
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testing"))
from h2_client import (Conn, get_request, open_unread_get_streams,  # noqa: E402
                       put_pages, rss_mib, start_zpaged)

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what, flush=True)
    if not ok:
        failures.append(what)


server, port = start_zpaged(sys.argv[1], ["--stream_buffer_bytes=16M"])
try:
    put_pages(port, 100)
    before = rss_mib(server.pid)
    print("32 connections x 128 GetStreams, 128 Gets each, nothing read",
          flush=True)
    unread = open_unread_get_streams(port, 32, 128, 128, keys=100)
    time.sleep(3)  # let the server answer what it will
    grown = rss_mib(server.pid) - before
    # 16 MiB of budget, about 4 KiB more a stream, and room for gRPC's own
    # buffers and the reactors.
    check(grown < 16 + 4096 * 4 / 1024 + 48,
          f"resident memory grew {grown:.0f} MiB with 4,096 unread streams")
    answered, status, _ = Conn(port).call(
        "GetStream", [get_request(k % 100) for k in range(300)], seconds=30)
    check(answered == 300 and status == "0",
          f"a GetStream that reads is answered in full meanwhile "
          f"({answered} of 300, status {status})")
finally:
    server.kill()
    server.wait()

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
