"""The Redis engine: several server nodes share channels, history and AIOps state in one Redis.

Per channel a meta hash (epoch ``e``, top offset ``s``) and a stream whose entry ids are the
offsets; one Lua script (``redis_lua.EMIT``) appends, keeps the keyed state, remembers command
and idempotency outcomes, checks the simulator's fencing token and PUBLISHes to every node, so
offsets are gap-free and identical on every node. Each node holds one PUB/SUB subscription for
all channels (confirmed before it serves) and fans publications out to its local connections.

Reads a connection waits on run as tasks: a subscriber is registered locally first, then the
position (and history since a recovery offset) is read; the connection buffers what arrives in
between and merges by offset. Redis down: operations raise ``EngineUnavailable`` (the publish API
answers 503, commands and subscribes get a temporary error), client connections stay up, the
PUB/SUB reader reconnects with backoff and logs once per state change.
Operator commands (compare-and-set per entity, once per command id) are in ``redis_commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from reactive_aiops.protocol.server import HistoryOutcome, SubscribeOutcome
from reactive_aiops.server import redis_lua
from reactive_aiops.server.broker import Clock, Publication, recover_position
from reactive_aiops.server.commands import Outcome, ParsedCommand
from reactive_aiops.server.config import ServerConfig
from reactive_aiops.server.engine import (
    ENGINE_OK,
    ENGINE_UNAVAILABLE,
    SNAPSHOT_CHANNELS,
    EngineUnavailable,
    Fenced,
    PublishResult,
    Record,
    Subscriber,
    snapshot_result,
    unavailable,
)
from reactive_aiops.server.memory import IDEMPOTENCY_TTL
from reactive_aiops.server.redis_commands import apply_command
from reactive_aiops.server.state import record_from
from reactive_aiops.wire.messages import Error

T = TypeVar("T")
logger = logging.getLogger("reactive_aiops.server.redis")

#: Oldest Redis this engine runs on (XADD with explicit ids and exclusive XRANGE need 6.2).
MIN_REDIS_VERSION = (6, 2)
#: How long command outcomes are remembered (every node answers a retry the same).
COMMAND_TTL = 24 * 3600
#: Resolved anomalies kept in the keyed state (older ones are forgotten, as in memory).
RESOLVED_KEEP = 5000
#: Connections to Redis per node (the PUB/SUB reader holds one); more callers wait their turn.
POOL_SIZE = 64
#: How long a call waits for a free connection before it counts as an outage.
POOL_WAIT = 5.0
_CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class RedisEngine:
    """The ``Engine`` of a node in a cluster that shares one Redis (``redis://`` or
    ``rediss://`` URL; a password only from the environment, see ``cli/serve.py``)."""

    name = "redis"

    def __init__(self, url: str, config: ServerConfig, *, clock: Clock = time.time,
                 prefix: str = "raiops", password: str | None = None,
                 username: str | None = None, ca_file: str | None = None) -> None:
        self.url = url
        self.config = config
        self.clock = clock
        self.node_id = secrets.token_hex(6)
        kwargs: dict[str, Any] = {"decode_responses": True, "socket_timeout": 5.0,
                                  "socket_connect_timeout": 2.0, "health_check_interval": 10}
        if password is not None:
            kwargs["password"] = password
        if username is not None:
            kwargs["username"] = username
        if ca_file is not None and url.startswith("rediss://"):
            kwargs["ssl_ca_certs"] = ca_file
        # A blocking pool: past POOL_SIZE concurrent calls, callers wait for a free connection
        # (redis-py's default pool fails them with "Too many connections" at 100, which turned
        # a burst of commands or a reconnect storm's subscribes into temporary errors).
        self._pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=POOL_WAIT, **kwargs)
        self.redis: aioredis.Redis = aioredis.Redis(connection_pool=self._pool)
        base = f"{prefix}:{{aiops}}"
        self._base = base
        self.pubsub_channel = f"{base}:pub"
        self.fence_key = f"{base}:fence"
        self.lease_key = f"{base}:lease"
        self._emit = self.redis.register_script(redis_lua.EMIT)
        self._read = self.redis.register_script(redis_lua.READ)
        self._snapshot = self.redis.register_script(redis_lua.SNAPSHOT)
        self.lease_script = self.redis.register_script(redis_lua.LEASE)
        self.release_script = self.redis.register_script(redis_lua.RELEASE)
        self._subs: dict[str, dict[int, Subscriber]] = {}
        #: channel -> (epoch, offset) of the last publication this node saw
        self._seen: dict[str, tuple[str, int]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._state = ENGINE_UNAVAILABLE
        self._published = 0
        #: the kind of the last refusal (an error reply), until a call succeeds: logged once
        self._refusal: str | None = None
        #: called with the seconds each script call took (metrics)
        self.latency_observer: Callable[[float], None] | None = None
        #: called with (channel, local subscribers) for every publication received (metrics)
        self.fanout_observer: Callable[[str, int], None] | None = None

    # -- keys -------------------------------------------------------------------------------

    def _meta(self, channel: str) -> str:
        return f"{self._base}:meta:{channel}"

    def _log(self, channel: str) -> str:
        return f"{self._base}:log:{channel}"

    def _idem(self, channel: str, key: str) -> str:
        return f"{self._base}:idem:{channel}:{key}"

    def _state_key(self, kind: str) -> str:
        return f"{self._base}:state:{kind}"

    def _ver_key(self, kind: str) -> str:
        return f"{self._base}:ver:{kind}"

    def _cmd_key(self, command_id: str) -> str:
        return f"{self._base}:cmd:{command_id}"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``ok`` while Redis answers and this node's PUB/SUB subscription is up."""
        return self._state

    @property
    def published(self) -> int:
        """Publications this node made."""
        return self._published

    def _set_state(self, state: str, why: str = "") -> None:
        if state != self._state:
            self._state = state
            if state == ENGINE_OK:
                logger.info("redis engine: connected to %s", self._safe_url())
            else:
                logger.warning("redis engine: unavailable (%s); retrying", why)

    def _safe_url(self) -> str:
        # never log credentials that a URL may carry
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    async def check(self) -> None:
        """Connect once and check the server version; raises ``ValueError`` for a Redis that
        is too old and ``EngineUnavailable`` if it cannot be reached."""
        try:
            info = await self.redis.info("server")
        except _CONNECTION_ERRORS as exc:
            raise EngineUnavailable(f"cannot reach Redis at {self._safe_url()}: "
                                    f"{type(exc).__name__}: {exc}") from None
        version = str(info.get("redis_version", "0"))
        parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        if parts < MIN_REDIS_VERSION:
            raise ValueError(f"Redis {version} is too old: the engine needs "
                             f"{'.'.join(map(str, MIN_REDIS_VERSION))} or newer")

    async def start(self) -> None:
        """Start the PUB/SUB reader and wait (up to 5 s) until it listens."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self._listening.wait()

    async def close(self) -> None:
        """Stop the reader and pending reads; close the connection pool."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        for task in list(self._tasks):
            task.cancel()
        await self.redis.aclose()
        await self._pool.disconnect()

    def submit(self, work: Coroutine[Any, Any, T], done: Callable[[T], None]) -> None:
        """Run ``work`` as a task and report its result from the event loop."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def finished(t: asyncio.Future[T]) -> None:
            self._tasks.discard(cast(asyncio.Task[Any], t))
            if t.cancelled():
                return
            error = t.exception()
            if error is not None:
                # a bug, not an outage (those are answered inside ``work``): keep serving
                logger.error("engine task failed: %r", error)
                return
            done(t.result())

        task.add_done_callback(finished)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await script(keys=keys, args=args)
        except ResponseError as exc:
            # Redis answered but refused (maxmemory reached, READONLY after a failover, BUSY):
            # a retry may succeed, so the caller answers 503 / a temporary error (before, the
            # error escaped the task and the publish or command was never answered)
            if self._refusal is None:
                self._refusal = type(exc).__name__
                logger.warning("redis engine: redis refuses (%s: %s)", self._refusal, exc)
            raise EngineUnavailable(f"redis refused: {exc}") from None
        except _CONNECTION_ERRORS as exc:
            self._set_state(ENGINE_UNAVAILABLE, type(exc).__name__)
            raise EngineUnavailable(str(exc)) from None
        if self._refusal is not None and script is self._emit:  # a write went through
            self._refusal = None
            logger.info("redis engine: redis accepts again")
        if self._listening.is_set():
            self._set_state(ENGINE_OK)
        if self.latency_observer is not None:
            self.latency_observer(time.perf_counter() - started)
        return result

    # -- fan-out ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=False)
            try:
                await pubsub.subscribe(self.pubsub_channel)
                async for message in pubsub.listen():
                    kind = message.get("type")
                    if kind == "subscribe":
                        self._listening.set()
                        self._set_state(ENGINE_OK)
                        delay = 0.05
                        await self._repair()
                    elif kind == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except _CONNECTION_ERRORS as exc:
                self._listening.clear()
                self._set_state(ENGINE_UNAVAILABLE, type(exc).__name__)
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    def _saw(self, channel: str, epoch: str, offset: int) -> None:
        """Remember ``channel``'s position, so a PUB/SUB outage is repaired from it: also for
        a channel this node has read but not yet seen a publication of (else the first one
        missed would reach its subscribers only with the next publication)."""
        seen = self._seen.get(channel)
        if seen is None or seen[0] != epoch or seen[1] < offset:
            self._seen[channel] = (epoch, offset)

    def _on_message(self, raw: str) -> None:
        channel, offset_text, epoch, ms, data = raw.split("\n", 4)
        offset = int(offset_text)
        self._seen[channel] = (epoch, offset)
        subs = self._subs.get(channel)
        if self.fanout_observer is not None:
            self.fanout_observer(channel, len(subs) if subs else 0)
        if not subs:
            return
        pub = Publication(channel, offset, msgspec.json.decode(data), int(ms) / 1000.0)
        for sub in tuple(subs.values()):
            sub.deliver(pub, epoch)

    async def _repair(self) -> None:
        """After the PUB/SUB link came back: deliver what local subscribers missed meanwhile
        (from history; connections drop duplicates and resubscribe on a gap)."""
        for channel, (epoch, offset) in list(self._seen.items()):
            if not self._subs.get(channel):
                continue
            try:
                stream_epoch, top, pubs = await self._read_stream(channel, str(offset), False)
            except EngineUnavailable:
                return
            subs = tuple(self._subs.get(channel, {}).values())
            if stream_epoch != epoch:
                # The stream was lost (Redis restarted empty): the subscribers' positions are
                # void whether or not the new epoch has publications yet. Tell them now, or a
                # quiet channel would leave them waiting on a stream that no longer exists.
                for sub in subs:
                    lost = getattr(sub, "position_lost", None)
                    if lost is not None:
                        lost(channel)
                self._seen[channel] = (stream_epoch, top)
                continue
            for pub in pubs:
                for sub in subs:
                    sub.deliver(pub, stream_epoch)

    # -- reads -----------------------------------------------------------------------------

    async def _read_stream(self, channel: str, since: str, create: bool
                           ) -> tuple[str, int, list[Publication]]:
        epoch, top, entries = await self._call(
            self._read, [self._meta(channel), self._log(channel)],
            [secrets.token_hex(4), int(self.config.stream_ttl), since, "1" if create else "0"])
        horizon = self.clock() - self.config.history_ttl
        pubs = []
        for entry_id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            at = int(values["t"]) / 1000.0
            if at >= horizon:
                pubs.append(Publication(channel, int(entry_id.partition("-")[0]),
                                        msgspec.json.decode(values["d"]), at))
        return epoch, int(top), pubs

    def subscribe(self, channel: str, subscriber: Subscriber, recover: bool, offset: int,
                  epoch: str, done: Callable[[SubscribeOutcome | Error], None]) -> None:
        """Register locally, then read the position (and missed history) from Redis."""
        self._subs.setdefault(channel, {})[id(subscriber)] = subscriber

        async def read() -> SubscribeOutcome | Error:
            if not self._listening.is_set():
                self.unsubscribe(channel, subscriber)
                return unavailable()
            try:
                stream_epoch, top, pubs = await self._read_stream(
                    channel, str(offset) if recover else "", True)
            except EngineUnavailable:
                self.unsubscribe(channel, subscriber)
                return unavailable()
            self._saw(channel, stream_epoch, top)
            result = recover_position(stream_epoch, top, pubs, recover=recover, offset=offset,
                                      epoch=epoch)
            return result.epoch, result.offset, result.recovered, result.publications

        self.submit(read(), done)

    def subscribe_local(self, channel: str, subscriber: Subscriber) -> None:
        """Deliver ``channel``'s live publications to ``subscriber`` (no position read)."""
        self._subs.setdefault(channel, {})[id(subscriber)] = subscriber

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Stop delivering ``channel`` to ``subscriber`` on this node."""
        subs = self._subs.get(channel)
        if subs is not None:
            subs.pop(id(subscriber), None)
            if not subs:
                del self._subs[channel]

    def subscriber_count(self, channel: str) -> int:
        """Local subscribers of ``channel`` on this node."""
        return len(self._subs.get(channel, ()))

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """Read the retained history without creating a stream."""

        async def read() -> HistoryOutcome | Error:
            try:
                return await self._read_stream(channel, "0", False)
            except EngineUnavailable:
                return unavailable()

        self.submit(read(), done)

    async def position(self, channel: str) -> tuple[int, str]:
        """``(top, epoch)`` of ``channel`` (creating the stream if needed)."""
        epoch, top, _ = await self._read_stream(channel, "", True)
        return top, epoch

    # -- writes ----------------------------------------------------------------------------

    async def emit(self, channels: list[tuple[str, dict[str, Any], str | None]], *,
                   record: Record | None = None, expected: int | None = None,
                   target: tuple[str, str] | None = None, outcome: str = "",
                   command_id: str = "", fence: str = "") -> list[Any]:
        """Run ``EMIT``: append to ``channels`` (name, data, idempotency key) and store the
        entity ``record`` atomically, if ``expected`` is the current version of ``target``
        (kind, id; the record's own by default); returns the script's reply (``redis_lua``)."""
        kind, payload = record if record is not None else ("none", {})
        entity_id = str(payload.get("id", "health"))
        if target is not None:
            kind, entity_id = target
        keys = [self._state_key(kind), self._ver_key(kind), self.fence_key,
                self._cmd_key(command_id or "-"), f"{self._base}:resolved:{kind}"]
        args: list[Any] = [
            fence, entity_id, _dumps(payload) if record is not None else "",
            int(payload.get("version", 0)) if record is not None else 0,
            "" if expected is None else expected, outcome, COMMAND_TTL,
            self.config.history_size, int(self.config.history_ttl * 1000),
            int(self.config.stream_ttl), secrets.token_hex(4), int(IDEMPOTENCY_TTL),
            int(self.clock() * 1000), self.pubsub_channel,
            "1" if payload.get("state") == "resolved" else "0", RESOLVED_KEEP]
        for name, data, key in channels:
            keys += [self._meta(name), self._log(name), self._idem(name, key or "-")]
            args += [name, _dumps(data), "1" if key else "0"]
        reply = cast(list[Any], await self._call(self._emit, keys, args))
        if reply[0] == "fenced":
            raise Fenced("the simulator's lease moved to another node")
        if reply[0] == "ok":
            self._published += len(channels)
        return reply

    async def publish(self, channel: str, data: dict[str, Any], *, record: Record | None = None,
                      idempotency_key: str | None = None) -> PublishResult:
        """Append ``data`` (and store ``record``) atomically; idempotent per key."""
        if record is not None:  # stored as the full record, defaults filled in
            record = (record[0], record_from(*record).payload())
        reply = await self.emit([(channel, data, idempotency_key)], record=record)
        if reply[0] == "dup":
            offset, _, epoch = reply[1].partition(":")
            return PublishResult(channel, int(offset), epoch, duplicate=True)
        return PublishResult(channel, int(reply[1]), reply[2])

    async def read_entity(self, kind: str, entity_id: str) -> tuple[dict[str, Any] | None, int]:
        """The stored payload of one entity and its version (0 if none)."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hget(self._state_key(kind), entity_id)
                pipe.hget(self._ver_key(kind), entity_id)
                payload, version = await pipe.execute()
        except _CONNECTION_ERRORS as exc:
            raise EngineUnavailable(str(exc)) from None
        return (None if payload is None else json.loads(payload)), int(version or 0)

    async def remembered(self, command_id: str) -> str | None:
        """The stored outcome of ``command_id`` (``redis_commands``), or None."""
        try:
            seen = await self.redis.get(self._cmd_key(command_id))
        except _CONNECTION_ERRORS as exc:
            raise EngineUnavailable(str(exc)) from None
        return None if seen is None else str(seen)

    async def command(self, command: ParsedCommand, event_id: Callable[[], str]) -> Outcome:
        """Read, decide, compare-and-set: applied once per ``command_id`` across nodes."""
        return await apply_command(self, command, event_id)

    async def snapshot(self, allowed: Callable[[str], bool]) -> dict[str, Any]:
        """Keyed state and the three channels' positions, read in one script."""
        keys = [self._state_key("detector"), self._state_key("anomaly"),
                self._state_key("health")]
        for name in SNAPSHOT_CHANNELS:
            keys += [self._meta(name), self._log(name)]
        reply = await self._call(self._snapshot, keys,
                                 [secrets.token_hex(4), int(self.config.stream_ttl)])
        detectors, anomalies, health = reply[0], reply[1], reply[2]
        positions = {name: {"offset": int(reply[4 + 2 * i]), "epoch": reply[3 + 2 * i]}
                     for i, name in enumerate(SNAPSHOT_CHANNELS) if allowed(name)}
        return snapshot_result(
            positions,
            lambda: [json.loads(v) for v in detectors[1::2]],
            lambda: [json.loads(v) for v in anomalies[1::2]],
            lambda: json.loads(health) if health else None)

