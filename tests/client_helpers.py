"""A small scriptable Centrifuge v2 JSON server for client tests (127.0.0.1, port 0).

It speaks just enough of the protocol through reactive_aiops.wire: connect (with token checks),
subscribe with recovery from (epoch, offset), unsubscribe, rpc (echo, or a scripted error),
refresh, pings. Tests script faults: kill and restart on the same port, close with any code,
change a channel's epoch, skip offsets, stop pinging.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from reactive_aiops.wire import (
    Command,
    ConnectRequest,
    ConnectResult,
    Error,
    Ping,
    Pong,
    ProtocolError,
    Publication,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    ServerMessage,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeRequest,
    UnsubscribeResult,
    decode_commands,
    encode_replies,
)


@attrs.define
class Stream:
    """One channel's history: publications with consecutive offsets within ``epoch``."""

    epoch: str = "e1"
    offset: int = 0
    history: list[Publication] = attrs.field(factory=list)


@attrs.define
class Conn:
    ws: ServerConnection
    channels: set[str] = attrs.field(factory=set)
    connected: bool = False


class ScriptedServer:
    """Start with ``await server.start()``; ``server.url`` is the endpoint."""

    def __init__(
        self,
        *,
        ping: int = 0,
        pong: bool = True,
        tokens: dict[str, str] | None = None,
        ttl: int = 0,
        recoverable: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls
        self.ping = ping
        self.pong = pong
        #: token -> "ok" | "expired" | "invalid" | "unauthorized"; None accepts anything.
        self.tokens = tokens
        self.ttl = ttl
        self.recoverable = recoverable
        self.streams: dict[str, Stream] = {}
        self.conns: list[Conn] = []
        self.connects = 0
        self.commands: list[Any] = []
        self.rpc_errors: dict[str, Error] = {}
        #: method -> async handler(data) returning the result data (e.g. a scripted snapshot)
        self.rpc_handlers: dict[str, Callable[[Any], Awaitable[Any]]] = {}
        self.pinging = True
        self.port = 0
        self._server: Server | None = None
        self._ping_tasks: set[asyncio.Task[None]] = set()
        self.on_command: Callable[[Any], None] | None = None

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/connection/websocket"

    async def start(self) -> None:
        """Listen (again, on the same port after ``kill``)."""
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, compression=None, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def kill(self) -> None:
        """Stop listening and drop every connection without a close handshake."""
        assert self._server is not None
        self._server.close(close_connections=False)
        for conn in list(self.conns):
            conn.ws.transport.abort()
        await self._server.wait_closed()
        self._server = None
        for task in list(self._ping_tasks):
            task.cancel()

    async def stop(self) -> None:
        """Shut down cleanly (test teardown)."""
        if self._server is not None:
            await self.kill()

    async def close_all(self, code: int, reason: str) -> None:
        """Close every connection with ``code``/``reason`` (a Centrifuge disconnect)."""
        for conn in list(self.conns):
            await conn.ws.close(code, reason)

    def subscribed(self, channel: str) -> bool:
        """True if some live connection is subscribed to ``channel``."""
        return any(channel in conn.channels for conn in self.conns)

    def stream(self, channel: str) -> Stream:
        return self.streams.setdefault(channel, Stream())

    async def publish(self, channel: str, data: Any) -> Publication:
        """Append to the channel's history and broadcast to its subscribers."""
        stream = self.stream(channel)
        stream.offset += 1
        pub = Publication(data=data, offset=stream.offset)
        stream.history.append(pub)
        frame = encode_replies([Push(channel, pub)])
        for conn in list(self.conns):
            if channel in conn.channels:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(frame)
        return pub

    def lose(self, channel: str, count: int = 1) -> None:
        """Advance the offset without sending or keeping anything (history lost: a hole)."""
        self.stream(channel).offset += count

    def new_epoch(self, channel: str, epoch: str) -> None:
        """Reset the stream, as after a broker restart: new epoch, empty history."""
        self.streams[channel] = Stream(epoch=epoch, offset=0)

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(ws)
        self.conns.append(conn)
        try:
            async for text in ws:
                try:
                    messages = decode_commands(text)
                except ProtocolError:
                    await ws.close(3501, "bad request")
                    return
                out: list[ServerMessage] = []
                for message in messages:
                    self.commands.append(message)
                    if self.on_command is not None:
                        self.on_command(message)
                    if isinstance(message, Pong):
                        continue
                    reply = await self._answer(conn, message)
                    if reply is None:
                        return
                    out.extend(reply)
                if out:
                    await ws.send(encode_replies(out))
        except ConnectionClosed:
            pass
        finally:
            self.conns.remove(conn)

    async def _answer(self, conn: Conn, cmd: Command) -> list[ServerMessage] | None:
        req = cmd.request
        if isinstance(req, ConnectRequest):
            verdict = "ok" if self.tokens is None else self.tokens.get(req.token, "invalid")
            if verdict == "invalid":
                await conn.ws.close(3500, "invalid token")
                return None
            if verdict == "expired":
                return [Reply(cmd.id, Error(109, "token expired"))]
            if verdict == "unauthorized":
                return [Reply(cmd.id, Error(101, "unauthorized"))]
            self.connects += 1
            conn.connected = True
            if self.ping:
                task = asyncio.get_running_loop().create_task(self._pinger(conn))
                self._ping_tasks.add(task)
                task.add_done_callback(self._ping_tasks.discard)
            result = ConnectResult(
                client=f"c{self.connects}",
                version="test",
                ping=self.ping,
                pong=self.pong,
                expires=self.ttl > 0,
                ttl=self.ttl,
            )
            return [Reply(cmd.id, result)]
        if isinstance(req, SubscribeRequest):
            conn.channels.add(req.channel)
            return [Reply(cmd.id, self._subscribe(req))]
        if isinstance(req, UnsubscribeRequest):
            conn.channels.discard(req.channel)
            return [Reply(cmd.id, UnsubscribeResult())]
        if isinstance(req, RPCRequest):
            error = self.rpc_errors.get(req.method)
            if error is not None:
                return [Reply(cmd.id, error)]
            handler = self.rpc_handlers.get(req.method)
            if handler is not None:
                return [Reply(cmd.id, RPCResult(data=await handler(req.data)))]
            return [Reply(cmd.id, RPCResult(data={"method": req.method, "echo": req.data}))]
        if isinstance(req, RefreshRequest):
            return [Reply(cmd.id, RefreshResult(expires=self.ttl > 0, ttl=self.ttl))]
        return [Reply(cmd.id, Error(108, "not available"))]

    def _subscribe(self, req: SubscribeRequest) -> SubscribeResult:
        stream = self.stream(req.channel)
        if not self.recoverable:
            return SubscribeResult()
        top = SubscribeResult(
            recoverable=True,
            positioned=True,
            epoch=stream.epoch,
            offset=stream.offset,
            was_recovering=req.recover,
        )
        if not req.recover:
            return top
        if req.epoch and req.epoch != stream.epoch:
            return top
        missed = [p for p in stream.history if p.offset > req.offset]
        complete = len(missed) == stream.offset - req.offset
        if not complete:
            return top
        return attrs.evolve(top, recovered=True, offset=req.offset, publications=tuple(missed))

    async def _pinger(self, conn: Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.ping)
                if self.pinging:
                    await conn.ws.send(encode_replies([Ping()]))


async def until(predicate: Callable[[], bool], what: str, wait: float = 10.0) -> None:
    """``reliability_helpers.wait_until`` in the client tests' argument order, bounded at 10 s
    (a condition driven by real network events)."""
    from reliability_helpers import wait_until

    await wait_until(predicate, wait, what)


def subscribed(manager: Any) -> list[str]:
    """Channels a ``WebSocketManager`` gets (re)subscribed to, in order."""
    from reactive_aiops.protocol import Subscribed

    seen: list[str] = []
    manager.events.subscribe(
        lambda e: seen.append(e.channel) if isinstance(e, Subscribed) else None
    )
    return seen
