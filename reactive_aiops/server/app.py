"""The asyncio edge: a ``websockets`` server pumping one ``ServerConnection`` per socket.

``EventServer`` owns the listening socket, the per-connection reader/writer pumps, the simulated
source's pacing task and graceful shutdown. Everything that decides anything lives in the sans-I/O
``ServerConnection`` and the pure ``ServerCore``; this module only moves bytes and time.

Embed it with ``serve_embedded``::

    async with serve_embedded(ServerConfig(port=0)) as server:
        server.url          # ws://127.0.0.1:<port>/connection/websocket
        token = server.mint_token("alice", roles=("operator",))   # signed with its secret
        server.publish("anomalies", event)
        await server.restart(keep_history=False)   # new epochs, history gone
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

import attrs
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from reactive_aiops.protocol.server import ServerConnection as ProtocolConnection
from reactive_aiops.server import health, http
from reactive_aiops.server.auth import mint_token
from reactive_aiops.server.broker import Clock, Publication
from reactive_aiops.server.config import ServerConfig
from reactive_aiops.server.core import ServerCore
from reactive_aiops.server.engine import Engine, PublishResult
from reactive_aiops.server.limits import origin_allowed
from reactive_aiops.server.memory import MemoryEngine
from reactive_aiops.server.metrics import CONTENT_TYPE, MeteredHub, ServerMetrics, instrument_broker
from reactive_aiops.server.pump import Flusher, Pump, abort_if_open
from reactive_aiops.server.simulation import Pacer, Simulator
from reactive_aiops.server.tls import server_context
from reactive_aiops.wire.codes import DisconnectCode

if TYPE_CHECKING:  # the Redis engine is an optional extra: imported only when configured
    from reactive_aiops.server.cluster import LeasedSource

logger = logging.getLogger("reactive_aiops.server")

#: How often the simulated source runs its due samples.
SIMULATION_TICK = 0.01


@attrs.define
class ServerStats:
    """Counters for tests, benchmarks and the docs' claims."""

    connections: int = 0
    slow_disconnects: int = 0
    http_requests: int = 0
    internal_errors: int = 0


def _edge_connection_class(edge: EventServer) -> Callable[..., ServerConnection]:
    """A websockets connection that diverts plain HTTP requests (POST /api/publish) on the same
    port before the WebSocket handshake parser sees them (websockets accepts only GET)."""

    class EdgeConnection(ServerConnection):
        _sniff = b""
        _mode: str | None = None

        def data_received(self, data: bytes) -> None:
            if self._mode == "ws":
                super().data_received(data)
                return
            if self._mode in ("done", "busy"):
                return
            self._sniff += data
            if self._mode is None:
                verdict = http.is_http_prefix(self._sniff)
                if verdict is None:
                    return
                self._mode = "http" if verdict else "ws"
                if not verdict:
                    buffered, self._sniff = self._sniff, b""
                    super().data_received(buffered)
                    return
            try:
                request = http.parse_request(self._sniff, edge.config.max_message_size)
            except http.HttpError as exc:
                self._respond(exc.status, {"error": {"code": exc.status, "message": exc.message}})
                return
            if request is not None:
                edge.stats.http_requests += 1
                self._mode = "busy"
                edge.spawn(self._serve(request))

        async def _serve(self, request: http.HttpRequest) -> None:
            if edge.phase is not health.Phase.SERVING:
                # Shutting down: clients are being closed, so a publication accepted now could
                # reach none of them (and the memory engine dies with the process). Say retry.
                self._respond(503, {"error": {"code": 503, "message": "shutting down, retry"}})
                return
            self._respond(*await http.handle(request, edge.core))

        def _respond(self, status: int, payload: dict[str, Any]) -> None:
            self._mode = "done"
            edge.metrics.publish_api.labels(str(status)).inc()
            self.transport.write(http.render(status, payload))
            self.transport.close()

    return EdgeConnection


