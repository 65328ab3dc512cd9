"""Helpers for the web dashboard tests: the event server on its own thread, the dashboard process,
and a headless Debian Chromium driven by Selenium.

The event server runs in this process (``serve_embedded`` on 127.0.0.1, port 0) on a private
event loop thread, so a test can publish, change state behind the client's back, stop and start
it. The dashboard runs as ``python -m reactive_aiops web --url ... --port 0`` in a subprocess
(NiceGUI keeps process-wide state), with the operator token in its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reactive_aiops.server.app import EventServer, serve_embedded
from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "INSTALL_HINT",
    "ServerThread",
    "WebProcess",
    "new_driver",
    "require_browser",
    "wait_for",
]

_T = TypeVar("_T")

CHROMIUM = os.environ.get("REACTIVE_AIOPS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("REACTIVE_AIOPS_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install -e '.[test,web]'"

#: Wraps the page's Notification constructor so a test can count calls (installed before any
#: page script runs).
COUNT_NOTIFICATIONS = """
(() => {
  const Orig = window.Notification;
  window.__raiopsNotes = [];
  if (!Orig) return;
  class Counting extends Orig {
    constructor(title, options) { window.__raiopsNotes.push(title); super(title, options); }
  }
  window.Notification = Counting;
})();
"""


def require_browser() -> None:
    """Skip (locally) or fail (``CI=true``) when Chromium, chromedriver or Selenium is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import nicegui  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as exc:
        missing.append(exc.name or "selenium/nicegui")
    if not missing:
        return
    message = f"missing {', '.join(missing)}; install with: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the web tests need a real browser in CI: {message}")
    pytest.skip(message)


def new_driver(window: str = "1400,1000") -> Any:
    """A headless Chromium with notifications countable (see :data:`COUNT_NOTIFICATIONS`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={window}",
                "--disable-dev-shm-usage", "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                           {"source": COUNT_NOTIFICATIONS})
    return driver


def wait_for(predicate: Callable[[], _T], *, within: float = 10.0, what: str = "") -> _T:
    """Poll ``predicate`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # stale elements while the page re-renders
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"not within {within} s: {what}{detail}")
        time.sleep(0.05)


class ServerThread:
    """``serve_embedded`` on a private loop thread; no simulated data unless asked."""

    def __init__(self, *, simulate: bool = False, rate: float = 20.0) -> None:
        self.secret = secrets.token_hex(32)
        self.config = ServerConfig(
            port=0, token_secret=self.secret,
            simulation=SimulationConfig(enabled=simulate, samples_per_second=rate),
        )
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.server: EventServer | None = None
        self._thread = threading.Thread(target=self._run, name="event-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve_embedded(self.config) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("event server did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)
        self.loop.close()

    @property
    def url(self) -> str:
        """The WebSocket URL."""
        assert self.server is not None
        return self.server.url

    def token(self, user: str = "operator") -> str:
        """An operator token for this server."""
        return mint_token(self.secret, user, exp=time.time() + 3600, roles=("operator",))

    def call(self, fn: Callable[[EventServer], _T]) -> _T:
        """Run ``fn(server)`` on the server's loop and return its result."""
        async def run() -> _T:
            assert self.server is not None
            return fn(self.server)

        return self.run(run())

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the server's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10.0)

    def publish(self, channel: str, event: dict[str, object]) -> None:
        """Publish through the server's Python API."""
        self.call(lambda server: server.publish(channel, event))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the server's loop (it answers nothing) until the block ends."""
        release = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            holding.set()
            release.wait(10.0)

        self.loop.call_soon_threadsafe(hold)
        holding.wait(10.0)
        try:
            yield
        finally:
            release.set()


class WebProcess:
    """``reactive-aiops web`` in a subprocess; :attr:`url` once it listens, stderr collected."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("REACTIVE_AIOPS_")}
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reactive_aiops", "web", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
        )
        self.stderr_lines: list[str] = []
        self._stdout: queue.Queue[str] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout.put),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines.append),
                             daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        self.url = self._wait_url()

    @staticmethod
    def _pump(stream: Any, sink: Callable[[str], None]) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def _wait_url(self) -> str:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                line = self._stdout.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = re.search(r"web dashboard on (\S+)", line)
            if found:
                return found.group(1)
        self.close()
        raise RuntimeError("web dashboard did not start: " + "\n".join(self.stderr_lines[-20:]))

    def audit_lines(self) -> list[str]:
        """The audit log lines written so far."""
        return [line for line in self.stderr_lines if "reactive_aiops.web.audit" in line]

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        for pump in self._pumps:
            pump.join(5.0)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def save_screenshot(driver: Any, directory: Path, name: str) -> Path:
    """Write a PNG of the current page into ``directory`` (a test's tmp dir) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path))
    return path


def browser_available() -> bool:
    """Whether Chromium and chromedriver are on this machine."""
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER))
