"""A real redis-server for the cluster tests (no mocks, no fakeredis), and two-node helpers.

``RedisServer`` runs Debian's ``redis-server`` on a free loopback port, waits until it answers
PING and stops it; ``restart`` brings it back on the same port (the AOF variant keeps its
directory, so what was fsynced survives). The fixtures in ``conftest.py`` hand one out per test.
With ``CI=true`` a missing binary fails the run; locally the tests skip and name the install
command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = "redis-server"
INSTALL_HINT = "redis-server not found: apt-get install redis-server"
#: how long a redis-server or a node may take to answer after it was started
START_WITHIN = 15.0


def redis_binary() -> str:
    """The redis-server path; fails under CI, skips locally when it is missing."""
    found = shutil.which(REDIS_SERVER) or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT + " (CI=true: the cluster tests must run)")
        pytest.skip(INSTALL_HINT)
    return found


def free_port() -> int:
    """A TCP port nothing listens on right now (bind to port 0 and read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on ``127.0.0.1:port``; ``aof_dir`` turns on
    ``appendonly yes`` with ``appendfsync always`` (every write on disk before it is answered)."""

    def __init__(self, binary: str, port: int, aof_dir: Path | None = None) -> None:
        self.binary = binary
        self.port = port
        self.aof_dir = aof_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        """The command line: loopback only, no RDB snapshots, AOF only in the AOF variant."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--daemonize", "no", "--loglevel", "warning"]
        if self.aof_dir is None:
            argv += ["--appendonly", "no"]
        else:
            argv += ["--appendonly", "yes", "--appendfsync", "always",
                     "--dir", str(self.aof_dir)]
        return argv

    def _spawn(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.starts += 1

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            err = self.process.stderr.read().decode(errors="replace") if (
                self.process.stderr) else ""
            self.process = None
            raise RuntimeError(f"redis-server exited at start: {err.strip()[-500:]}")

    def start(self) -> RedisServer:
        """Start and wait (blocking) until it answers PING."""
        self._spawn()
        deadline = time.monotonic() + START_WITHIN
        while not _ping(self.port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on {self.port}")
            time.sleep(0.01)
        return self

    async def astart(self) -> None:
        """Start from a test's event loop (the nodes keep running while it comes up)."""
        self._spawn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WITHIN
        while not await asyncio.to_thread(_ping, self.port):
            self._check_alive()
            if loop.time() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on {self.port}")
            await asyncio.sleep(0.01)

    def stop(self, how: str = "term") -> None:
        """Stop it: ``"term"`` (SIGTERM: Redis flushes the AOF and exits cleanly) or
        ``"kill"`` (SIGKILL). Blocks until the process is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    async def astop(self, how: str = "term") -> None:
        """``stop`` without blocking the test's event loop."""
        await asyncio.to_thread(self.stop, how)

    async def restart(self, how: str = "term") -> None:
        """Stop and start again on the same port (the AOF directory is kept)."""
        await self.astop(how)
        await self.astart()

    async def command(self, *args: str) -> Any:
        """One command from a short-lived client (for a test's own checks)."""
        import redis.asyncio as aioredis

        client = aioredis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
        try:
            return await client.execute_command(*args)
        finally:
            await client.aclose()


@contextlib.contextmanager
def running_redis(tmp: Path | None = None) -> Any:
    """A started ``RedisServer`` (AOF in ``tmp`` if given), stopped on exit."""
    server = RedisServer(redis_binary(), free_port(), tmp).start()
    try:
        yield server
    finally:
        server.stop("kill")


# -- nodes -----------------------------------------------------------------------------------


async def wait_until(predicate: Callable[[], bool], within: float = 10.0,
                     what: str = "condition") -> None:
    """``reliability_helpers.wait_until`` with the cluster tests' longer default bound (two
    nodes and a Redis share the machine with the test)."""
    from reliability_helpers import wait_until as poll

    await poll(predicate, within, what)


class NodeProcess:
    """``python -m reactive_aiops serve --redis-url URL --port P`` as a child process."""

    def __init__(self, redis_url: str, port: int, env: dict[str, str],
                 *extra: str) -> None:
        self.redis_url = redis_url
        self.port = port
        self.env = env
        self.extra = extra
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The node's WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def start(self) -> None:
        """Start and wait until it listens (it prints ``serving on``)."""
        env = {**os.environ, **self.env}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reactive_aiops", "serve", "--redis-url", self.redis_url,
            "--port", str(self.port), "--log-level", "WARNING", *self.extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read(self.process, ready))
        try:
            async with asyncio.timeout(START_WITHIN * 2):
                await ready.wait()
        except TimeoutError:
            raise AssertionError(f"node on {self.port} did not start: {self.log}") from None

    async def _read(self, process: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            if "serving on" in text:
                ready.set()

    def signal(self, sig: int) -> None:
        """Send ``sig`` (SIGKILL, SIGSTOP, SIGCONT, SIGTERM) to the node."""
        assert self.process is not None
        self.process.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL and reap it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        self.process = self._reader = None


@contextlib.asynccontextmanager
async def node_process(redis_url: str, env: dict[str, str], *extra: str,
                       port: int | None = None) -> AsyncIterator[NodeProcess]:
    """A started ``NodeProcess``, SIGKILLed on exit."""
    node = NodeProcess(redis_url, port or free_port(), env, *extra)
    await node.start()
    try:
        yield node
    finally:
        await node.kill()


# -- the publish API over plain HTTP ------------------------------------------------------------


async def http_publish(port: int, api_key: str, body: dict[str, Any],
                       within: float = 5.0) -> tuple[int, dict[str, Any]]:
    """``POST /api/publish`` to ``127.0.0.1:port``; returns ``(status, JSON body)``.

    Raises ``OSError`` / ``TimeoutError`` / ``asyncio.IncompleteReadError`` when the connection
    fails before a whole answer arrived (the caller retries with the same idempotency key).
    """
    import json

    payload = json.dumps(body).encode()
    head = (f"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: apikey {api_key}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head.encode() + payload)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    header, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise asyncio.IncompleteReadError(raw, None)
    status = int(header.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), len(rest))
    if len(rest) < length:
        raise asyncio.IncompleteReadError(rest, length)
    return status, json.loads(rest[:length])


class Publisher:
    """Publishes through the HTTP API with an idempotency key per event and retries every
    failure (a cut connection, a 503) with the same key until a 200 answers."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.attempts = 0
        self.failures = 0
        self.unavailable = 0
        self.offsets: list[int] = []

    async def publish(self, port: Callable[[], int] | int, channel: str, data: dict[str, Any],
                      key: str, *, give_up_after: float = 30.0) -> dict[str, Any]:
        """Publish until accepted; returns the ``result`` (offset, epoch)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + give_up_after
        body = {"channel": channel, "data": data, "idempotency_key": key}
        while True:
            self.attempts += 1
            target = port() if callable(port) else port
            try:
                status, answer = await http_publish(target, self.api_key, body)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                status, answer = 0, {}
            if status == 200:
                result: dict[str, Any] = answer["result"]
                self.offsets.append(int(result["offset"]))
                return result
            if status not in (0, 503):
                raise AssertionError(f"publish refused: {status} {answer}")
            self.failures += 1
            self.unavailable += status == 503
            if loop.time() > deadline:
                raise AssertionError(f"publish of {key} not accepted within {give_up_after} s")
            await asyncio.sleep(0.02)


# -- two in-process nodes ----------------------------------------------------------------------

API_KEY = "cluster-api-key"


def node_config(redis_url: str, **overrides: Any) -> Any:
    """A loopback node of the cluster on ``redis_url``: the reliability tests' settings
    (no simulated source, ping every second, deep history) plus the publish API."""
    from reliability_helpers import server_config

    return server_config(redis_url=redis_url, api_key=API_KEY, **overrides)


@contextlib.asynccontextmanager
async def two_nodes(redis_url: str, **overrides: Any) -> AsyncIterator[tuple[Any, Any]]:
    """Nodes A and B (``EventServer``) sharing ``redis_url``; closed on exit."""
    from reactive_aiops.server.app import serve_embedded

    async with serve_embedded(node_config(redis_url, **overrides)) as a, serve_embedded(
            node_config(redis_url, **overrides)) as b:
        yield a, b


def local_subscribers(server: Any, channels: tuple[str, ...]) -> bool:
    """True when ``server``'s Redis engine has exactly one local subscriber per channel and a
    connection's subscribes to them completed (registered is not enough: a publication made
    while the subscribe still reads its position may land before that position)."""
    engine = server.core.engine
    return all(engine.subscriber_count(c) == 1 for c in channels) and any(
        all(c in conn.positions for c in channels) for conn in server.connections)


class SubscribeLog:
    """Every ``Subscribed`` the client saw: (channel, was it a resubscribe, recovered)."""

    def __init__(self, manager: Any) -> None:
        from reactive_aiops.protocol import Subscribed

        self.entries: list[tuple[str, bool, bool]] = []
        seen: set[str] = set()

        def on(event: object) -> None:
            if isinstance(event, Subscribed):
                self.entries.append((event.channel, event.channel in seen, event.recovered))
                seen.add(event.channel)

        self._sub = manager.events.subscribe(on)

    @property
    def resubscribes(self) -> list[tuple[str, bool, bool]]:
        """The entries after each channel's first subscribe."""
        return [e for e in self.entries if e[1]]

    def dispose(self) -> None:
        """Stop recording."""
        self._sub.dispose()


async def connect_and_load(live: Any) -> None:
    """Connect a ``live_client(..., connect=False)`` once the test's logs watch it, and wait
    until its bridge loaded the server's state."""
    async with asyncio.timeout(10):
        await live.manager.connect()
        await live.bridge.wait_loaded()


def figure(name: str, value: object) -> None:
    """A measured figure for docs/reliability.md (shown with ``pytest -s``)."""
    print(f"FIGURE {name}: {value}")
