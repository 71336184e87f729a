#!/usr/bin/env python3
"""Shutdown under load, the figures behind issue 11 #1: a client keeps
putting through SIGTERM while the tenant's only watcher never acks.

zpaged runs with --drain_on_shutdown --drain_deadline=5s --shutdown_grace=2s
and a 2 MiB tenant pool, so Puts evict to the silent watcher. Printed: the
Puts answered OK among those sent after SIGTERM, how long the process took
to exit (drain deadline + grace is the most it may take), and what its last
log lines say was not drained.

Usage: scripts/shutdown_figures.py [ZPAGED]   (default: build/server/zpaged)
Needs Debian's python3-h2 (/usr/bin/python3).
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests",
                                "testing"))
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
from h2_client import (Conn, field, frame, free_port, message_fields,  # noqa: E402
                       put_request)

zpaged = sys.argv[1] if len(sys.argv) > 1 else "build/server/zpaged"
port = free_port()
log_path = f"/tmp/zpaged-shutdown-{os.getpid()}.log"
with open(log_path, "w") as log:
    server = subprocess.Popen(
        [zpaged, f"--listen=127.0.0.1:{port}", "--metrics_listen=",
         "--drain_on_shutdown", "--drain_deadline=5s", "--shutdown_grace=2s",
         "--tenant_max_bytes=2M"],
        stdout=subprocess.DEVNULL, stderr=log)
time.sleep(1)

watcher = Conn(port)  # subscribes, then neither reads nor acks
watcher.h2.send_headers(1, watcher.headers(1, "WatchEvictions"))
watcher.h2.send_data(1, frame(field(1, 2, b"vm-h2")))
watcher.flush()
time.sleep(0.5)

putter = Conn(port)
putter.h2.send_headers(1, putter.headers(1, "PutStream"))
putter.flush()
sent_at, answers, body = [], [], b""
sigterm_at, exited_at, key = None, None, 0
start = time.time()
print("putting; SIGTERM after 2 s", flush=True)
try:
    while server.poll() is None and time.time() - start < 60:
        if sigterm_at is None and time.time() - start > 2:
            server.send_signal(signal.SIGTERM)
            sigterm_at = time.time()
        if putter.h2.local_flow_control_window(1) > 4200:
            putter.h2.send_data(1, frame(put_request(key)))
            sent_at.append(time.time())
            key += 1
            putter.flush()
        for e in putter.drain(0.001):
            if isinstance(e, h2.events.DataReceived) and e.stream_id == 1:
                body += e.data
                putter.h2.acknowledge_received_data(e.flow_controlled_length, 1)
        putter.flush()
        while len(body) >= 5 and len(body) >= 5 + int.from_bytes(body[1:5], "big"):
            n = int.from_bytes(body[1:5], "big")
            answers.append(message_fields(body[5:5 + n]).get(2, 0))  # code
            body = body[5 + n:]
except (OSError, h2.exceptions.ProtocolError):
    pass
server.wait()
exited_at = time.time()

after = [code for code, t in zip(answers, sent_at) if t > sigterm_at + 0.1]
print(f"Puts answered: {len(answers)}; of those sent 100 ms or more after "
      f"SIGTERM: {len(after)}, OK: {sum(1 for c in after if c == 0)}, "
      f"UNAVAILABLE: {sum(1 for c in after if c == 14)}")
print(f"exit {exited_at - sigterm_at:.1f} s after SIGTERM "
      f"(drain deadline 5 s + grace 2 s)")
with open(log_path) as log:
    lines = log.read().splitlines()
print("last log lines:\n  " + "\n  ".join(lines[-4:]))
os.unlink(log_path)
print(f"reproduce: /usr/bin/python3 scripts/shutdown_figures.py {zpaged}")
