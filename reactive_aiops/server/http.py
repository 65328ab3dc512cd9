"""The publish API: ``POST /api/publish`` on the WebSocket port, for real detection services.

Request: ``Authorization: apikey <key>`` (or ``X-API-Key: <key>``), ``Content-Type:
application/json``, body ``{"channel": "anomalies", "data": {event envelope}}``. Responses are JSON:
``200 {"result": {"offset": N, "epoch": "..."}}`` or ``4xx {"error": {"code": N, "message": ...}}``
(400 invalid, 401 no or wrong key, 404 unknown channel or path, 405 method, 413 too large).

This module is pure: ``parse_request`` turns buffered bytes into a request (or says "need more"),
``handle`` turns a request into a response; ``app`` moves the bytes.
"""

from __future__ import annotations

import hmac
import json
import re
from http import HTTPStatus
from typing import Any

import attrs

from reactive_aiops.server.core import PublishError, ServerCore
from reactive_aiops.server.engine import EngineUnavailable

PUBLISH_PATH = "/api/publish"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_MAX_HEADER = 16 * 1024
#: Methods that mark a connection as plain HTTP rather than a WebSocket handshake (always GET).
HTTP_METHODS = (b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ", b"OPTIONS ")


class HttpError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class HttpRequest:
    """A parsed request; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def is_http_prefix(data: bytes) -> bool | None:
    """True if ``data`` starts a non-GET request, False if it cannot, None if too short to tell."""
    for method in HTTP_METHODS:
        if data.startswith(method):
            return True
        if method.startswith(data):
            return None
    return False


def parse_request(buffer: bytes, max_body: int) -> HttpRequest | None:
    """Parse a complete request from ``buffer``; None if more bytes are needed.

    Raises ``HttpError`` (400 malformed, 411 no length, 413 too large).
    """
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        if len(buffer) > _MAX_HEADER:
            raise HttpError(413, "request header too large")
        return None
    try:
        lines = buffer[:head_end].decode("ascii").split("\r\n")
        method, path, _version = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(line)
            headers[name.strip().lower()] = value.strip()
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "malformed request") from None
    if "content-length" not in headers:
        raise HttpError(411, "Content-Length required")
    try:
        length = int(headers["content-length"])
    except ValueError:
        raise HttpError(400, "bad Content-Length") from None
    if length < 0:
        raise HttpError(400, "bad Content-Length")
    if length > max_body:
        raise HttpError(413, "body too large")
    body = buffer[head_end + 4:]
    if len(body) < length:
        return None
    return HttpRequest(method, path, headers, body[:length])


def _api_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "apikey" and value:
        return value.strip()
    return headers.get("x-api-key")


async def handle(request: HttpRequest, core: ServerCore) -> tuple[int, dict[str, Any]]:
    """Serve one request; returns ``(status, JSON body)``. Never raises.

    ``idempotency_key`` (optional string in the body, as in Centrifugo's server API): a retry
    with the same key on the same channel, on any node, within 5 minutes answers the first
    publish's position and publishes nothing. 503 means the engine is unreachable: retry.
    """
    if request.path.split("?")[0] != PUBLISH_PATH:
        return 404, {"error": {"code": 404, "message": "not found"}}
    if request.method != "POST":
        return 405, {"error": {"code": 405, "message": "use POST"}}
    expected = core.config.api_key
    given = _api_key(request.headers)
    if expected is None or given is None or not hmac.compare_digest(
            given.encode(), expected.encode()):
        return 401, {"error": {"code": 401, "message": "API key required"}}
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError):
        return 400, {"error": {"code": 400, "message": "body must be JSON"}}
    if not isinstance(body, dict) or not isinstance(body.get("channel"), str):
        return 400, {"error": {"code": 400, "message": "body must be {channel, data}"}}
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not _KEY_RE.match(key)):
        return 400, {"error": {"code": 400,
                               "message": "idempotency_key must be 1-256 printable ASCII"}}
    try:
        result = await core.apublish(body["channel"], body.get("data"), idempotency_key=key)
    except PublishError as exc:
        return exc.code, {"error": {"code": exc.code, "message": exc.reason}}
    except EngineUnavailable:
        return 503, {"error": {"code": 503, "message": "engine unavailable, retry"}}
    return 200, {"result": {"offset": result.offset, "epoch": result.epoch}}


def error_body(status: int, message: str) -> bytes:
    """The JSON body of an error response."""
    return json.dumps({"error": {"code": status, "message": message}},
                      separators=(",", ":")).encode()


def render(status: int, payload: dict[str, Any]) -> bytes:
    """An HTTP/1.1 response with a JSON body; the connection is closed after it."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    reason = HTTPStatus(status).phrase
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body
