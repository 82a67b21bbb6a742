"""An HTTP proxy on 127.0.0.1 as corporate networks run them, for tests of clients that go
through one: `CONNECT host:port` opens a tunnel, and a request in absolute form
(`POST http://host:port/path`) is passed on to that host. It records the first request line
and `Proxy-Authorization` of every connection, so a test sees which way a client came.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Proxied:
    method: str
    target: str
    proxy_authorization: Optional[str]


def _pipe(a: socket.socket, b: socket.socket, limit_seconds: float = 30.0):
    """Copies both ways until either side closes (or nothing moves for `limit_seconds`)."""
    socks = [a, b]
    while True:
        ready, _, _ = select.select(socks, [], [], limit_seconds)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


class HttpProxy:
    def __init__(self):
        self.seen: list[Proxied] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                client = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(4096)
                    if not chunk or len(head) > 65536:
                        return
                    head += chunk
                end = head.index(b"\r\n\r\n") + 4
                lines = head[:end].decode("latin-1").split("\r\n")
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                auth = next((line.split(":", 1)[1].strip() for line in lines[1:]
                             if line.lower().startswith("proxy-authorization:")), None)
                with outer._lock:
                    outer.seen.append(Proxied(method, target, auth))
                if method == "CONNECT":
                    host, port = target.rsplit(":", 1)
                else:
                    authority = target.split("://", 1)[-1].split("/", 1)[0]
                    host, _, port = authority.rpartition(":")
                try:
                    upstream = socket.create_connection((host.strip("[]"), int(port or 80)), timeout=10)
                except OSError:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    return
                with upstream:
                    if method == "CONNECT":
                        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        if head[end:]:
                            upstream.sendall(head[end:])
                    else:
                        upstream.sendall(head)
                    _pipe(client, upstream)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "HttpProxy":
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def requests(self) -> list:
        with self._lock:
            return list(self.seen)
