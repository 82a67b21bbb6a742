"""When the `otlp` receiver ends a connection by itself, otelcol-contrib and Redline alike.

HTTP (Go's net/http server, confighttp v0.161): a kept-alive connection waits
`keepalive.idle_timeout` for its next request, whatever `read_header_timeout` says; a head
that starts and stalls is closed `read_header_timeout` after it began, without an answer;
`keepalive.enabled: false` answers `Connection: close` and closes. A request whose body is not
read within `read_timeout` of its head's first byte is answered 400 and its connection closed;
one whose answer cannot be written within `write_timeout` of the head's end gets none, and its
connection is closed. The `prometheus` exporter's `/metrics` server takes the same keys
(confighttp's) and keeps them the same way.

gRPC (grpc-go's keepalive.ServerParameters): `max_connection_idle` sends a GOAWAY to a
connection without calls, `max_connection_age` to any connection, within ±10% of the age. The
client here is grpcio, whose channel goes from READY to IDLE when the GOAWAY arrives.

Each check runs on both collectors with the same file; times are checked against the
settings, with room above them for a loaded machine.
"""

from __future__ import annotations

import socket
import threading
import time

import grpc

from pair import TRACE_EXPORT
import traffic

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        keepalive:
          server_parameters:
            {grpc_parameters}
      http:
        read_header_timeout: 300ms
        keepalive:
          {http_keepalive}
        {http_timeouts}
exporters:
  otlp:
    endpoint: 127.0.0.1:4317
    tls:
      insecure: true
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"""

SLACK = 3.0


def config(grpc_parameters: str = "max_connection_idle: 0s", http_keepalive: str = "idle_timeout: 1500ms",
           http_timeouts: str = "") -> str:
    return CONFIG.format(grpc_parameters=grpc_parameters, http_keepalive=http_keepalive,
                         http_timeouts=http_timeouts)


def body() -> bytes:
    return traffic.request(({"service.name": "lifetime"}, [traffic.span()])).SerializeToString()


def head(port: int, length: int) -> bytes:
    return (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/x-protobuf\r\nContent-Length: {length}\r\n\r\n").encode()


def read_response(sock: socket.socket) -> str:
    """One response on `sock`: its head (the body is read and dropped)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    raw_head, rest = data.split(b"\r\n\r\n", 1)
    text = raw_head.decode()
    length, chunked = 0, False
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() == "transfer-encoding":
            chunked = "chunked" in value.lower()

    def complete() -> bool:
        # An exposition's lines end in "\n" alone, so only the last chunk ends so.
        return rest.endswith(b"0\r\n\r\n") if chunked else len(rest) >= length

    while not complete():
        chunk = sock.recv(4096)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return text


def export(sock: socket.socket, port: int) -> str:
    payload = body()
    sock.sendall(head(port, len(payload)) + payload)
    return read_response(sock)


