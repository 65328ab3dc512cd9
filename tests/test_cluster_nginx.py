"""The official Python SDK behind nginx (deploy/nginx.conf, as docs/scaling.md shows it) in front
of two nodes sharing one real redis-server: publications made on either node reach it, and when
the node it is on stops, nginx sends its reconnect to the other node, where it recovers from its
position with no resync and nothing missed or repeated."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_helpers import API_KEY, Publisher, RedisServer, free_port, two_nodes, wait_until
from reliability_helpers import anomaly_payload, envelope, token
from test_server_interop_python import subscribe_recorded

pytestmark = pytest.mark.asyncio

CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                  else None)
if NGINX is None:
    if os.environ.get("CI") == "true":
        pytest.fail("nginx is missing (apt-get install nginx-light)", pytrace=False)
    pytest.skip("nginx not installed (apt-get install nginx-light)", allow_module_level=True)


class Nginx:
    """nginx running the documented config with its ports replaced by free ones."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.listen = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def route(self, node_a: int, node_b: int) -> None:
        """Start nginx in front of ``node_a`` and ``node_b``; wait until it listens."""
        text = CONF.read_text()
        assert "127.0.0.1:8001" in text
        assert "127.0.0.1:8002" in text
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.listen}")
        text = text.replace("127.0.0.1:8001", f"127.0.0.1:{node_a}")
        text = text.replace("127.0.0.1:8002", f"127.0.0.1:{node_b}")
        assert not re.search(r"127\.0\.0\.1:800[012]\b", text)
        (self.run / "nginx.conf").write_text(text)
        (self.run / "tmp").mkdir(exist_ok=True)
        assert NGINX is not None
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.run), "-c", str(self.run / "nginx.conf"),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, self.process.stderr.read() if (
                self.process.stderr) else "nginx exited"
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.listen), timeout=0.5):
                return
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            if self.process.stderr is not None:
                self.process.stderr.close()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    proxy = Nginx(tmp_path)
    yield proxy
    proxy.stop()


async def test_sdk_behind_nginx_moves_to_the_other_node_and_recovers(
        redis_server: RedisServer, nginx: Nginx) -> None:
    from centrifuge import Client

    async with two_nodes(redis_server.url) as (a, b):
        nginx.route(a.port, b.port)
        client = Client(f"ws://127.0.0.1:{nginx.listen}{a.config.path}", token=token(),
                        proxy=None, max_reconnect_delay=0.5)
        publisher = Publisher(API_KEY)
        sent = 0

        async def publish(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                node = (a, b)[sent % 2]  # alternate: both nodes publish into one stream
                await publisher.publish(node.port, "anomalies", envelope(
                    "anomaly.upserted", f"e{sent}", anomaly_payload(f"a{sent}")), f"e{sent}")
                sent += 1

        try:
            rec = await subscribe_recorded(client)
            await publish(40)
            await rec.wait_for(lambda: len(rec.pubs) == 40)
            # the node holding the SDK's connection stops: 3001, and the reconnect goes
            # through nginx to whichever node still listens
            holder = a if a.connection_count else b
            other = b if holder is a else a
            await holder.stop()
            await wait_until(lambda: other.connection_count == 1, 20, "SDK on the other node")
            await rec.wait_for(lambda: len(rec.subscribed) == 2)
            assert rec.subscribed[1].was_recovering
            assert rec.subscribed[1].recovered
            for _ in range(20):
                await publisher.publish(other.port, "anomalies", envelope(
                    "anomaly.upserted", f"e{sent}", anomaly_payload(f"a{sent}")), f"e{sent}")
                sent += 1
            await rec.wait_for(lambda: len(rec.pubs) == 60)
            assert [offset for offset, _ in rec.pubs] == list(range(1, 61))
            assert [data["id"] for _, data in rec.pubs] == [f"e{i}" for i in range(60)]
        finally:
            await client.disconnect()
