"""Regenerate the docs' web dashboard screenshot from a real browser (``make screenshots``).

``python -m reactive_aiops.ui.web.screenshots DIR`` starts ``reactive-aiops web`` with the
embedded server and simulated source on a free loopback port, opens it in headless Chromium
(Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, through Selenium from the test
extra), waits until anomalies and the events/s chart are live, selects the first anomaly so its
score chart shows, and writes ``DIR/web-dashboard.png``. A development tool: exits 2 when the
browser or Selenium is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _wait(predicate: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # the page is re-rendering
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshot: {what} not within {within:g} s")
        time.sleep(0.1)


def _shoot(url: str, target: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,720",
                "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        # Granted notifications go to the system, not as toasts over the page.
        driver.execute_cdp_cmd("Browser.grantPermissions",
                               {"permissions": ["notifications"], "origin": url.rstrip("/")})
        driver.get(url)
        rows = "[data-testid=anomalies] tbody tr"
        _wait(lambda: "CONNECTED" in driver.find_element(
            "css selector", "[data-testid=connection]").text, 20, "connected")
        _wait(lambda: driver.find_elements("css selector", rows), 60, "anomalies")
        time.sleep(6.0)  # let the events/s chart gather a few samples
        # Incidents of the simulation last seconds: pick one, let its score chart fill, and
        # shoot while it is still listed (else try the next one).
        for _attempt in range(10):
            _wait(lambda: driver.find_elements("css selector", rows), 60, "an anomaly")
            driver.find_elements("css selector", rows)[0].click()
            time.sleep(1.5)
            selected = driver.find_element("css selector", "[data-testid=selected]").text
            if selected.startswith("selected:") and "no longer listed" not in selected:
                break
        driver.save_screenshot(str(target))
    finally:
        driver.quit()


def main(argv: list[str]) -> int:
    """Write ``web-dashboard.png`` into the directory ``argv[0]``; exit status."""
    if len(argv) != 1:
        print("usage: python -m reactive_aiops.ui.web.screenshots DIR", file=sys.stderr)
        return 2
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        print("screenshots need chromium and chromium-driver (apt-get install -y chromium "
              "chromium-driver)", file=sys.stderr)
        return 2
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("screenshots need selenium: pip install -e '.[test]'", file=sys.stderr)
        return 2
    target_dir = Path(argv[0])
    target_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REACTIVE_AIOPS_")}
    env["PYTHONUNBUFFERED"] = "1"
    web = subprocess.Popen(
        [sys.executable, "-m", "reactive_aiops", "web", "--port", "0", "--rate", "100",
         "--seed", "3"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert web.stdout is not None
        found = re.search(r"web dashboard on (\S+)", web.stdout.readline())
        if found is None:
            print("the web dashboard did not start", file=sys.stderr)
            return 1
        target = target_dir / "web-dashboard.png"
        _shoot(found.group(1), target)
        print(f"wrote {target}")
    finally:
        web.terminate()
        web.wait(10)
        if web.stdout is not None:
            web.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
