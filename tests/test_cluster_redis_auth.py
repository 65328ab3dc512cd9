"""The Redis engine against a Redis that wants credentials or TLS (real redis-server).

An ACL user with a password (given as configuration, as ``serve`` takes it from the
environment), and a ``rediss://`` server whose certificate a private CA signed: two nodes share
channels through each; a wrong password or an untrusted CA is an unreachable engine, not a
crash.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import wait_until
from server_helpers import anomaly_event
from tls_helpers import make_pki

from reactive_aiops.server.config import ServerConfig, SimulationConfig
from reactive_aiops.server.core import ServerCore
from reactive_aiops.server.engine import EngineUnavailable

pytestmark = pytest.mark.asyncio
redis_engine = pytest.importorskip("reactive_aiops.server.redis_engine")

REDIS = shutil.which("redis-server")
if REDIS is None:
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server is missing (apt-get install redis-server)", pytrace=False)
    pytest.skip("redis-server not installed (apt-get install redis-server)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(*args: str) -> subprocess.Popen[bytes]:
    assert REDIS is not None
    proc = subprocess.Popen([REDIS, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    assert proc.poll() is None, "redis-server did not start"
    return proc


@pytest.fixture
def acl_redis() -> Iterator[int]:
    port = _free_port()
    proc = _start("--port", str(port), "--user", "default", "off",
                  "--user", "aiops", "on", ">s3cret-pass", "~*", "&*", "+@all")
    yield port
    proc.terminate()
    proc.wait()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    pki = make_pki(tmp_path)
    port = _free_port()
    proc = _start("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(pki.cert),
                  "--tls-key-file", str(pki.key), "--tls-ca-cert-file", str(pki.ca),
                  "--tls-auth-clients", "no")
    yield port, pki.ca
    proc.terminate()
    proc.wait()


class Sink:
    def __init__(self) -> None:
        self.offsets: list[int] = []

    def deliver(self, publication: Any, epoch: str) -> None:
        self.offsets.append(publication.offset)


def _config(url: str, **redis: Any) -> ServerConfig:
    return ServerConfig(port=0, redis_url=url, simulation=SimulationConfig(enabled=False),
                        **redis)


async def _two_nodes_share_a_channel(url: str, **redis: Any) -> None:
    config = _config(url, **redis)
    nodes = [ServerCore(config, engine=redis_engine.RedisEngine(
        url, config, username=config.redis_username, password=config.redis_password,
        ca_file=config.redis_ca_file)) for _ in range(2)]
    try:
        for node in nodes:
            await node.engine.check()
            await node.engine.start()
            assert node.engine.state == "ok"
        sink, answers = Sink(), []
        nodes[1].subscribe("anomalies", sink, False, 0, "", answers.append)
        await wait_until(lambda: bool(answers))
        for i in range(5):
            result = await nodes[0].apublish("anomalies", anomaly_event(f"a{i}"))
            assert result.offset == i + 1
        await wait_until(lambda: len(sink.offsets) >= 5)
        assert sink.offsets == [1, 2, 3, 4, 5]
    finally:
        for node in nodes:
            await node.engine.close()


async def test_an_acl_user_with_a_password_joins_the_cluster(acl_redis: int) -> None:
    await _two_nodes_share_a_channel(f"redis://127.0.0.1:{acl_redis}/0",
                                     redis_username="aiops", redis_password="s3cret-pass")


async def test_a_wrong_password_is_an_unreachable_engine_not_a_crash(acl_redis: int) -> None:
    config = _config(f"redis://127.0.0.1:{acl_redis}/0")
    engine = redis_engine.RedisEngine(config.redis_url, config, username="aiops",
                                      password="wrong")
    with pytest.raises(EngineUnavailable) as info:
        await engine.check()
    assert "wrong" not in str(info.value)
    await engine.close()


async def test_rediss_with_a_private_ca(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    await _two_nodes_share_a_channel(f"rediss://127.0.0.1:{port}/0", redis_ca_file=str(ca))


async def test_rediss_refuses_a_certificate_it_cannot_verify(
        tls_redis: tuple[int, Path]) -> None:
    port, _ca = tls_redis
    config = _config(f"rediss://127.0.0.1:{port}/0")
    engine = redis_engine.RedisEngine(config.redis_url, config)  # system CAs only
    with pytest.raises(EngineUnavailable):
        await engine.check()
    await engine.close()
