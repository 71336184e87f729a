#!/usr/bin/env python3
"""What one HTTP/2 connection may hold, checked frame by frame (issue 11 #4
and #5): a client that speaks raw HTTP/2 with python3-h2, as an attacker
would, instead of a gRPC library that keeps to the rules by itself.

  - the server advertises SETTINGS_MAX_CONCURRENT_STREAMS, and a client that
    opens streams past it (h2's own check lifted) has broken HTTP/2: gRPC
    ends its calls with UNAVAILABLE and closes its connection, while other
    connections go on;
  - a connection that carries no call, and only answers pings, is closed
    with GOAWAY after --max_connection_idle;
  - a message that does not parse ends its call with INVALID_ARGUMENT,
    naming it: a unary Get, and on each streaming method (PutStream
    [k1, garbage, k3] answers k1 and stores nothing after the garbage);
  - so does a message flagged compressed whose call names no algorithm
    (no grpc-encoding, "identity", or an unknown one), unary or streamed,
    while a message really compressed with gzip is served;
  - so does a unary call that carries two messages (issue 22), storing
    nothing; a unary Put is served at its client's end of stream.

Usage: h2_limits_test.py ZPAGED
"""
import gzip
import os
import socket
import subprocess
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "testing"))
import h2_client  # noqa: E402
from checks import check, finish  # noqa: E402
from h2_client import Conn, free_port  # noqa: E402

zpaged = sys.argv[1]

