"""Hostile input against the redline binary, over gRPC and HTTP (docs/architecture.md section 5).

Oversized messages, decompression bombs, nesting deeper than protobuf's recursion limit and
garbage are each refused with the right code; none of them is counted or forwarded, the
process survives them all with bounded memory, and a valid request still works afterwards.
(The receiver's Rust tests cover the same cases in-process; this is the proof on the binary.)

Limits are set small in the config (gRPC 1 MiB, HTTP 1 MiB) so the payloads stay cheap.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
import zlib

import grpc
import pytest
import requests

import helpers
from redline_config import pipeline
from redline_run import Redline, nested_array_value, request, serve_module, span, with_span_attribute

MIB = 1024 * 1024
CALLS = "traces_spanmetrics_calls_total"

CONFIG = pipeline(grpc_settings="max_recv_msg_size_mib: 1", http_settings="max_request_body_size: 1048576")


@pytest.fixture(scope="module")
def rl(redline_bin, module_procs, module_sink, tmp_path_factory):
    r = Redline(module_procs, redline_bin, tmp_path_factory.mktemp("hostile"), CONFIG, sink=module_sink.port)
    yield from serve_module(r, module_sink, "the hostile-input tests")


def refused_grpc(r, payload: bytes, compression=None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        r.export(payload, timeout=30, compression=compression)
    assert r.alive(), f"redline died on a hostile gRPC request:\n{r.proc.log_text()}"
    return ei.value


def post(r, body, content_type="application/x-protobuf", encoding=None) -> requests.Response:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    resp = requests.post(r.http_url, data=body, headers=headers, timeout=60)
    assert r.alive(), f"redline died on a hostile HTTP request:\n{r.proc.log_text()}"
    return resp


def big_request(size: int) -> bytes:
    """A valid request of about `size` bytes (one span with a large attribute)."""
    raw = request("hostile", [span("big", {"blob": "x" * size})]).SerializeToString()
    assert len(raw) > size
    return raw


def gzip_bomb(decompressed: int) -> bytes:
    """gzip of `decompressed` zero bytes, built in chunks (about 1000:1)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(MIB)
    parts = [c.compress(chunk) for _ in range(decompressed // MIB)]
    parts.append(c.flush())
    return b"".join(parts)


def deep_json(levels: int) -> bytes:
    value: dict = {"intValue": "1"}
    for _ in range(levels):
        value = {"arrayValue": {"values": [value]}}
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "hostile"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "deep",
            "attributes": [{"key": "deep", "value": value}],
        }]}],
    }]}
    # json.dumps recurses too: give it the room.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, levels * 4 + 100))
    try:
        return json.dumps(body).encode()
    finally:
        sys.setrecursionlimit(old)


# ------------------------------------------------------------------------ gRPC


def test_grpc_oversized_message_is_resource_exhausted(rl):
    err = refused_grpc(rl, big_request(2 * MIB))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{err.code()}: {err.details()}"


def test_grpc_compressed_bomb_is_capped(rl):
    # 64 MiB of zeros compress to ~64 KiB: under the limit on the wire, far over it inflated.
    before = rl.rss_kib()
    err = refused_grpc(rl, bytes(64 * MIB), compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{err.code()}: {err.details()}"
    grown = rl.rss_kib() - before
    assert grown < 32 * 1024, f"RSS grew {grown} KiB on a capped 64 MiB bomb"


def test_grpc_deep_nesting_is_invalid_argument(rl):
    payload = with_span_attribute("hostile", "deep", "deep", nested_array_value(200))
    err = refused_grpc(rl, payload)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()}: {err.details()}"
    assert "recursion limit" in err.details(), err.details()


@pytest.mark.parametrize("cut", [1, 7, 40], ids=["1-byte", "7-bytes", "40-bytes"])
def test_grpc_truncated_is_invalid_argument(rl, cut):
    raw = request("hostile", [span("cut")]).SerializeToString()
    err = refused_grpc(rl, raw[:-cut])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()}: {err.details()}"