def seconds_to_close(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes `sock`, which must send nothing meanwhile."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        got = sock.recv(4096)
    except ConnectionResetError:
        got = b""
    assert got == b"", f"the server answered instead of closing: {got[:200]!r}"
    return time.monotonic() - start


def check_idle_and_head(side: str, port: int, request, head_start: bytes):
    """With read_header_timeout 0.3s and keepalive.idle_timeout 1.5s: a connection waits the
    idle deadline between requests, and a head that stalls is closed at the head deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert request(sock, port).startswith("HTTP/1.1 200"), side
        # Longer than read_header_timeout, shorter than idle_timeout: still open.
        time.sleep(0.9)
        assert request(sock, port).startswith("HTTP/1.1 200"), side
        took = seconds_to_close(sock, 1.5 + SLACK)
        assert took >= 1.4, f"{side} closed an idle connection after {took:.2f}s (idle_timeout 1.5s)"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert request(sock, port).startswith("HTTP/1.1 200"), side
        sock.sendall(head_start)
        took = seconds_to_close(sock, 0.3 + SLACK)
        assert 0.25 <= took < 1.4, f"{side} closed a stalled head after {took:.2f}s (read_header_timeout 0.3s)"


def test_http_idle_and_head_deadlines(pair_factory):
    pair = pair_factory(config())
    for side, c in pair.c.items():
        check_idle_and_head(side, c.ports["http"], export, b"POST /v1/traces HTTP/1.1\r\n")


PROMETHEUS = """\
receivers:
  otlp:
    protocols:
      grpc:
exporters:
  prometheus:
    endpoint: 127.0.0.1:9464
    read_header_timeout: 300ms
    keepalive:
      idle_timeout: 1500ms
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""


def scrape(sock: socket.socket, port: int) -> str:
    sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return read_response(sock)


def test_prometheus_scrape_connections(pair_factory):
    pair = pair_factory(PROMETHEUS)
    for side, c in pair.c.items():
        check_idle_and_head(side, c.ports["prom"], scrape, b"GET /metrics HTTP/1.1\r\n")


def test_http_keepalive_disabled(pair_factory):
    pair = pair_factory(config(http_keepalive="enabled: false"))
    for side, c in pair.c.items():
        port = c.ports["http"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            answer = export(sock, port)
            assert answer.startswith("HTTP/1.1 200"), side
            assert "connection: close" in answer.lower(), f"{side}: {answer}"
            seconds_to_close(sock, SLACK)


def export_in_two_halves(sock: socket.socket, port: int, pause: float | None) -> float:
    """Sends an export's head and half its body, and the rest `pause` seconds later (never, for
    None); answers when the head went out."""
    payload = body()
    half = len(payload) // 2
    sock.sendall(head(port, len(payload)))
    sent = time.monotonic()
    sock.sendall(payload[:half])
    if pause is not None:
        time.sleep(pause)
        try:
            sock.sendall(payload[half:])
        except OSError:
            pass  # closed meanwhile: what the server answered is the check
    return sent


def check_slow_body_within_deadline(side: str, sock: socket.socket, port: int):
    """A body that pauses, but ends before the 0.5s deadline, is answered."""
    export_in_two_halves(sock, port, 0.1)
    assert read_response(sock).startswith("HTTP/1.1 200"), side


def test_http_read_timeout(pair_factory):
    pair = pair_factory(config(http_timeouts="read_timeout: 500ms"))
    for side, c in pair.c.items():
        port = c.ports["http"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            check_slow_body_within_deadline(side, sock, port)
            # The next request's deadline runs from its own head, not from the connection's.
            time.sleep(0.6)
            sent = export_in_two_halves(sock, port, None)
            answer = read_response(sock)
            took = time.monotonic() - sent
            assert answer.startswith("HTTP/1.1 400"), f"{side}: {answer}"
            assert 0.45 <= took < 0.5 + SLACK, f"{side} answered {took:.2f}s after the head (read_timeout 0.5s)"
            seconds_to_close(sock, SLACK)


def test_http_write_timeout(pair_factory):
    pair = pair_factory(config(http_timeouts="write_timeout: 500ms"))
    for side, c in pair.c.items():
        port = c.ports["http"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            check_slow_body_within_deadline(side, sock, port)
            # Idle for longer than write_timeout: the deadline is the next request's own.
            time.sleep(0.8)
            assert export(sock, port).startswith("HTTP/1.1 200"), side
            # A body that ends after the deadline: no answer, the connection closed.
            sent = export_in_two_halves(sock, port, 1.2)
            seconds_to_close(sock, SLACK)
            took = time.monotonic() - sent
            assert took >= 0.45, f"{side} closed {took:.2f}s after the head (write_timeout 0.5s)"
    # otelcol reads the late body and takes its span before its answer fails; Redline closes
    # at the deadline and takes nothing: the client, answered by neither, sends it again.
    pair.wait_forwarded()
    assert {side: sink.span_count() for side, sink in pair.sinks.items()} == {"otelcol": 3, "redline": 2}


def kernel_timer(server_port: int, client_port: int):
    """The kernel's timer on the server's socket of a connection, from /proc/net/tcp: (kind,
    seconds until due); kind 2 is TCP keep-alive, times are in 1/100 s."""
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            if (local, remote) == (server_port, client_port):
                kind, when = fields[5].split(":")
                return int(kind, 16), int(when, 16) / 100
    return None


def test_accepted_connections_have_tcp_keepalive(pair_factory):
    """Go's listeners turn TCP keep-alive on for every accepted connection (first probe after
    15s of silence): a client that vanished without closing is found out."""
    pair = pair_factory(config())
    for side, c in pair.c.items():
        for key in ("grpc", "http"):
            with socket.create_connection(("127.0.0.1", c.ports[key]), timeout=10) as sock:
                client_port = sock.getsockname()[1]
                seen = None
                for _ in range(100):
                    seen = kernel_timer(c.ports[key], client_port)
                    if seen and seen[0] == 2:
                        break
                    time.sleep(0.02)
                assert seen and seen[0] == 2, f"{side} {key}: no keep-alive timer on the accepted socket: {seen}"
                assert 13 < seen[1] <= 15, f"{side} {key}: first probe due in {seen[1]}s"


class ChannelStates:
    """A grpcio channel's connectivity states, timed."""

    def __init__(self, port: int):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.seen: list[tuple[float, grpc.ChannelConnectivity]] = []
        self.changed = threading.Condition()
        self.channel.subscribe(self._on_state, try_to_connect=False)

    def _on_state(self, state):
        with self.changed:
            self.seen.append((time.monotonic(), state))
            self.changed.notify_all()

    def export(self):
        call = self.channel.unary_unary(TRACE_EXPORT, request_serializer=None, response_deserializer=None)
        call(body(), timeout=15)

    def idle_after(self, since: float, limit: float) -> float:
        """Seconds from `since` until the channel left READY for IDLE (the GOAWAY)."""
        def idle():
            # The state reported on subscribing is IDLE too: only IDLE after READY counts.
            ready = False
            for t, s in self.seen:
                if s == grpc.ChannelConnectivity.READY:
                    ready = True
                elif s == grpc.ChannelConnectivity.IDLE and ready and t >= since:
                    return t
            return None
        with self.changed:
            self.changed.wait_for(lambda: idle() is not None, timeout=limit)
            at = idle()
        assert at is not None, f"no GOAWAY within {limit}s: {self.seen}"
        return at - since

    def close(self):
        self.channel.close()


def test_grpc_max_connection_idle(pair_factory):
    pair = pair_factory(config(grpc_parameters="max_connection_idle: 1s"))
    for side, c in pair.c.items():
        states = ChannelStates(c.ports["grpc"])
        try:
            states.export()
            ended = time.monotonic()
            took = states.idle_after(ended, 1 + SLACK)
            assert took >= 0.9, f"{side} sent GOAWAY {took:.2f}s after the last call (max_connection_idle 1s)"
        finally:
            states.close()


def test_grpc_max_connection_age(pair_factory):
    pair = pair_factory(config(grpc_parameters="max_connection_age: 1500ms"))
    for side, c in pair.c.items():
        states = ChannelStates(c.ports["grpc"])
        try:
            opened = time.monotonic()
            states.export()
            # Calls all along: age is not idleness.
            while time.monotonic() - opened < 1.2:
                states.export()
                time.sleep(0.1)
            took = states.idle_after(opened, 1.65 + SLACK)
            assert took >= 1.3, f"{side} sent GOAWAY {took:.2f}s after connecting (max_connection_age 1.5s ±10%)"
        finally:
            states.close()
