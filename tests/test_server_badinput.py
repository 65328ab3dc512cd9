"""Hypothesis-generated bad frames never crash the server nor disturb other clients.

One real server runs in a background thread for the module; every example opens its own socket,
throws a frame at it and then a well-formed command whose reply (or the close) proves the frame
was dealt with. A witness client subscribed to ``health`` must keep receiving every publication,
in order, and no error may be logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import config, token
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from reactive_aiops.server.app import EventServer

HEALTH = {"type": "health.updated", "v": 1, "id": "h", "ts": 0.0,
          "data": {"status": "ok", "events_per_second": 1.0, "open_anomalies": 0,
                   "detectors_active": 1, "detectors_error": 0, "updated_at": 1.0}}
#: Codes a misbehaving client may be closed with (normal closes leave the code None/1000).
ALLOWED_CLOSES = {None, 1000, 1002, 1007, 1009, 3500, 3501, 3502}


class Background:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EventServer(config(max_message_size=16 * 1024))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def publish_health(self) -> int:
        async def publish() -> int:
            return self.server.publish("health", HEALTH).offset
        return asyncio.run_coroutine_threadsafe(publish(), self.loop).result(5)


@pytest.fixture(scope="module")
def bg() -> Iterator[tuple[Background, Witness]]:
    with Background() as background, connect(background.server.url) as ws:
        yield background, Witness(ws)


class Witness:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ws.send(json.dumps({"id": 1, "connect": {"token": token()}}))
        self.ws.recv(timeout=5)
        self.ws.send(json.dumps({"id": 2, "subscribe": {"channel": "health"}}))
        reply = json.loads(self.ws.recv(timeout=5))
        self.offset = reply["subscribe"].get("offset", 0)

    def expect(self, offset: int) -> None:
        while True:
            frame = self.ws.recv(timeout=5)
            for line in str(frame).split("\n"):
                msg = json.loads(line)
                if msg == {}:
                    continue
                pub = msg["push"]["pub"]
                assert pub["offset"] == self.offset + 1
                self.offset = pub["offset"]
                if self.offset == offset:
                    return


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
methods = st.sampled_from(["connect", "subscribe", "unsubscribe", "rpc", "refresh", "history",
                           "publish", "presence", "send", "sub_refresh", "ping"]) | st.text(
    max_size=10)
commands = st.builds(
    lambda cid, method, body, extra: json.dumps({"id": cid, method: body, **extra}),
    st.one_of(st.integers(min_value=-5, max_value=2**33), st.text(max_size=4), st.none(),
              st.floats(allow_nan=False)),
    methods, json_values, st.dictionaries(st.text(max_size=5), json_values, max_size=2))
well_formed = st.one_of(
    st.builds(lambda m, d: json.dumps({"id": 7, "rpc": {"method": m, "data": d}}),
              st.text(max_size=20), json_values),
    st.builds(lambda c: json.dumps({"id": 7, "subscribe": {"channel": c}}), st.text(max_size=20)),
    st.builds(lambda c, o, e: json.dumps({"id": 7, "subscribe": {
        "channel": "anomalies", "recover": True, "offset": o, "epoch": e}}),
        st.none(), st.integers(min_value=0, max_value=2**64 - 1), st.text(max_size=8)),
    st.builds(lambda t: json.dumps({"id": 7, "refresh": {"token": t}}), st.text(max_size=40)),
)
INVALID_UTF8 = b'{"id":2,"rpc":{"method":"\xff\xfe"}}'
frames = st.one_of(
    well_formed,
    st.just(INVALID_UTF8),
    st.text(max_size=200),
    json_values.map(json.dumps),
    commands,
    st.lists(commands, min_size=1, max_size=4).map("\n".join),
    st.integers(min_value=1, max_value=40_000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=16_000, max_value=40_000).map(lambda n: '{"id":1,"x":"' + "a" * n),
    st.binary(max_size=64),
)


def exchange(url: str, connect_first: bool, frame: str | bytes) -> Any:
    with connect(url, max_size=None) as ws:
        return _exchange(ws, connect_first, frame)


def _exchange(ws: ClientConnection, connect_first: bool, frame: str | bytes) -> Any:
    try:
        if connect_first:
            ws.send(json.dumps({"id": 1, "connect": {"token": token()}}))
            ws.recv(timeout=5)
        if frame is INVALID_UTF8:
            ws.send(frame, text=True)  # a text frame that is not UTF-8
        else:
            ws.send(frame)
        ws.send(json.dumps({"id": 1000, "unsubscribe": {"channel": "x"}}))
        while True:
            text = ws.recv(timeout=5)
            if '"id":1000' in str(text):
                return None
    except ConnectionClosed:
        return ws.close_code


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(connect_first=st.booleans(), frame=frames)
def test_bad_frames_get_an_error_or_a_close_and_others_are_undisturbed(
        bg: tuple[Background, Witness], caplog: pytest.LogCaptureFixture, connect_first: bool,
        frame: str | bytes) -> None:
    caplog.set_level(logging.INFO)
    background, witness = bg
    code = exchange(background.server.url, connect_first, frame)
    assert code in ALLOWED_CLOSES
    witness.expect(background.publish_health())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert background.server.stats.internal_errors == 0
