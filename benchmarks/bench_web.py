"""B-web: event-to-DOM latency of the web dashboard in a real headless Chromium.

Three processes, as in production: the event server (here, on a thread of this process, which
otherwise only drives the browser), the dashboard (``python -m reactive_aiops web --url ...``,
one WebSocket connection, one store) and Debian's Chromium driven by Selenium. The server
publishes ``anomaly.upserted`` events at 100 and 1,000 events/s, cycling over 20 anomalies; each
event's ``value`` is its send time (milliseconds modulo 10^6). In every tab a MutationObserver
on the anomaly table reads each new value when it lands in the DOM and records ``now - value``.
Values a frame overwrote before it was sent (at most 60 frames/s per tab) never reach the DOM
and are not counted: the samples are the latencies of what the operator could see.

Rows: per-value latency in milliseconds (median = p50; the note carries p95, the CPU time of the
dashboard process and of the browser per second of run, and the UI messages per tab per second).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.request import urlopen

from benchmarks._harness import Row
from reactive_aiops.server.app import EventServer, serve_embedded
from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.config import ServerConfig, SimulationConfig

__all__ = ["run"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ANOMALIES = 20
MODULUS_MS = 1_000_000.0

#: Installed in each tab: collects (DOM time - value) for every new value cell in the table.
_OBSERVE = """
const table = document.querySelector('[data-testid=anomalies]');
window.__lat = []; window.__seen = new Set();
const scan = (record) => {
  const now = (performance.timeOrigin + performance.now()) % %MOD%;
  for (const td of table.querySelectorAll('tbody td:nth-child(5)')) {
    const text = td.textContent;
    if (window.__seen.has(text)) continue;
    window.__seen.add(text);
    const v = parseFloat(text);
    if (record && !isNaN(v)) { let d = now - v; if (d < 0) d += %MOD%; window.__lat.push(d); }
  }
  if (window.__seen.size > 50000) window.__seen = new Set();
};
scan(false);  // what is shown already was sent before the measurement
new MutationObserver(() => scan(true))
  .observe(table, {subtree: true, childList: true, characterData: true});
