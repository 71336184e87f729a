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
from checks import check, finish  # noqa: E402
from h2_client import (Conn, get_batch_request, get_request,  # noqa: E402
                       open_unread_get_batches, open_unread_get_streams,
                       put_pages, rss_mib, start_zpaged)


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
    del unread
finally:
    server.kill()
    server.wait()

# Issue 22 #1: a client that lets the server send nothing (an HTTP/2 window
# of 0) and asks GetBatch after GetBatch made it hold a 1 MiB reply for
# each: 8 connections x 128 calls held 919 MiB. The replies now share the
# stream buffers' limit; past it GetBatch is RESOURCE_EXHAUSTED.
server, port = start_zpaged(sys.argv[1], ["--stream_buffer_bytes=16M"])
try:
    put_pages(port, 256)
    before = rss_mib(server.pid)
    print("8 connections x 128 GetBatch calls of 256 keys, window 0",
          flush=True)
    unread = open_unread_get_batches(port, 8, 128, 256)
    time.sleep(3)
    grown = rss_mib(server.pid) - before
    check(grown < 16 + 48,
          f"resident memory grew {grown:.0f} MiB with 1,024 unread "
          f"GetBatch replies of 1 MiB")
    _, status, _ = Conn(port).call(
        "GetBatch", [get_batch_request(range(256))], seconds=10)
    check(status == "8",
          f"a GetBatch past the limit is RESOURCE_EXHAUSTED (status {status})")
    del unread
    time.sleep(1)  # the connections closed: their replies are released
    answered, status, _ = Conn(port).call(
        "GetBatch", [get_batch_request(range(256))], seconds=10)
    check(status == "0" and answered == 1,
          f"once they are gone GetBatch is answered (status {status})")
finally:
    server.kill()
    server.wait()

finish()
