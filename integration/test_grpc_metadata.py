"""Oversized gRPC metadata fails only its own call, with a clear status.

A client (gRPC's C core, through grpcio) sends calls with 100 KiB of metadata interleaved with
ordinary ones, all on one channel (one HTTP/2 connection). The large calls end
RESOURCE_EXHAUSTED, naming the limit and the setting that raises it; every ordinary call on
the same connection succeeds, and exactly their spans are counted. Before, the HTTP/2 layer
answered metadata over 16 KiB by closing the whole connection (GOAWAY), failing every call in
flight on it.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import helpers
from redline_config import pipeline
from redline_run import Redline, request, serve_module, span

CALLS = "traces_spanmetrics_calls_total"
ROUNDS = 40


@pytest.fixture(scope="module")
def rl(redline_bin, module_procs, module_sink, tmp_path_factory):
    r = Redline(module_procs, redline_bin, tmp_path_factory.mktemp("metadata"), pipeline(http=False),
                sink=module_sink.port)
    yield from serve_module(r, module_sink, "calls with oversized metadata")


def test_oversized_metadata_fails_only_its_own_call(rl):
    body = request("metadata", [span("ok")]).SerializeToString()

    def call(i: int):
        # Random hex: HPACK's Huffman code cannot shrink it much.
        metadata = (("x-big", secrets.token_hex(50 * 1024)),) if i % 4 == 0 else ()
        try:
            rl.export(body, metadata=metadata, timeout=10)
            return "OK"
        except grpc.RpcError as e:
            return e.code(), e.details()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(ROUNDS)))
    large = [r for i, r in enumerate(results) if i % 4 == 0]
    ordinary = [r for i, r in enumerate(results) if i % 4 != 0]
    assert ordinary == ["OK"] * len(ordinary), results
    for code, details in large:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
        assert "over the limit of 16384 bytes" in details, details
        assert "max_header_list_size_kib" in details, details
    assert rl.alive(), rl.proc.log_text()

    k = helpers.label_key({"service_name": "metadata", "span_name": "ok", "span_kind": "SPAN_KIND_SERVER",
                           "status_code": "STATUS_CODE_UNSET"})
    helpers.wait_until(lambda: rl.series(CALLS).get(k) == float(len(ordinary)), 10,
                       "the ordinary calls' spans counted", alive=rl.proc)
    helpers.wait_until(lambda: rl.sink.span_count() == len(ordinary), 10, "the ordinary calls' spans forwarded")
