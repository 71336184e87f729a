#!/usr/bin/env python3
"""The listener outlives descriptor exhaustion (issue 11 #3), end to end:
zpaged runs with RLIMIT_NOFILE 64 (soft and hard, so it cannot raise it),
80 idle TCP connections are held for 2 s and closed, and then a gRPC client
must be served at once. Before zpaged owned its accept loop, gRPC's
listener stopped for good at the first EMFILE and `zpagectl health` failed
for as long as the process lived.

Also checked: --max_connections is held below the descriptor limit (the
server says so), and connections past the cap are closed on arrival rather
than left hanging.

Usage: descriptor_limit_test.py ZPAGED ZPAGECTL
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testing"))
from checks import check, finish  # noqa: E402

zpaged, zpagectl = sys.argv[1], sys.argv[2]

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(address, timeout="3s"):
    return subprocess.run([zpagectl, f"--server={address}",
                           f"--timeout={timeout}", "health"],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def tight_descriptors():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


port = free_port()
address = f"127.0.0.1:{port}"
log = tempfile.TemporaryFile()
server = subprocess.Popen(
    [zpaged, f"--listen={address}", "--metrics_listen=",
     "--max_connections=1000"],
    stdout=subprocess.DEVNULL, stderr=log, preexec_fn=tight_descriptors)
try:
    for _ in range(100):
        if health(address, "1s"):
            break
        time.sleep(0.1)
    else:
        sys.exit("FAILED: zpaged did not start")

    print("holding 80 idle connections for 2 s", flush=True)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
    time.sleep(2)
    closed_on_arrival = 0
    for s in idle:
        s.settimeout(0.05)
        try:
            if s.recv(1) == b"":
                closed_on_arrival += 1
        except (socket.timeout, ConnectionResetError):
            pass
    check(closed_on_arrival > 0,
          f"connections past the cap are closed on arrival "
          f"({closed_on_arrival} of 80)")
    for s in idle:
        s.close()

    check(health(address), "served again after the idle connections left")
    check(server.poll() is None, "zpaged still runs")
finally:
    server.terminate()
    server.wait(timeout=30)
    log.seek(0)
    text = log.read().decode(errors="replace")
    check("--max_connections lowered from 1000" in text,
          "the cap is held below the open files limit, and logged")

finish()