port = free_port()
server = subprocess.Popen(
    [zpaged, f"--listen=127.0.0.1:{port}", "--metrics_listen=",
     "--max_streams_per_connection=4", "--max_connection_idle=1s"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    def connect():
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("FAILED: zpaged did not start")
        sock.settimeout(0.2)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        return sock, conn

    def pump(sock, conn, seconds, until=None):
        """Reads and answers frames for up to `seconds`; returns events."""
        events, end = [], time.time() + seconds
        while time.time() < end:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                events.append("closed")
                break
            events += conn.receive_data(data)
            sock.sendall(conn.data_to_send())  # ping and settings acks
            if until and any(until(e) for e in events):
                break
        return events

    sock, conn = connect()
    pump(sock, conn, 2,
         lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
    advertised = conn.remote_settings.max_concurrent_streams
    check(advertised == 4,
          f"SETTINGS_MAX_CONCURRENT_STREAMS is advertised: {advertised}")

    # Open six calls although four are allowed: lift h2's own limit.
    conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 100
    conn.remote_settings.acknowledge()
    headers = [(":method", "POST"), (":scheme", "http"),
               (":path", "/zpaged.v1.PageStore/GetStream"),
               (":authority", f"127.0.0.1:{port}"),
               ("content-type", "application/grpc"), ("te", "trailers")]
    for _ in range(6):
        conn.send_headers(conn.get_next_available_stream_id(), headers)
    sock.sendall(conn.data_to_send())
    events = pump(sock, conn, 5, lambda e: e == "closed")
    statuses = [dict(e.headers).get("grpc-status") for e in events
                if isinstance(e, h2.events.ResponseReceived)]
    check("closed" in events, "the connection that broke the limit is closed")
    check(statuses and set(statuses) == {"14"},
          f"its calls ended UNAVAILABLE: {statuses}")

    # Another connection: it is served, and once idle (pings answered, no
    # call) it is sent GOAWAY.
    sock, conn = connect()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"),
                          (":path", "/grpc.health.v1.Health/Check"),
                          (":authority", f"127.0.0.1:{port}"),
                          ("content-type", "application/grpc"),
                          ("te", "trailers")])
    conn.send_data(1, b"\x00\x00\x00\x00\x00", end_stream=True)
    sock.sendall(conn.data_to_send())
    events = pump(sock, conn, 5,
                  lambda e: isinstance(e, h2.events.StreamEnded))
    trailers = [dict(e.headers) for e in events
                if isinstance(e, h2.events.TrailersReceived)]
    check(bool(trailers) and trailers[0].get("grpc-status") == "0",
          "a new connection is served (health Check OK)")

    # The calls below each take a fresh stream on one connection of the
    # shared raw client.
    client = Conn(port)
    call = client.call

    def put_request(key):
        return h2_client.put_request(key, tenant=b"h2")

    def get_request(key):
        return h2_client.get_request(key, tenant=b"h2")

    garbage = b"\xff\xff\xff"
    _, status, message = call("Get", [garbage])
    check(status == "3" and "zpaged.v1.GetRequest" in message,
          f"an unparseable Get is INVALID_ARGUMENT, naming the message: "
          f"{status} {message!r}")
    answered, status, message = call(
        "PutStream", [put_request(1), garbage, put_request(3)])
    check(answered == 1 and status == "3" and "message 2" in message,
          f"PutStream [k1, garbage, k3]: one answer, then INVALID_ARGUMENT "
          f"naming message 2 ({answered}, {status} {message!r})")
    check(call("Get", [get_request(1)])[1] == "0", "k1 was stored")
    check(call("Get", [get_request(3)])[1] == "5",
          "k3, after the garbage, was not (NOT_FOUND)")
    answered, status, _ = call("GetStream", [get_request(1), garbage])
    check(answered == 1 and status == "3",
          f"GetStream [k1, garbage]: one answer, then INVALID_ARGUMENT "
          f"({answered}, {status})")
    for encoding in (None, "identity", "bogus"):
        answered, status, message = call(
            "PutStream", [put_request(4)], compressed_flag=1, encoding=encoding)
        check(status == "3" and "flagged compressed" in message
              and answered == 0,
              f"a PutRequest flagged compressed, grpc-encoding {encoding}: "
              f"INVALID_ARGUMENT ({status} {message!r})")
        _, status, _ = call("Get", [get_request(1)], compressed_flag=1,
                            encoding=encoding)
        check(status == "3", f"likewise a unary Get ({status})")
    check(call("Get", [get_request(4)])[1] == "5",
          "nothing flagged compressed was stored")
    _, status, _ = call("Get", [gzip.compress(get_request(1))],
                        compressed_flag=1, encoding="gzip")
    check(status == "0", f"a Get really gzip-compressed is served ({status})")
    answered, status, _ = call("WatchEvictions", [garbage])
    check(status == "3",
          f"WatchEvictions [garbage]: INVALID_ARGUMENT ({status})")

    # Issue 22: a unary call carries one message. A Put of two stored the
    # first and dropped the second with status OK.
    for method, messages in (
            ("Put", [put_request(5), put_request(6)]),
            ("Get", [get_request(1), get_request(1)]),
            ("GetBatch", [h2_client.get_batch_request([1], tenant=b"h2")] * 2)):
        _, status, message = call(method, messages)
        check(status == "3" and "one request message" in message,
              f"a unary {method} carrying two messages is INVALID_ARGUMENT "
              f"({status} {message!r})")
    check(call("Get", [get_request(5)])[1] == "5" and
          call("Get", [get_request(6)])[1] == "5",
          "neither page of the two-message Put was stored")
    # A Put whose client keeps its stream open after the message is served
    # at its end of stream: until then another message may still come.
    stream = client.next_stream
    client.next_stream += 2
    client.h2.send_headers(stream, client.headers(stream, "Put"))
    client.send(stream, h2_client.frame(put_request(7)))
    waited = client.drain(0.5)
    check(not any(getattr(e, "stream_id", None) == stream and
                  isinstance(e, h2.events.TrailersReceived) for e in waited),
          "a Put whose stream is still open is not answered yet")
    client.h2.end_stream(stream)
    client.flush()
    trailers = {}
    for _ in range(40):
        for e in client.drain(0.05):
            if (isinstance(e, h2.events.TrailersReceived) and
                    e.stream_id == stream):
                trailers = dict(e.headers)
        if trailers:
            break
    check(trailers.get("grpc-status") == "0" and
          call("Get", [get_request(7)])[1] == "0",
          f"at its end of stream it is served and stored ({trailers})")
    started = time.time()
    events = pump(sock, conn, 15, lambda e: e == "closed" or
                  isinstance(e, h2.events.ConnectionTerminated))
    check(any(isinstance(e, h2.events.ConnectionTerminated) for e in events),
          f"the idle connection is sent GOAWAY "
          f"({time.time() - started:.1f} s after its last call)")
finally:
    server.terminate()
    server.wait(timeout=30)
finish()
