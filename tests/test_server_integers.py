"""Integers: AIOps payloads carry only JavaScript-safe integers (400 on the publish API, 3501 on
a client connection); protocol offsets stay unsigned 64-bit; GET on the publish API is 405."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_helpers import API_KEY, RawClient, anomaly_event, config, detector_event, token
from test_server_app import http_post

from reactive_aiops.server.app import serve_embedded
from reactive_aiops.server.core import PublishError, ServerCore
from reactive_aiops.wire.codec import decode_commands
from reactive_aiops.wire.errors import ProtocolError
from reactive_aiops.wire.integers import MAX_SAFE_INTEGER, find_unsafe_integer
from reactive_aiops.wire.messages import MAX_OFFSET, StreamPosition, SubscribeRequest

SAFE = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
UNSAFE = st.one_of(st.integers(min_value=MAX_SAFE_INTEGER + 1),
                   st.integers(max_value=-MAX_SAFE_INTEGER - 1))


@given(SAFE)
def test_safe_version_is_published(version: int) -> None:
    core = ServerCore(config())
    core.publish("detectors", detector_event(version=version))
    assert core.state.detectors["det-x"].version == version


@given(UNSAFE)
def test_unsafe_version_is_refused_with_400(version: int) -> None:
    core = ServerCore(config())
    with pytest.raises(PublishError) as info:
        core.publish("detectors", detector_event(version=version))
    assert info.value.code == 400
    assert core.broker.published == 0


@given(UNSAFE)
def test_unsafe_integer_anywhere_in_the_payload_is_found(n: int) -> None:
    event = anomaly_event()
    event["data"]["labels"] = {"deep": [1, {"x": n}]}
    assert find_unsafe_integer(event["data"]) == n
    with pytest.raises(PublishError):
        ServerCore(config()).publish("anomalies", event)


def test_booleans_and_floats_are_not_integers() -> None:
    assert find_unsafe_integer({"a": True, "b": 1e300, "c": [False]}) is None


def test_hopelessly_nested_payload_is_a_400_not_a_crash() -> None:
    event = anomaly_event()
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    event["data"]["extra"] = deep
    with pytest.raises(PublishError) as info:
        ServerCore(config()).publish("anomalies", event)
    assert info.value.code == 400


@pytest.mark.asyncio
async def test_publish_api_refuses_a_401_digit_version_and_get_is_405() -> None:
    async with serve_embedded(config()) as server:
        auth = {"Authorization": f"apikey {API_KEY}"}
        huge = json.dumps({"channel": "detectors",
                           "data": detector_event(version=10**400)}).encode()
        status, body = await http_post(server, huge, auth)
        assert status == 400
        assert "integers" in body["error"]["message"]
        fine = json.dumps({"channel": "detectors",
                           "data": detector_event(version=MAX_SAFE_INTEGER)}).encode()
        assert (await http_post(server, fine, auth))[0] == 200
        status, body = await http_get(server.port, "/api/publish")
        assert status == 405
        assert json.loads(body)["error"]["code"] == 405


@pytest.mark.asyncio
async def test_unsafe_integer_in_a_command_closes_the_connection_3501() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())
        await client.send("rpc", {"method": "anomaly.acknowledge",
                                  "data": {"command_id": "c1", "anomaly_id": "a", "n": 2**60}})
        assert await client.closed_code() == 3501


@pytest.mark.parametrize("offset", [-1, -(2**63), 2**64])
def test_out_of_range_offsets_are_protocol_errors(offset: int) -> None:
    frame = json.dumps({"id": 1, "subscribe": {"channel": "anomalies", "recover": True,
                                               "offset": offset, "epoch": "e"}})
    with pytest.raises(ProtocolError):
        decode_commands(frame)
    history = json.dumps({"id": 2, "history": {"channel": "anomalies",
                                               "since": {"offset": offset, "epoch": "e"}}})
    with pytest.raises(ProtocolError):
        decode_commands(history)


def test_largest_offset_is_fine() -> None:
    assert SubscribeRequest(offset=MAX_OFFSET).offset == MAX_OFFSET
    with pytest.raises(ValueError, match="uint64"):
        StreamPosition(offset=-1)


@pytest.mark.asyncio
async def test_negative_recovery_offset_closes_3501() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        await client.connect(token())
        await client.send("subscribe", {"channel": "anomalies", "recover": True, "offset": -1})
        assert await client.closed_code() == 3501


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTP GET on the server's port: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b"\r\n")[0].split()[1]), body


def _reference_find(value: Any, depth: int = 64) -> int | None:
    """The recursive walk ``find_unsafe_integer`` replaced: the reference for its answers."""
    kind = type(value)
    if kind is int:
        return value if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None
    if depth <= 0:
        raise ValueError("JSON nested too deep")
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return None
    for item in items:
        found = _reference_find(item, depth - 1)
        if found is not None:
            return found
    return None


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
    | st.integers(-(2**60), 2**60)
    | st.sampled_from([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, -(2**53)]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(_JSON, st.integers(0, 6))
def test_find_unsafe_integer_answers_as_the_recursive_walk(value: Any, depth: int) -> None:
    try:
        expected: Any = _reference_find(value, depth)
    except ValueError:
        expected = ValueError
    try:
        got: Any = find_unsafe_integer(value, depth=depth)
    except ValueError:
        got = ValueError
    assert got == expected
