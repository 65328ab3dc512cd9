"""The publish API's pure parts: request parsing and handling without sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from server_helpers import API_KEY, anomaly_event, config

from reactive_aiops.server import http
from reactive_aiops.server.core import ServerCore
from reactive_aiops.server.engine import run_now


def request(body: bytes, *, key: str | None = API_KEY, path: str = "/api/publish",
            method: str = "POST") -> http.HttpRequest:
    headers = {"content-length": str(len(body))}
    if key is not None:
        headers["authorization"] = f"apikey {key}"
    return http.HttpRequest(method, path, headers, body)


def test_sniffing_tells_http_from_a_websocket_handshake() -> None:
    assert http.is_http_prefix(b"POST /api") is True
    assert http.is_http_prefix(b"PO") is None
    assert http.is_http_prefix(b"GET / HTTP/1.1") is False
    assert http.is_http_prefix(b"") is None


def test_parse_waits_for_the_whole_body() -> None:
    raw = b"POST /api/publish HTTP/1.1\r\nContent-Length: 4\r\nX-API-Key: k\r\n\r\nab"
    assert http.parse_request(raw, 100) is None
    parsed = http.parse_request(raw + b"cd", 100)
    assert parsed == http.HttpRequest("POST", "/api/publish",
                                      {"content-length": "4", "x-api-key": "k"}, b"abcd")


@pytest.mark.parametrize(("raw", "status"), [
    (b"POST / HTTP/1.1\r\n\r\n", 411),
    (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
    (b"POST /\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n\xff: 1\r\n\r\n", 400),
    (b"POST " + b"x" * 20000, 413),
])
def test_parse_errors(raw: bytes, status: int) -> None:
    with pytest.raises(http.HttpError) as info:
        http.parse_request(raw, 100)
    assert info.value.status == status


def handle(raw: http.HttpRequest, core: ServerCore) -> tuple[int, dict[str, Any]]:
    return run_now(http.handle(raw, core))  # the memory engine never suspends


def test_handle() -> None:
    core = ServerCore(config())
    body = json.dumps({"channel": "anomalies", "data": anomaly_event()}).encode()
    assert handle(request(body, key=None), core)[0] == 401
    assert handle(request(body, key="nope"), core)[0] == 401
    status, reply = handle(request(body), core)
    assert status == 200
    assert reply == {"result": {"offset": 1, "epoch": core.broker.position("anomalies")[1]}}
    assert handle(request(b"[]"), core)[0] == 400
    assert handle(request(b"[" * 100_000), core)[0] == 400
    no_key_config = ServerCore(config(api_key=None))
    assert handle(request(body), no_key_config)[0] == 401  # endpoint disabled


def test_idempotency_key_answers_the_first_result_and_publishes_nothing() -> None:
    core = ServerCore(config())
    event = anomaly_event()
    first = json.dumps({"channel": "anomalies", "data": event, "idempotency_key": "k1"}).encode()
    other = json.dumps({"channel": "anomalies", "data": event, "idempotency_key": "k2"}).encode()
    assert handle(request(first), core) == handle(request(first), core)
    assert core.broker.position("anomalies")[0] == 1
    status, reply = handle(request(other), core)
    assert (status, reply["result"]["offset"]) == (200, 2)
    bad = json.dumps({"channel": "anomalies", "data": event, "idempotency_key": ""}).encode()
    assert handle(request(bad), core)[0] == 400
    assert core.broker.position("anomalies")[0] == 2


def test_render() -> None:
    raw = http.render(404, {"error": {"code": 404, "message": "not found"}})
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert raw.endswith(b'{"error":{"code":404,"message":"not found"}}')