def test_grpc_garbage_is_invalid_argument(rl):
    err = refused_grpc(rl, bytes(range(256)) * 4)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()}: {err.details()}"


# ------------------------------------------------------------------------ HTTP


def test_http_oversized_body_is_413(rl):
    body = big_request(2 * MIB)
    assert post(rl, body).status_code == 413
    # Without Content-Length (chunked) the cap applies while reading.
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    assert post(rl, chunks).status_code == 413


def test_http_gzip_bomb_is_413_with_bounded_memory(rl):
    bomb = gzip_bomb(512 * MIB)
    assert len(bomb) < MIB, "the bomb itself must fit under the body limit"
    before = rl.rss_kib()
    resp = post(rl, bomb, encoding="gzip")
    assert resp.status_code == 413, f"HTTP {resp.status_code}: {resp.text[:200]}"
    grown = rl.rss_kib() - before
    assert grown < 32 * 1024, f"RSS grew {grown} KiB on a 512 MiB bomb (cap is 1 MiB)"


def test_http_corrupt_gzip_is_400(rl):
    resp = post(rl, b"\x1f\x8b\x08\x00garbage", encoding="gzip")
    assert resp.status_code == 400, f"HTTP {resp.status_code}: {resp.text[:200]}"


def test_http_deep_nesting_protobuf_is_400(rl):
    payload = with_span_attribute("hostile", "deep", "deep", nested_array_value(200))
    resp = post(rl, payload)
    assert resp.status_code == 400, f"HTTP {resp.status_code}: {resp.text[:200]}"


@pytest.mark.parametrize("levels", [40, 5000])
def test_http_deep_nesting_json_is_400(rl, levels):
    # Each array level is three JSON levels: 40 is the first past serde_json's limit of 128
    # (39 is accepted), 5000 far past it (a recursive parser without a limit would overflow its
    # stack). JSON cannot get through serde_json to protobuf's own limit of 100 messages.
    resp = post(rl, deep_json(levels), content_type="application/json")
    assert resp.status_code == 400, f"HTTP {resp.status_code}: {resp.text[:200]}"
    body = resp.json()
    assert body["code"] == 3 and "recursion limit" in body["message"], body  # INVALID_ARGUMENT


def test_http_truncated_and_garbage_are_400(rl):
    raw = request("hostile", [span("cut")]).SerializeToString()
    for body in (raw[:-3], bytes(range(256)), gzip.compress(raw)[:-8]):
        enc = "gzip" if body[:2] == b"\x1f\x8b" else None
        resp = post(rl, body, encoding=enc)
        assert resp.status_code == 400, f"HTTP {resp.status_code}: {resp.text[:200]}"


# ------------------------------------------------------------------------ afterwards


def test_nothing_counted_or_forwarded_and_valid_still_works(rl):
    # Runs last in this module (pytest keeps file order): everything above was refused.
    assert rl.series(CALLS) == {}, f"hostile input was counted: {rl.series(CALLS)}"
    assert rl.sink.request_count() == 0, "hostile input was forwarded"

    req = request("after-hostile", [span("ok"), span("ok")])
    rl.export(req.SerializeToString(), timeout=10)
    assert post(rl, request("after-hostile", [span("ok")]).SerializeToString()).status_code == 200
    k = helpers.label_key({"service_name": "after-hostile", "span_name": "ok", "span_kind": "SPAN_KIND_SERVER",
                           "status_code": "STATUS_CODE_UNSET"})
    helpers.wait_until(lambda: rl.series(CALLS).get(k) == 3.0, 10, "valid spans after hostile input counted",
                       alive=rl.proc)
    helpers.wait_until(lambda: rl.sink.span_count() == 3, 10, "valid spans after hostile input forwarded")
    time.sleep(0.5)
    assert rl.series(CALLS) == {k: 3.0}