class EventServer:
    """The event server. ``start``/``stop``/``restart`` it; ``publish`` events into it."""

    def __init__(self, config: ServerConfig, *, clock: Clock = time.time,
                 core: ServerCore | None = None, engine: Engine | None = None) -> None:
        self.config = config
        self.clock = clock
        if core is None and engine is None and config.redis_url is not None:
            from reactive_aiops.server.redis_engine import RedisEngine

            engine = RedisEngine(config.redis_url, config, clock=clock,
                                 username=config.redis_username, password=config.redis_password,
                                 ca_file=config.redis_ca_file)
        self.core = core or ServerCore(config, clock=clock, engine=engine)
        self.simulator: Simulator | None = None
        self.source: LeasedSource | None = None
        self._source_task: asyncio.Task[None] | None = None
        self.stats = ServerStats()
        self._server: Server | None = None
        self._port = config.port
        self._live: dict[ProtocolConnection, ServerConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Future[None]] = set()
        self._sim_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._flusher = Flusher()
        self._instance = secrets.token_hex(4)
        self._phase = health.Phase.STOPPED
        # Fails here, before anything listens, if the certificate or key cannot be loaded.
        self._ssl = (server_context(config.tls_cert, config.tls_key)
                     if config.tls_cert is not None and config.tls_key is not None else None)
        self.metrics = ServerMetrics(lambda: tuple(self._live))
        self._instrument()
        self._make_simulator()

    def _instrument(self) -> None:
        engine = self.core.engine
        if isinstance(engine, MemoryEngine):
            instrument_broker(engine.broker, self.metrics)
        else:  # the Redis engine reports its calls' latency and what it fans out here
            from reactive_aiops.server.redis_engine import RedisEngine

            assert isinstance(engine, RedisEngine)
            engine.latency_observer = self.metrics.engine_latency.observe
            engine.fanout_observer = self.metrics.fanned_out

    def _make_simulator(self) -> None:
        self.simulator = None
        engine = self.core.engine
        if not isinstance(engine, MemoryEngine):
            if self.config.simulation.enabled:
                from reactive_aiops.server.cluster import LeasedSource
                from reactive_aiops.server.redis_engine import RedisEngine

                assert isinstance(engine, RedisEngine), "a shared source needs the Redis engine"
                self.source = LeasedSource(engine, self.config.simulation, clock=self.clock)
            return
        if self.config.simulation.enabled:
            self.simulator = Simulator(self.core.state, self.config.simulation)
            self.simulator.start()

    # -- public API ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when configured with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        scheme = "wss" if self._ssl is not None else "ws"
        return f"{scheme}://{self.config.host}:{self._port}{self.config.path}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP API (``http_url + "/api/publish"``)."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    @property
    def phase(self) -> health.Phase:
        """Starting, serving, stopping or stopped (``GET /health`` answers 503 unless serving)."""
        return self._phase

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        return len(self._live)

    @property
    def connections(self) -> tuple[ProtocolConnection, ...]:
        """The protocol state of every open connection (read-only use: counters, positions)."""
        return tuple(self._live)

    def publish(self, channel: str, event: object) -> Publication:
        """Validate and publish an event envelope now (memory engine; ``ServerCore.publish``)."""
        return self.core.publish(channel, event)

    async def apublish(self, channel: str, event: object, *,
                       idempotency_key: str | None = None) -> PublishResult:
        """Validate and publish on any engine (``ServerCore.apublish``)."""
        return await self.core.apublish(channel, event, idempotency_key=idempotency_key)

    def mint_token(self, sub: str, *, roles: Iterable[str] = (),
                   channels: Iterable[str] | None = None, ttl: float = 3600.0) -> str:
        """A connection token for this server's secret (a generated one unless configured):
        ``roles`` (``("operator",)`` may run commands), ``channels`` (None: all), valid ``ttl``
        seconds from the server's clock."""
        return mint_token(self.config.token_secret, sub, exp=self.clock() + ttl,
                          channels=channels, roles=roles)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task the server keeps a reference to until it ends."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def start(self) -> None:
        """Listen (on the same port again after a restart) and start the simulated source."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._phase = health.Phase.STARTING
        await self.core.engine.start()
        self._server = await serve(
            self._handle, self.config.host, self._port,
            process_request=self._process_request,
            create_connection=cast(Any, _edge_connection_class(self)),
            max_size=self.config.max_message_size,
            compression="deflate" if self.config.compression else None,
            ping_interval=None,  # the protocol has its own pings, with a pong deadline
            open_timeout=self.config.open_timeout,
            close_timeout=self.config.close_timeout,
            server_header=None,
            ssl=self._ssl,
        )
        sockets = self._server.sockets
        self._port = sockets[0].getsockname()[1]
        if self.simulator is not None:
            self._sim_task = asyncio.create_task(self._run_simulation(self.simulator))
        if self.source is not None:
            self._source_task = asyncio.create_task(self.source.run())
        self._phase = health.Phase.SERVING
        logger.info("listening on %s", self.url)

    async def stop(self, code: int = DisconnectCode.SHUTDOWN, reason: str = "shutdown") -> None:
        """Close every client with ``code`` (reconnectable by default) and stop listening."""
        if self._server is not None:
            self._phase = health.Phase.STOPPING
        for task in (self._sim_task, self._source_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sim_task = self._source_task = None
        server, self._server = self._server, None
        if server is None:
            return
        # Stop accepting first, then close clients with our code before websockets' own 1001.
        server.server.close()
        for conn in list(self._live):
            conn.close(code, reason)
        handlers = [t for t in self._tasks if not t.done()]
        if handlers:
            await asyncio.wait(handlers, timeout=self.config.close_timeout + 1)
        server.close(close_connections=True)
        await server.wait_closed()
        self._phase = health.Phase.STOPPED

    async def restart(self, *, keep_history: bool = True) -> None:
        """Stop (clients get 3001) and start again on the same port.

        ``keep_history=False`` also throws the broker and state away: every channel gets a new
        epoch, so clients that recover from their old position are told ``recovered=False``.
        """
        await self.stop()
        if not keep_history:
            if not isinstance(self.core.engine, MemoryEngine):
                raise RuntimeError("keep_history=False needs the memory engine")
            self.core = ServerCore(self.config, clock=self.clock)
            self._instrument()
            self._make_simulator()
        await self.start()

    async def close(self) -> None:
        """Stop and release the engine (its connections to Redis, if any)."""
        await self.stop()
        await self.core.engine.close()

    def engine_health(self) -> dict[str, str]:
        """The engine's name and state for ``/health``."""
        return {"name": self.core.engine.name, "state": self.core.engine.state}

    async def serve_forever(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully."""
        await stop.wait()
        await self.stop()

    # -- edge ---------------------------------------------------------------------------------

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        # Plain GETs for operators and load balancers, before the Origin check (no browser).
        if path == "/health":
            status, body = health.report(self._phase, self.engine_health(), len(self._live))
            return _response(ws, status, json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return _response(ws, 200, self.metrics.render(), CONTENT_TYPE)
        if path == http.PUBLISH_PATH:
            self.metrics.publish_api.labels("405").inc()
            return _response(ws, 405, http.error_body(405, "use POST"), "application/json")
        if path != self.config.path:
            return ws.respond(404, "Not Found\n")
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, self.config.allowed_origins,
                              allow_missing=self.config.allow_missing_origin):
            return ws.respond(403, "Forbidden origin\n")
        return None

    async def _run_simulation(self, simulator: Simulator) -> None:
        pacer = Pacer(simulator.config.samples_per_second, self.clock())
        while True:
            now = self.clock()
            try:
                simulator.run(pacer.due(now))
                simulator.tick(now)
            except Exception as exc:  # a bug: stop the source, keep serving clients
                self.stats.internal_errors += 1
                logger.error("simulated source stopped: %s", type(exc).__name__)
                return
            await asyncio.sleep(SIMULATION_TICK)

    async def _handle(self, ws: ServerConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client_id = f"{self._instance}-{next(self._ids)}"
        conn = ProtocolConnection(MeteredHub(self.core, self.metrics), self.core.limits,
                                  client_id, self.clock())
        pump = Pump(conn, ws, self.clock)
        closers: list[asyncio.Task[None]] = []
        abort: list[asyncio.TimerHandle] = []

        def on_output() -> None:
            if conn.closed and not abort:
                # A closing handshake waits for the peer and, before that, for the socket to
                # drain: a client that stops reading would hold both forever. Past
                # close_timeout the transport is aborted, whatever the close is waiting on.
                abort.append(asyncio.get_running_loop().call_later(
                    self.config.close_timeout, abort_if_open, ws))
            if conn.close_code == DisconnectCode.SLOW and not closers:
                # The writer may be stuck on a socket that is not drained: close from here.
                self.stats.slow_disconnects += 1
                closers.append(asyncio.create_task(ws.close(DisconnectCode.SLOW, "slow")))
            self._flusher.mark(pump)

        conn.on_output = on_output
        self._live[conn] = ws
        self.stats.connections += 1
        self.metrics.connections_accepted.inc()
        writer = asyncio.create_task(pump.run_writer())
        try:
            async for message in ws:
                try:
                    if isinstance(message, str):
                        conn.receive_text(message, self.clock())
                    else:
                        conn.receive_binary(message, self.clock())
                except Exception as exc:  # a bug: contain it to this client
                    self.stats.internal_errors += 1
                    logger.error("internal error on %s: %s", client_id, type(exc).__name__)
                    conn.close(DisconnectCode.SERVER_ERROR, "internal server error")
        except ConnectionClosed:
            pass
        finally:
            conn.connection_lost()
            self.metrics.disconnected(conn.close_code or DisconnectCode.CONNECTION_CLOSED)
            del self._live[conn]
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer
            for closer in closers:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await closer
            self._tasks.discard(task)


def _response(ws: ServerConnection, status: int, body: bytes, content_type: str) -> Response:
    response = ws.respond(status, "")
    del response.headers["Content-Type"], response.headers["Content-Length"]
    response.headers["Content-Type"] = content_type
    response.headers["Content-Length"] = str(len(body))
    response.headers["Cache-Control"] = "no-store"
    return dataclasses.replace(response, body=body)


@contextlib.asynccontextmanager
async def serve_embedded(config: ServerConfig | None = None, *, clock: Clock = time.time,
                         **overrides: Any) -> AsyncIterator[EventServer]:
    """Run an ``EventServer`` for the duration of the block (port 0 = any free port).

    ``overrides`` are ``ServerConfig`` fields, e.g. ``serve_embedded(port=0, api_key="k")``.
    Without a ``token_secret`` the server has a random one: mint its tokens with
    ``server.mint_token``.
    """
    config = attrs.evolve(config or ServerConfig(port=0), **overrides)
    server = EventServer(config, clock=clock)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
