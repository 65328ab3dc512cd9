"""Processes for the chaos scenarios: ``serve`` and ``redis-server`` on 127.0.0.1, the secrets
they run with, and what can be read about them from /proc (RSS, open sockets)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO

import attrs

from reactive_aiops.server import mint_token

WS_PATH = "/connection/websocket"


#: every child this module started; whatever still runs when the interpreter exits (a scenario
#: cancelled mid-way, Ctrl-C) is killed then, so no server or redis-server outlives a run
_CHILDREN: list[subprocess.Popen[bytes]] = []


def _spawn(command: list[str], *, env: dict[str, str] | None = None,
           stderr: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    # Popen returns once the child is forked: it does not block the event loop for long
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    _CHILDREN[:] = [p for p in _CHILDREN if p.poll() is None]
    _CHILDREN.append(proc)
    return proc


@atexit.register
def _kill_children() -> None:
    for proc in _CHILDREN:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
                proc.wait(5)


class ScenarioError(Exception):
    """A scenario could not run (a process did not start, a wait timed out)."""


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll ``predicate`` every 5 ms; raise ``ScenarioError`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (``nan`` if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def socket_count(pid: int) -> int:
    """Open sockets of ``pid`` (listening ones included)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return count


# -- secrets -----------------------------------------------------------------------------------


@attrs.frozen
class Secrets:
    """A token secret and publish API key, random per run, given to servers via the env."""

    token_secret: str = attrs.field(factory=lambda: secrets.token_urlsafe(48))
    api_key: str = attrs.field(factory=lambda: secrets.token_urlsafe(24))

    def token(self, sub: str = "chaos", ttl: float = 3600.0) -> str:
        """An operator connection token valid for ``ttl`` seconds."""
        return mint_token(self.token_secret, sub, exp=time.time() + ttl, roles=["operator"])


# -- processes ---------------------------------------------------------------------------------


class ServerProcess:
    """``python -m reactive_aiops serve`` on a fixed port, restartable, stderr kept in a file."""

    def __init__(self, keys: Secrets, *, port: int | None = None, redis_url: str | None = None,
                 args: Sequence[str] = (), workdir: Path) -> None:
        self.keys = keys
        self.port = port or free_port()
        self.redis_url = redis_url
        self.args = list(args)
        self.stderr_path = workdir / f"serve-{self.port}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The WebSocket endpoint."""
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    @property
    def pid(self) -> int:
        """The running process's id."""
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        """The command line (secrets travel in the environment, never in argv)."""
        cmd = [sys.executable, "-m", "reactive_aiops", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--no-simulation", "--log-level", "WARNING",
               "--history-size", "20000", "--send-queue", "20000", "--rate-limit", "1000"]
        if self.redis_url:
            cmd += ["--redis-url", self.redis_url]
        return cmd + self.args

    async def start(self, within: float = 20.0) -> float:
        """Start and wait until the port accepts; returns the seconds that took."""
        env = {**os.environ, "REACTIVE_AIOPS_TOKEN_SECRET": self.keys.token_secret,
               "REACTIVE_AIOPS_API_KEY": self.keys.api_key}
        env.pop("REACTIVE_AIOPS_REDIS_URL", None)
        started = time.monotonic()
        with self.stderr_path.open("ab") as err:
            self.proc = _spawn(self.command(), env=env, stderr=err)
        self.starts += 1
        while not await _accepts(self.port):
            if self.proc.poll() is not None:
                raise ScenarioError(f"serve exited with {self.proc.returncode}: "
                                    f"{self.stderr_tail()}")
            if time.monotonic() - started > within:
                raise ScenarioError(f"serve did not listen within {within} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server process."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, within: float = 15.0) -> int:
        """Wait for the process to exit; SIGKILL it after ``within`` seconds."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
            await asyncio.sleep(0.01)
        return self.proc.returncode

    async def kill(self) -> None:
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        await self.wait_exit()

    async def stop(self) -> None:
        """SIGCONT (in case it is stopped), SIGTERM and reap; a no-op if it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        await self.wait_exit(10.0)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> float:
        """Resident set size now, MB."""
        return rss_mb(self.pid) if self.alive() else float("nan")

    def stderr_text(self) -> str:
        """Everything every start of this server wrote on stderr."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines of stderr, joined."""
        return " | ".join(self.stderr_text().strip().splitlines()[-lines:])

    def tracebacks(self) -> int:
        """How many tracebacks the server printed (each is an unhandled error)."""
        return self.stderr_text().count("Traceback (most recent call last)")


async def _accepts(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class RedisProcess:
    """A ``redis-server`` on 127.0.0.1, with AOF (``appendfsync always``) or no persistence."""

    def __init__(self, workdir: Path, *, aof: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ScenarioError("redis-server not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.aof = aof
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``--redis-url`` of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start and wait until it accepts connections."""
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.aof
                       else ["--appendonly", "no"])
        self.proc = _spawn(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.dir), *persistence])
        await wait_until(lambda: _connectable(self.port), 10.0, "redis-server")
        await asyncio.sleep(0.1)  # AOF load

    async def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def _connectable(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def workspace() -> AsyncIterator[Path]:
    """A temporary directory for stderr files and Redis data."""
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        yield Path(tmp)
