"""The web dashboard in a real headless Chromium, against a real event server.

One event server (``serve_embedded`` on 127.0.0.1, port 0, on its own loop thread), one
``reactive-aiops web`` process connected to it with an operator token, and one browser for the
module. Every wait is for a DOM condition, bounded; each test uses its own anomaly ids. With
``CI=true`` a missing browser fails these tests; locally they are skipped with the install
command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from dashboard_helpers import anomaly_event, detector_event
from web_helpers import (
    ServerThread,
    WebProcess,
    new_driver,
    require_browser,
    save_screenshot,
    wait_for,
)

DETECTORS = {"det-1": "cpu watcher", "det-2": "latency watcher", "det-3": "error watcher"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    require_browser()
    with ServerThread() as running:
        for detector_id, name in DETECTORS.items():
            running.publish("detectors", detector_event(detector_id, name))
        yield running


@pytest.fixture(scope="module")
def web(server: ServerThread) -> Iterator[WebProcess]:
    process = WebProcess("--url", server.url, "--user", "ann",
                         env={"REACTIVE_AIOPS_TOKEN": server.token()})
    yield process
    process.close()


@pytest.fixture(scope="module")
def driver(web: WebProcess, server: ServerThread) -> Iterator[Any]:
    browser = new_driver()
    origin = web.url.rstrip("/")
    browser.execute_cdp_cmd("Browser.grantPermissions",
                            {"permissions": ["notifications"], "origin": origin})
    yield browser
    browser.quit()


# -- page helpers ----------------------------------------------------------------------------------


def _text(driver: Any, testid: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").text
    return text


def _row(driver: Any, anomaly_id: str) -> Any:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(
        By.XPATH, f"//*[@data-testid='anomalies']//tr[td[normalize-space()='{anomaly_id}']]"
    )
    return rows[0] if rows else None


def _row_text(driver: Any, anomaly_id: str) -> str:
    row = _row(driver, anomaly_id)
    return "" if row is None else str(row.text)


def _open(driver: Any, web: WebProcess, query: str = "") -> None:
    driver.get(web.url + query)
    wait_for(lambda: "CONNECTED" in _text(driver, "connection"), what="connected state")


def _click(driver: Any, testid: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]").click()


def _select(driver: Any, anomaly_id: str) -> None:
    wait_for(lambda: _row(driver, anomaly_id), what=f"row {anomaly_id}").click()
    wait_for(lambda: f"selected: {anomaly_id}" in _text(driver, "selected"),
             what=f"{anomaly_id} selected")


def _event(anomaly_id: str, severity: str = "high", **fields: Any) -> dict[str, object]:
    event = anomaly_event(anomaly_id, severity, version=fields.pop("version", 1))
    data = event["data"]
    assert isinstance(data, dict)
    data.update(fields)
    if "version" in data:
        event["id"] = f"ev-{anomaly_id}-{data['version']}"
    return event


# -- tests -----------------------------------------------------------------------------------------


def test_page_shows_connected_state_every_detector_and_a_new_anomaly(
    driver: Any, web: WebProcess, server: ServerThread, tmp_path: Path
) -> None:
    _open(driver, web)
    connection = _text(driver, "connection")
    for figure in ("latency", "msg/s", "reconnects", "resyncs"):
        assert figure in connection
    wait_for(lambda: all(f"{name}: active" in _text(driver, "detectors")
                         for name in DETECTORS.values()), what="every detector badge")
    assert "signed in as ann" in _text(driver, "user")

    server.publish("anomalies", _event("t1-a1", "medium", metric="db.connections"))
    text = wait_for(lambda: _row_text(driver, "t1-a1"), what="the injected anomaly")
    assert "medium" in text
    assert "db.connections" in text
    assert "open" in text
    save_screenshot(driver, tmp_path, "web-dashboard")


def test_acknowledge_shows_at_once_and_the_server_settles_it(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    _open(driver, web)
    server.publish("anomalies", _event("t2-a1", "low"))
    _select(driver, "t2-a1")
    with server.paused():
        # The server cannot answer while paused: what the page shows is the optimistic state.
        _click(driver, "ack")
        wait_for(lambda: "acknowledge pending" in _row_text(driver, "t2-a1"),
                 what="pending mark")
        assert "ann" in _row_text(driver, "t2-a1")
    wait_for(lambda: "acknowledged" in _row_text(driver, "t2-a1")
             and "pending" not in _row_text(driver, "t2-a1"), what="confirmed state")
    # The server records the connection's user; the page names who clicked.
    wait_for(lambda: "ann via operator" in _row_text(driver, "t2-a1"), what="who acknowledged")
    wait_for(lambda: "ann: acknowledge anomaly:t2-a1 → confirmed" in _text(driver, "activity"),
             what="the command in the page's activity list")
    assert server.call(lambda s: s.core.state.anomalies["t2-a1"].state) == "acknowledged"
    line = wait_for(lambda: [a for a in web.audit_lines() if "outcome=confirmed" in a
                             and "entity=anomaly:t2-a1" in a], what="audit line")
    assert "user=ann action=acknowledge" in line[0]


def test_rejected_command_rolls_back_with_its_reason(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    _open(driver, web)
    server.publish("anomalies", _event("t3-a1", "low"))
    _select(driver, "t3-a1")

    def resolve_behind_the_clients_back(s: Any) -> None:
        state = s.core.state
        state.anomalies["t3-a1"] = attrs.evolve(state.anomalies["t3-a1"], state="resolved")

    server.call(resolve_behind_the_clients_back)
    _click(driver, "ack")
    text = wait_for(lambda: (t := _row_text(driver, "t3-a1")) and "reverted" in t and t,
                    what="rolled back row")
    assert "open · acknowledge reverted: rejected" in text
    assert "409" in text or "conflict" in text.lower()
    # the toast comes with the same update as the row, but may reach the DOM a moment later
    wait_for(lambda: "t3-a1: acknowledge reverted" in driver.find_element("tag name", "body").text,
             what="the revert toast")
    wait_for(lambda: [a for a in web.audit_lines() if "entity=anomaly:t3-a1" in a
                      and "outcome='reverted: rejected" in a], what="audit of the revert")


def test_wire_text_is_rendered_as_text_never_html(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    _open(driver, web)
    evil = "<img src=x onerror=alert(1)>"
    server.publish("anomalies", _event("t4-a1", "low", metric=evil))
    text = wait_for(lambda: _row_text(driver, "t4-a1"), what="the anomaly with an HTML metric")
    assert evil in text
    assert driver.find_elements(By.CSS_SELECTOR, "img[src=x]") == []
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is the check


def test_two_tabs_with_different_filters_both_stay_live(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    _open(driver, web, "?severity=critical")
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    second = driver.current_window_handle
    try:
        _open(driver, web, "?severity=low")
        for round_ in (1, 2):
            server.publish("anomalies", _event(f"t5-c{round_}", "critical"))
            server.publish("anomalies", _event(f"t5-l{round_}", "low"))
            for handle, shown, hidden in ((second, "l", "c"), (first, "c", "l")):
                driver.switch_to.window(handle)
                wait_for(lambda s=shown: _row(driver, f"t5-{s}{round_}"),  # noqa: B023
                         what=f"tab shows t5-{shown}{round_}")
                assert _row(driver, f"t5-{hidden}{round_}") is None
    finally:
        driver.switch_to.window(second)
        driver.close()
        driver.switch_to.window(first)


def test_a_new_critical_anomaly_raises_exactly_one_notification(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    _open(driver, web)
    assert driver.execute_script("return Notification.permission") == "granted"
    assert driver.execute_script("return window.__raiopsNotes.length") == 0
    server.publish("anomalies", _event("t6-a1", "critical", metric="disk.io_wait"))
    wait_for(lambda: driver.execute_script("return window.__raiopsNotes.length") >= 1,
             what="a notification")
    for version in (2, 3, 4):  # updates of the same anomaly: no new notification
        server.publish("anomalies", _event("t6-a1", "critical", version=version,
                                           score=9.0 + version))
    # A low anomaly published last: once it shows, every update above was rendered.
    server.publish("anomalies", _event("t6-marker", "low"))
    wait_for(lambda: _row(driver, "t6-marker"), what="marker row")
    wait_for(lambda: "13" in _row_text(driver, "t6-a1"), what="last update rendered")
    notes = driver.execute_script("return window.__raiopsNotes")
    assert notes == ["CRITICAL anomaly: disk.io_wait"]


def test_without_permission_a_new_critical_anomaly_shows_a_toast_instead(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    origin = web.url.rstrip("/")
    driver.execute_cdp_cmd("Browser.resetPermissions", {})
    try:
        _open(driver, web)
        assert driver.execute_script("return Notification.permission") != "granted"
        server.publish("anomalies", _event("t10-a1", "high", metric="http.error_rate"))
        wait_for(lambda: "HIGH anomaly: http.error_rate" in driver.find_element(
            "tag name", "body").text, what="the toast")
        assert driver.execute_script("return window.__raiopsNotes.length") == 0
    finally:
        driver.execute_cdp_cmd("Browser.grantPermissions",
                               {"permissions": ["notifications"], "origin": origin})


def test_reconnects_after_a_server_restart_and_shows_the_current_state(
    driver: Any, web: WebProcess, server: ServerThread, tmp_path: Path
) -> None:
    _open(driver, web)
    server.run(server.server.stop())  # type: ignore[union-attr]
    try:
        wait_for(lambda: "RECONNECTING" in _text(driver, "connection"), what="reconnecting")
        save_screenshot(driver, tmp_path, "web-reconnecting")
        # Changed while the dashboard cannot see it: it must show it after the reconnect.
        server.publish("anomalies", _event("t7-a1", "high", metric="queue.depth"))
    finally:
        server.run(server.server.start())  # type: ignore[union-attr]
    wait_for(lambda: "CONNECTED" in _text(driver, "connection")
             and "RECONNECTING" not in _text(driver, "connection"), within=20.0,
             what="connected again")
    wait_for(lambda: _row(driver, "t7-a1"), what="the anomaly published while down")
    assert "reconnects 0" not in _text(driver, "connection")


def test_web_stats_count_frames_per_tab(
    web: WebProcess, driver: Any, server: ServerThread
) -> None:
    from urllib.request import urlopen

    _open(driver, web)
    server.publish("anomalies", _event("t8-a1", "low"))
    wait_for(lambda: _row(driver, "t8-a1"), what="a rendered update")
    with urlopen(web.url + "api/web-stats", timeout=5) as response:
        stats = json.load(response)
    assert stats["tabs"]
    for counters in stats["tabs"].values():
        assert counters["frames"] >= 1
        assert counters["messages"] >= 1


def test_non_loopback_host_without_login_configuration_refuses_to_start() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "reactive_aiops", "web", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "not loopback" in lines[0]
    assert "REACTIVE_AIOPS_WEB_USERS" in lines[0]


def test_login_page_signs_in_a_user_from_the_users_file(
    server: ServerThread, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from reactive_aiops.ui.web.auth import hash_password

    users = tmp_path / "users"
    users.write_text(f"bob:{hash_password('s3cret', n=1024).encode()}\n", encoding="utf-8")
    token = server.token()
    process = WebProcess("--url", server.url, "--login", "--users-file", str(users),
                         env={"REACTIVE_AIOPS_TOKEN": token})
    browser = new_driver()
    try:
        browser.get(process.url)
        wait_for(lambda: "/login" in browser.current_url, what="redirect to the login page")

        user_box = wait_for(lambda: browser.find_element(
            By.CSS_SELECTOR, "input[data-testid=login-user]"), what="user field")
        user_box.send_keys("bob")
        # No clear(): it empties the DOM behind Vue's back; the page empties the password itself.
        password_box = browser.find_element(By.CSS_SELECTOR, "input[data-testid=login-password]")
        password_box.send_keys("wrong")
        _click(browser, "login-submit")
        wait_for(lambda: "wrong user name or password" in _text(browser, "login-message"),
                 what="refusal")
        assert password_box.get_attribute("value") == ""
        password_box.send_keys("s3cret")
        _click(browser, "login-submit")
        wait_for(lambda: "signed in as bob" in _text(browser, "user"), what="signed in")
        wait_for(lambda: "CONNECTED" in _text(browser, "connection"), what="connected")
        # The operator token never reaches the browser.
        assert token.rsplit(".", 1)[1] not in browser.page_source
    finally:
        browser.quit()
        process.close()


def test_pause_detector_shows_pending_then_the_servers_state(
    driver: Any, web: WebProcess, server: ServerThread
) -> None:
    _open(driver, web)
    server.publish("anomalies", _event("t9-a1", "low", detector_id="det-3"))
    _select(driver, "t9-a1")
    with server.paused():
        _click(driver, "pause")
        # The optimistic state at once, marked as waiting for the server.
        wait_for(lambda: "error watcher: paused (pause pending)" in _text(driver, "detectors"),
                 what="pending pause on the badge")
    wait_for(lambda: "error watcher: paused" in _text(driver, "detectors")
             and "pending" not in _text(driver, "detectors"), what="paused, confirmed")
    wait_for(lambda: [a for a in web.audit_lines() if "user=ann action=pause entity=detector:det-3"
                      " outcome=confirmed" in a], what="audit of the pause")
    _click(driver, "pause")  # toggles back
    wait_for(lambda: "error watcher: active" in _text(driver, "detectors")
             and "pending" not in _text(driver, "detectors"), what="resumed")


def test_tls_serves_https(server: ServerThread, tmp_path: Path) -> None:
    import shutil
    import ssl
    from urllib.request import urlopen

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    process = WebProcess("--url", server.url, "--tls-cert", str(cert), "--tls-key", str(key),
                         env={"REACTIVE_AIOPS_TOKEN": server.token()})
    try:
        assert process.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        with urlopen(process.url, context=context, timeout=10) as response:
            assert response.status == 200
            assert "reactive-aiops" in response.read().decode("utf-8")
    finally:
        process.close()