""".replace("%MOD%", str(int(MODULUS_MS)))


def _event(n: int) -> dict[str, Any]:
    index = n % ANOMALIES
    sent_ms = (time.time() * 1000.0) % MODULUS_MS
    return {
        "type": "anomaly.upserted", "v": 1, "id": f"bw-{n}", "ts": 0.0,
        "data": {
            "id": f"bw-{index}", "detector_id": f"det-{index % 6}", "metric": "cpu.utilization",
            "severity": ("low", "medium")[index % 2], "score": 3.0, "value": round(sent_ms, 3),
            "started_at": 1_700_000_000.0 + index, "state": "open",
            "version": n // ANOMALIES + 1, "updated_at": 1_700_000_000.0 + n,
        },
    }


class _Server:
    """``serve_embedded`` on a loop thread, publishing paced bursts on request."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(32)
        self.loop = asyncio.new_event_loop()
        self.server: EventServer | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._published = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        config = ServerConfig(port=0, token_secret=self.secret, send_queue_size=1_000_000,
                              simulation=SimulationConfig(enabled=False))
        async with serve_embedded(config) as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def burst(self, rate: float, seconds: float) -> int:
        async def go() -> int:
            assert self.server is not None
            total, sent, begin = int(rate * seconds), 0, time.perf_counter()
            while sent < total:
                due = min(total, int((time.perf_counter() - begin) * rate) + 1)
                while sent < due:
                    self.server.publish("anomalies", _event(self._published + sent))
                    sent += 1
                await asyncio.sleep(0.001)
            self._published += sent
            return sent

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(seconds + 30)

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage", "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _wait(predicate: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("benchmark setup: condition not met")
        time.sleep(0.05)


def _messages(url: str) -> int:
    with urlopen(url + "api/web-stats", timeout=5) as response:
        stats = json.load(response)
    return sum(int(t["messages"]) for t in stats["tabs"].values())


def run(quick: bool) -> list[Row]:
    """Latency rows for 1 tab (and 20 tabs unless ``quick``) at 100 and 1,000 events/s."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        print("bench_web: skipped, no /usr/bin/chromium + /usr/bin/chromedriver")
        return []
    seconds = 3.0 if quick else 8.0
    server = _Server()
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "REACTIVE_AIOPS_TOKEN": mint_token(server.secret, "bench", exp=time.time() + 3600,
                                              roles=("operator",))}
    assert server.server is not None
    web = subprocess.Popen(
        [sys.executable, "-m", "reactive_aiops", "web", "--url", server.server.url, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    rows: list[Row] = []
    driver = None
    try:
        assert web.stdout is not None
        found = re.search(r"web dashboard on (\S+)", web.stdout.readline())
        if found is None:
            raise RuntimeError("web dashboard did not start")
        url = found.group(1)
        driver = _driver()
        browser_pids = _descendants(driver.service.process.pid)
        server.burst(100, 0.5)  # rows exist before the observers start
        for tabs in (1,) if quick else (1, 20):
            handles = _open_tabs(driver, url, tabs)
            for rate in (100, 1000):
                rows.append(_measure(driver, handles, server, web.pid, browser_pids, url,
                                     rate, seconds))
            _close_tabs(driver, handles)
    finally:
        if driver is not None:
            driver.quit()
        web.terminate()
        web.wait(10)
        if web.stdout is not None:
            web.stdout.close()
        server.close()
    return rows


def _open_tabs(driver: Any, url: str, count: int) -> list[str]:
    handles = []
    for index in range(count):
        if index:
            driver.switch_to.new_window("tab")
        driver.get(url)
        _wait(lambda: "CONNECTED" in driver.find_element(
            "css selector", "[data-testid=connection]").text)
        _wait(lambda: driver.find_elements("css selector", "[data-testid=anomalies] tbody td"))
        handles.append(driver.current_window_handle)
    return handles


def _close_tabs(driver: Any, handles: list[str]) -> None:
    for handle in handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(handles[0])


def _measure(driver: Any, handles: list[str], server: _Server, web_pid: int,
             browser_pids: list[int], url: str, rate: float, seconds: float) -> Row:
    for handle in handles:
        driver.switch_to.window(handle)
        driver.execute_script(_OBSERVE)
    browser_pids = sorted(set(browser_pids) | set(_descendants(driver.service.process.pid)))
    web_cpu, browser_cpu = _cpu_seconds([web_pid]), _cpu_seconds(browser_pids)
    messages = _messages(url)
    started = time.perf_counter()
    sent = server.burst(rate, seconds)
    time.sleep(0.5)  # let the last frame land before reading the observers
    elapsed = time.perf_counter() - started
    web_cpu = _cpu_seconds([web_pid]) - web_cpu
    browser_cpu = _cpu_seconds(browser_pids) - browser_cpu
    messages = _messages(url) - messages
    latencies: list[float] = []
    for handle in handles:
        driver.switch_to.window(handle)
        latencies += driver.execute_script("const l = window.__lat; window.__lat = []; return l;")
    load = os.getloadavg()[0]
    note = (
        f"load {load:.1f}; p95 {_percentile(latencies, 95):.1f} ms, "
        f"p99 {_percentile(latencies, 99):.1f} ms; "
        f"{len(latencies) / len(handles):.0f} values seen per tab of {sent} sent; CPU dashboard "
        f"{web_cpu / elapsed * 100:.0f}%, browser {browser_cpu / elapsed * 100:.0f}% of a core; "
        f"{messages / elapsed / len(handles):.0f} UI msg/s per tab"
    )
    tabs = len(handles)
    return Row(group=f"event-to-DOM, {tabs} tab{'s' if tabs > 1 else ''}",
               variant=f"{rate:,.0f} ev/s", unit="ms",
               samples=tuple(latencies) or (float("nan"),), note=note)
