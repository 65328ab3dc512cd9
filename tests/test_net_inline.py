"""InlineConnection: text messages handed over from the socket's read callback, in order.

Against a real websockets server on 127.0.0.1 that sends whole, fragmented and binary messages.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from client_helpers import subscribed, until
from server_helpers import anomaly_event, config, token
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from reactive_aiops.net import WebSocketManager
from reactive_aiops.net.inline import InlineConnection
from reactive_aiops.server.app import serve_embedded

Script = Callable[[ServerConnection], Awaitable[None]]


async def _serve(script: Script) -> AsyncIterator[str]:
    async def handler(ws: ServerConnection) -> None:
        await script(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


class Received:
    """What a client saw, in order, and how each message came: inline (from the transport's
    read callback, where no task runs) or from ``deliver``'s loop over websockets' queue."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.inline = 0
        self.queued = 0

    def on_text(self, text: str) -> None:
        self._note(text)

    def on_binary(self, data: bytes) -> None:
        self._note(data)

    def _note(self, message: str | bytes) -> None:
        if asyncio.current_task() is None:
            self.inline += 1
        else:
            self.queued += 1
        self.messages.append(message)


async def _receive(script: Script, expected: int, *, budget: float = 60.0) -> Received:
    """Run ``script`` against an ``InlineConnection`` until ``expected`` messages arrived. The
    default budget never runs out (a loaded machine must not move messages to the queue)."""
    got = Received()
    async for url in _serve(script):
        async with connect(url, compression=None, create_connection=InlineConnection) as ws:
            assert isinstance(ws, InlineConnection)
            await ws.send("go")
            delivering = asyncio.create_task(ws.deliver(got.on_text, got.on_binary, budget=budget))
            await until(lambda: len(got.messages) >= expected, "every message")
            await ws.close()
            await delivering  # returns after a normal close
            assert ws.inline_messages == got.inline
    return got


def _sending(texts: list[str]) -> Script:
    """A server script: once the client speaks, send ``texts``, one message each."""

    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        for text in texts:
            await ws.send(text)

    return script


@pytest.mark.asyncio
async def test_text_messages_arrive_inline_outside_any_task_and_in_order() -> None:
    sent = [f"m{i}" for i in range(50)]
    got = await _receive(_sending(sent), len(sent))
    assert got.messages == sent
    assert got.inline == len(sent)


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(5))
async def test_fragmented_and_binary_messages_keep_their_place(seed: int) -> None:
    """Fragmented and binary messages go through websockets' queue; whatever follows them while
    the queue holds anything waits behind them, so the receiver sees the sent order."""
    rng = random.Random(seed)
    plan: list[tuple[str, Any]] = []
    for i in range(120):
        kind = rng.choice(("text", "text", "text", "fragments", "binary"))
        if kind == "fragments":
            plan.append((kind, [f"f{i}.{j}" for j in range(rng.randint(2, 4))]))
        elif kind == "binary":
            plan.append((kind, f"b{i}".encode()))
        else:
            plan.append((kind, f"t{i}"))
    expected: list[str | bytes] = [
        "".join(value) if kind == "fragments" else value for kind, value in plan
    ]

    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        for _kind, value in plan:
            await ws.send(value)
            if rng.random() < 0.2:
                await asyncio.sleep(0)  # some sends in separate reads, most coalesced

    got = await _receive(script, len(expected))
    assert got.messages == expected
    assert 0 < got.queued < len(expected)


@pytest.mark.asyncio
async def test_an_exhausted_budget_queues_the_rest_of_the_read() -> None:
    sent = [f"m{i}" for i in range(200)]
    got = await _receive(_sending(sent), len(sent), budget=0.0)
    assert got.messages == sent
    assert got.queued == len(sent)  # nothing inline: every read was over budget at once


async def _receive_all(ws: ClientConnection, into: list[Any]) -> None:
    async with asyncio.timeout(10):
        if isinstance(ws, InlineConnection):
            await ws.deliver(into.append, into.append)
        else:
            while True:
                into.append(await ws.recv())


@pytest.mark.asyncio
@pytest.mark.parametrize("connection_class", [ClientConnection, InlineConnection])
async def test_invalid_utf8_fails_the_connection_as_websockets_does(
    connection_class: type[ClientConnection],
) -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("fine")
        await ws.send(b"\xff\xfe not utf-8", text=True)

    received: list[Any] = []
    async for url in _serve(script):
        async with connect(url, compression=None, create_connection=connection_class) as ws:
            await ws.send("go")
            with pytest.raises(ConnectionClosed) as info:
                await _receive_all(ws, received)
    assert isinstance(info.value, ConnectionClosedError)
    assert info.value.sent is not None
    assert info.value.sent.code == 1007  # invalid data
    assert received == ["fine"]


# -- through WebSocketManager --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_manager_applies_live_publications_in_the_read_callback() -> None:
    """No task hop from the socket to the subscribers: they run outside any task."""
    async with serve_embedded(config()) as server:
        manager = WebSocketManager(server.url, token=token("alice"))
        subs = subscribed(manager)
        where: list[bool] = []
        manager.publications("anomalies").subscribe(
            lambda _pub: where.append(asyncio.current_task() is None)
        )
        await manager.connect()
        try:
            await until(lambda: subs == ["anomalies"], "subscribed")
            # One at a time, each in a read of its own: the manager's 2 ms budget per read
            # cannot run out, however loaded the machine.
            for i in range(10):
                server.publish("anomalies", anomaly_event(f"an-{i}", event_id=f"e{i}"))
                await until(lambda n=i + 1: len(where) == n, f"publication {i}")
            assert where == [True] * 10
        finally:
            await manager.close()


@pytest.mark.asyncio
async def test_an_error_in_inline_processing_ends_the_client_with_that_error() -> None:
    """As when the receive loop processed the frame: the connection ends and ``close()``
    raises the error; frames after it are not processed."""
    async with serve_embedded(config()) as server:
        manager = WebSocketManager(server.url, token=token("alice"))
        subs = subscribed(manager)
        got: list[object] = []
        manager.publications("anomalies").subscribe(got.append)
        await manager.connect()
        await until(lambda: subs == ["anomalies"], "subscribed")
        server.publish("anomalies", anomaly_event("an-0", event_id="e0"))
        await until(lambda: len(got) == 1, "first publication")
        protocol = manager._protocol  # fault injection: the protocol fails on the next frame
        receive = protocol.receive_text

        def broken(text: str, now: float) -> None:
            protocol.receive_text = receive  # type: ignore[method-assign]
            raise RuntimeError("planted failure")

        protocol.receive_text = broken  # type: ignore[method-assign]
        server.publish("anomalies", anomaly_event("an-1", event_id="e1"))
        server.publish("anomalies", anomaly_event("an-2", event_id="e2"))
        await until(lambda: not manager.running, "the client stopped")
        with pytest.raises(RuntimeError, match="planted failure"):
            await manager.close()
        assert len(got) == 1
