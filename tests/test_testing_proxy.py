"""FaultProxy against a trivial echo server: forwarding, each fault, counters, clean shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from reliability_helpers import WAIT, open_fds, wait_until

from reactive_aiops.testing import FaultProxy

# a short window to show bytes do not arrive
ABSENT = 0.2


class Echo:
    """An echo server that prefixes replies with a tag (to tell two upstreams apart)."""

    def __init__(self, tag: bytes) -> None:
        self.tag = tag
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.closed_by_peer = 0
        self.reset_by_peer = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while data := await reader.read(65536):
                writer.write(self.tag + data)
                await writer.drain()
            self.closed_by_peer += 1
        except ConnectionResetError:
            self.reset_by_peer += 1
        finally:
            writer.close()

    async def aclose(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[tuple[Echo, int]]:
    server = Echo(b"A:")
    port = await server.start()
    yield server, port
    await server.aclose()


async def _open(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, msg: bytes
) -> bytes:
    writer.write(msg)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(msg) + 2), WAIT)


@pytest.mark.asyncio
async def test_forwards_both_ways_and_counts(echo: tuple[Echo, int]) -> None:
    _, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        conns = [await _open(proxy) for _ in range(3)]
        for i, (r, w) in enumerate(conns):
            assert await _roundtrip(r, w, b"hello%d" % i) == b"A:hello%d" % i
        assert proxy.accepted == 3
        assert proxy.active == 3
        assert len(proxy.attempt_times) == 3
        assert proxy.attempt_times == sorted(proxy.attempt_times)
        for _, w in conns:
            w.close()
            await w.wait_closed()


@pytest.mark.asyncio
async def test_orderly_close_propagates_and_link_is_forgotten(echo: tuple[Echo, int]) -> None:
    server, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await _open(proxy)
        assert await _roundtrip(r, w, b"x") == b"A:x"
        w.write_eof()
        assert await asyncio.wait_for(r.read(), WAIT) == b""  # echo closed after our EOF
        w.close()
        await w.wait_closed()
        await wait_until(lambda: proxy.active == 0)
        assert server.closed_by_peer == 1


@pytest.mark.asyncio
async def test_cut_resets_both_sides(echo: tuple[Echo, int]) -> None:
    server, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await _open(proxy)
        assert await _roundtrip(r, w, b"x") == b"A:x"
        assert proxy.cut() == 1
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(r.read(100), WAIT)
        w.close()
        await wait_until(lambda: server.reset_by_peer != 0)
        assert proxy.active == 0
        # the proxy keeps accepting after a cut
        r2, w2 = await _open(proxy)
        assert await _roundtrip(r2, w2, b"y") == b"A:y"
        w2.close()


@pytest.mark.asyncio
async def test_blackhole_drops_bytes_and_keeps_sockets_until_restore(
    echo: tuple[Echo, int],
) -> None:
    server, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await _open(proxy)
        assert await _roundtrip(r, w, b"1") == b"A:1"
        proxy.blackhole()
        w.write(b"lost")
        await w.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.read(100), ABSENT)
        # a new connection is accepted but nothing flows
        r2, w2 = await _open(proxy)
        w2.write(b"also lost")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r2.read(100), ABSENT)
        # teardown is swallowed while blackholed: the server side stays open
        w2.close()
        await w2.wait_closed()
        await asyncio.sleep(ABSENT)
        assert server.closed_by_peer == 0
        assert proxy.active == 2
        proxy.restore()
        assert await _roundtrip(r, w, b"2") == b"A:2"
        await wait_until(lambda: server.closed_by_peer != 0)
        assert proxy.active == 1
        w.close()


@pytest.mark.asyncio
async def test_delay_holds_each_direction_in_order(echo: tuple[Echo, int]) -> None:
    _, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await _open(proxy)
        proxy.delay(0.15, "up")
        start = time.monotonic()
        for i in range(5):
            w.write(b"%d" % i)
        got = b""
        async with asyncio.timeout(WAIT):
            while len(got.replace(b"A:", b"")) < 5:
                got += await r.read(100)
        assert got.replace(b"A:", b"") == b"01234"
        assert time.monotonic() - start >= 0.15
        proxy.delay(0, "up")
        proxy.delay(0.15, "down")
        assert proxy.delay_of("up") == 0.0
        assert proxy.delay_of("down") == 0.15
        start = time.monotonic()
        assert await _roundtrip(r, w, b"z") == b"A:z"
        assert time.monotonic() - start >= 0.15
        with pytest.raises(ValueError, match=">= 0"):
            proxy.delay(-1)
        w.close()


@pytest.mark.asyncio
async def test_refuse_resets_new_connections_until_accept_again(echo: tuple[Echo, int]) -> None:
    _, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        proxy.refuse()
        r, w = await _open(proxy)
        w.write(b"x")
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(3), WAIT)
        w.close()
        assert proxy.refused == 1
        proxy.accept_again()
        r2, w2 = await _open(proxy)
        assert await _roundtrip(r2, w2, b"y") == b"A:y"
        w2.close()
        assert proxy.accepted == 2


@pytest.mark.asyncio
async def test_timed_refusal_ends_on_the_injected_clock(echo: tuple[Echo, int]) -> None:
    _, port = echo
    now = [100.0]
    async with FaultProxy("127.0.0.1", port, clock=lambda: now[0]) as proxy:
        proxy.refuse(5.0)
        r, w = await _open(proxy)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1), WAIT)
        w.close()
        now[0] = 105.0
        r2, w2 = await _open(proxy)
        assert await _roundtrip(r2, w2, b"ok") == b"A:ok"
        w2.close()
        assert (proxy.refused, proxy.accepted) == (1, 2)
        assert proxy.attempt_times == [100.0, 105.0]


@pytest.mark.asyncio
async def test_unreachable_upstream_resets_the_client() -> None:
    echo = Echo(b"A:")
    port = await echo.start()
    await echo.aclose()  # nothing listens on ``port`` any more
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await _open(proxy)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1), WAIT)
        w.close()
        assert proxy.refused == 1


@pytest.mark.asyncio
async def test_retarget_moves_new_connections_only(echo: tuple[Echo, int]) -> None:
    _, port = echo
    other = Echo(b"B:")
    other_port = await other.start()
    try:
        async with FaultProxy("127.0.0.1", port) as proxy:
            r, w = await _open(proxy)
            proxy.retarget(other_port)
            r2, w2 = await _open(proxy)
            assert await _roundtrip(r, w, b"old") == b"A:old"
            assert await _roundtrip(r2, w2, b"new") == b"B:new"
            w.close()
            w2.close()
    finally:
        await other.aclose()


@pytest.mark.asyncio
async def test_aclose_leaves_no_task_or_socket(echo: tuple[Echo, int]) -> None:
    _, port = echo
    before_fds = open_fds()
    before_tasks = asyncio.all_tasks()
    proxy = await FaultProxy("127.0.0.1", port).start()
    clients = [await _open(proxy) for _ in range(4)]
    for r, w in clients[:2]:
        assert await _roundtrip(r, w, b"k") == b"A:k"
    proxy.delay(10.0)  # pending timers must not survive aclose
    clients[0][1].write(b"held")
    proxy.blackhole()
    await proxy.aclose()
    assert proxy.active == 0
    for r, w in clients:
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(r.read(100), WAIT)
        w.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before_tasks == set()
    # echo's server-side sockets may still be closing; the proxy's own are gone
    await wait_until(lambda: open_fds() <= before_fds)
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.port


@pytest.mark.asyncio
async def test_start_twice_is_an_error(echo: tuple[Echo, int]) -> None:
    _, port = echo
    async with FaultProxy("127.0.0.1", port) as proxy:
        with pytest.raises(RuntimeError, match="already started"):
            await proxy.start()
