"""A client that never reads is let go: closed 3008, then aborted at the transport.

Without the abort the 3008 close frame sits behind megabytes in the send buffer, the closing
handshake never starts and the socket stays ESTABLISHED for as long as the peer lives.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import pytest
from reliability_helpers import wait_until
from server_helpers import anomaly_event, config, token

from reactive_aiops.server.app import serve_embedded


def client_frame(message: dict[str, Any]) -> bytes:
    """One masked WebSocket text frame, as a client must send it."""
    payload = json.dumps(message).encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_non_reader(port: int) -> socket.socket:
    """Handshake, connect and subscribe to ``anomalies``, with a tiny receive buffer; the caller
    then never reads again."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = ("GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: read nothing past the handshake
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101")
    await loop.sock_sendall(sock, client_frame({"id": 1, "connect": {"token": token()}})
                            + client_frame({"id": 2, "subscribe": {"channel": "anomalies"}}))
    return sock


@pytest.mark.asyncio
async def test_a_client_that_never_reads_is_gone_within_close_timeout() -> None:
    close_timeout = 1.0
    async with serve_embedded(config(send_queue_size=50, close_timeout=close_timeout)) as server:
        sock = await open_non_reader(server.port)
        try:
            await wait_until(lambda: server.core.broker.subscriber_count("anomalies") == 1,
                             what="the subscription")
            big = anomaly_event()
            big["data"]["metric"] = "m" * 4000
            for i in range(20_000):
                server.publish("anomalies", big)
                if server.stats.slow_disconnects:
                    break
                if i % 20 == 0:
                    await asyncio.sleep(0)  # let the pump write what the socket takes
            assert server.stats.slow_disconnects == 1
            # Liveness bound, not a speed claim: the server-side socket must be gone (its
            # handler done, its connection removed) by close_timeout + 1 s.
            await wait_until(lambda: server.connection_count == 0, within=close_timeout + 1.0,
                             what="the slow connection to be dropped")
            assert server.metrics.registry.get_sample_value(
                "reactive_aiops_disconnects_total", {"code": "3008", "reason": "slow"}) == 1
        finally:
            sock.close()
