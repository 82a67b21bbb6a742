"""An independent OTLP/HTTP sink (stands in for Loki's /otlp, Mimir's /otlp or Tempo's
OTLP/HTTP receiver).

A small `http.server` on 127.0.0.1 that records every POST: path, headers (a dict, and in
`header_list` in order with repeated names kept), the body as it came and decoded (gzip, zstd
or deflate undone, then protobuf or OTLP/JSON by Content-Type, into the request message of the
signal the path ends in, with the `opentelemetry-proto` package). It answers 200 with an
empty Export*ServiceResponse in the request's encoding, or `status` when set (to test
exporters' error handling). Shares no code with Redline.

    sink = OtlpHttpSink().start(); ... sink.requests_of("logs"); sink.stop()
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Optional

import otlp_signals
from otlp_signals import SIGNAL


@dataclass
class Posted:
    path: str
    headers: dict  # lower-case names
    raw: bytes  # the body as it came on the wire
    body: bytes  # decompressed
    signal: Optional[str]
    request: object  # the decoded request message, None when it did not decode
    error: str
    at: float
    header_list: tuple = ()  # (lower-case name, value) pairs as they came, repeated names kept


def _decompress(encoding: str, data: bytes) -> bytes:
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


class OtlpHttpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self._want_port = host, port
        self.port = None
        self.status = 200  # what to answer; settable while running
        self._lock = threading.Lock()
        self._posted: list[Posted] = []
        self._server = None
        self._thread = None

    def start(self) -> "OtlpHttpSink":
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header_list = tuple((k.lower(), v) for k, v in self.headers.items())
                headers = dict(header_list)
                ctype = headers.get("content-type", "").split(";")[0].strip()
                signal, request, error, body = None, None, "", b""
                try:
                    body = _decompress(headers.get("content-encoding", ""), raw)
                    signal = otlp_signals.signal_of_path(self.path)
                    if ctype == "application/json":
                        request = otlp_signals.from_json(signal, body)
                    else:
                        request = SIGNAL[signal].request.FromString(body)
                except Exception as e:  # noqa: BLE001 - kept for the test to report
                    error = repr(e)
                with sink._lock:
                    sink._posted.append(Posted(self.path, headers, raw, body, signal, request, error, time.time(),
                                              header_list))
                status = sink.status
                if status == 200 and signal is not None:
                    resp = SIGNAL[signal].response()
                    out = otlp_signals.to_json(resp) if ctype == "application/json" else resp.SerializeToString()
                    out_type = "application/json" if ctype == "application/json" else "application/x-protobuf"
                else:
                    out, out_type = b"", "text/plain"
                    status = status if status != 200 else 404
                self.send_response(status)
                self.send_header("Content-Type", out_type)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer((self.host, self._want_port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def posted(self) -> list:
        with self._lock:
            return list(self._posted)

    def posted_of(self, signal: str) -> list:
        return [p for p in self.posted() if p.signal == signal]

    def requests_of(self, signal: str) -> list:
        return [p.request for p in self.posted_of(signal) if p.request is not None]

    def counts(self) -> dict:
        """POSTs received so far per signal (None: a path that is no OTLP signal)."""
        out: dict = {}
        for p in self.posted():
            out[p.signal] = out.get(p.signal, 0) + 1
        return out

    def clear(self):
        with self._lock:
            self._posted.clear()
