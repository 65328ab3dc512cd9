"""TLS: ``wss://`` and ``https://`` on one port with a certificate made at test time; our client,
plain HTTP clients and the official centrifuge-python SDK verify it against the test CA."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from centrifuge import Client
from server_helpers import API_KEY, SECRET, RawClient, anomaly_event, config, token
from test_server_interop_python import subscribe_recorded
from tls_helpers import Pki, make_pki
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from reactive_aiops.server.app import EventServer, serve_embedded


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_config(pki: Pki, **overrides: Any) -> Any:
    return config(tls_cert=str(pki.cert), tls_key=str(pki.key), **overrides)


async def https(server: EventServer, pki: Pki, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=pki.client_context(), server_hostname="127.0.0.1")
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.asyncio
async def test_wss_and_https_share_the_port(pki: Pki) -> None:
    async with serve_embedded(tls_config(pki)) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.http_url.startswith("https://127.0.0.1:")
        client = RawClient(await connect(server.url, ssl=pki.client_context()))
        assert "connect" in await client.connect(token())
        await client.call("subscribe", {"channel": "anomalies"})

        body = json.dumps({"channel": "anomalies", "data": anomaly_event("t1")}).encode()
        status, _ = await https(server, pki, (
            "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        assert status == 200
        push = await client.next_push()
        assert push["pub"]["data"]["data"]["id"] == "t1"

        status, health = await https(server, pki, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        assert json.loads(health)["connections"] == 1
        status, metrics = await https(server, pki, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        assert b"reactive_aiops_publications_total" in metrics
        await client.close()


@pytest.mark.asyncio
async def test_a_client_that_does_not_trust_the_ca_is_refused(pki: Pki) -> None:
    async with serve_embedded(tls_config(pki)) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(server.url, ssl=ssl.create_default_context())
        with pytest.raises(InvalidMessage):  # plain text to a TLS port is not served
            await connect(server.url.replace("wss://", "ws://"), open_timeout=5)


@pytest.mark.asyncio
async def test_official_python_sdk_connects_over_wss(pki: Pki) -> None:
    async with serve_embedded(tls_config(pki)) as server:
        client = Client(server.url, token=token(), proxy=None, ssl_context=pki.client_context())
        rec = await subscribe_recorded(client)
        server.publish("anomalies", anomaly_event("over-tls"))
        await rec.wait_for(lambda: len(rec.pubs) == 1)
        assert rec.pubs[0][1]["data"]["id"] == "over-tls"
        await client.disconnect()


def test_bad_key_is_refused_before_listening(pki: Pki, tmp_path: Path) -> None:
    from reactive_aiops.server.tls import TlsConfigError

    wrong = tmp_path / "wrong.pem"
    wrong.write_text("not a key\n")
    with pytest.raises(TlsConfigError):
        EventServer(config(tls_cert=str(pki.cert), tls_key=str(wrong)))
    with pytest.raises(ValueError, match="together"):
        config(tls_cert=str(pki.cert))


@pytest.mark.asyncio
async def test_serve_command_with_tls_flags_serves_wss(pki: Pki) -> None:
    import os
    import sys

    env = {**os.environ, "REACTIVE_AIOPS_TOKEN_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_aiops", "serve", "--port", "0", "--no-simulation",
        "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--log-level", "WARNING",
        env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[-1]
        assert url.startswith("wss://127.0.0.1:")
        client = RawClient(await connect(url, ssl=pki.client_context()))
        assert "connect" in await client.connect(token())
        await client.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
