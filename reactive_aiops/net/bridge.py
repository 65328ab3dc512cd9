"""StoreBridge: the wiring between a :class:`WebSocketManager` and the live store.

What flows where::

    manager.events ─┬─ connection actions (Connecting, Connected, ConnectionLost, ConnectionFailed,
                    │   LatencyMeasured, HealthSampled, DuplicatesDropped, ResyncRequired, ...)
                    │     -> store.dispatch(...)            (the ``connection`` slice)
                    ├─ Subscribed(channel, result)  -> remembers the channel's epoch; the
                    │     first one of a channel: hold it and load it (below)
                    ├─ PublicationReceived(channel, pub)
                    │     -> (held while the channel loads; dropped if the load has it)
                    │     -> the domain action, decoded at the edge (net.edge), with its
                    │        EventMeta(channel, type, v, id, offset, epoch, command_id, ts);
                    │        else ServerEvent(meta, payload) for the store's event table
                    │     -> store: dedupe (channel+epoch+offset, event id) -> event table
                    └─ ResyncRequired(channel)  -> hold the channel and load it again

    store.dispatch(AcknowledgeAnomaly(...))   (any command of aiops.COMMAND_TYPES)
        -> bridge middleware: Optimistic(command, txn_id=command.command_id)   (applied at once)
        -> manager.rpc(command.rpc_method, command.rpc_data())
             ok        -> TransactionCommitted(txn_id, result=<Anomaly|Detector>Upserted(entity))
             rejected  -> TransactionReverted(txn_id, "rejected: <code> <message>")
             timeout   -> TransactionReverted(txn_id, "timeout")
             closed    -> TransactionReverted(txn_id, "connection_lost: <why>")

The server's echo (the entity event carrying ``command_id``) confirms the transaction too;
whichever of reply and echo comes second is absorbed by the optimistic journal.

Connection loss policy (``on_connection_lost``): ``"keep"`` (default) leaves pending commands in
place -- the client protocol re-sends them after the reconnect with the same command id, the
server applies each id at most once, and ``command_timeout`` (from issue time) bounds the wait;
``"revert"`` reverts every pending command at once with reason ``"connection_lost"`` (a later
reply still commits the server's result: the journal treats it as a late commit).

Loads (net.loader, net.resync): on a channel's first subscribe and after every resync (a hole
in its stream: the server restarted without its history, a gap, an epoch change) the bridge
holds the channel's live publications and loads it: ``aiops.snapshot`` for the AIOps channels
(their state and the stream position it was read at), the ``history`` command for other
channels or a server without that RPC, or the application's ``reload(channel, reason)``. The
load is dispatched as one batch followed by the held publications above its position, in offset
order; those at or below it are dropped (counted in ``DuplicatesDropped``). The store thus sees
one contiguous, ordered sequence per channel and epoch. :meth:`StoreBridge.wait_loaded` waits
for the loads; :attr:`StoreBridge.reload_errors` lists failures (temporary ones are retried).
The per-publication cost of all this, when nothing loads, is one truth test of an empty dict.

Threading: use the bridge, the manager and the store from one event loop. Commands dispatched
from another thread are handed to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import cattrs
from reactivex import abc

from reactive_aiops.aiops.actions import (
    COMMAND_TYPES,
    AcknowledgeAnomaly,
    AnomalyUpserted,
    Command,
    DetectorUpserted,
    ResolveAnomaly,
)
from reactive_aiops.aiops.event_table import aiops_converter
from reactive_aiops.aiops.event_table import aiops_event_table as _aiops_table
from reactive_aiops.aiops.models import Anomaly, Detector
from reactive_aiops.core import Batch, Dispatch, StoreAPI
from reactive_aiops.core.connection import (
    CONNECTION_ACTIONS,
    ConnectionLost,
    DuplicatesDropped,
    ResyncRequired,
)
from reactive_aiops.core.events import EventTable
from reactive_aiops.core.optimistic import (
    CONNECTION_LOST,
    TIMEOUT,
    Optimistic,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
)
from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.net.edge import EdgeDecoder, publication_action
from reactive_aiops.net.loader import ChannelLoader, Reload
from reactive_aiops.net.resync import DROP, HOLD, ChannelGates
from reactive_aiops.protocol import (
    PublicationReceived,
    RawPublicationReceived,
    SubscriptionFailed,
)
from reactive_aiops.protocol.errors import ClientClosed, CommandTimeout, OutboxFull, ReplyError
from reactive_aiops.protocol.events import Subscribed
from reactive_aiops.wire import HistoryRequest, HistoryResult, Publication
from reactive_aiops.wire.events import CHANNEL_ANOMALIES, CHANNEL_DETECTORS, CHANNEL_HEALTH

__all__ = [
    "AIOPS_CHANNELS",
    "LostPolicy",
    "Reload",
    "StoreBridge",
    "history_reload",
    "publication_action",
]

#: The channels a dashboard needs: every detector, every anomaly, the system health.
AIOPS_CHANNELS: tuple[str, ...] = (CHANNEL_DETECTORS, CHANNEL_ANOMALIES, CHANNEL_HEALTH)

LostPolicy = Literal["keep", "revert"]

_log = logging.getLogger(__name__)


def history_reload(manager: WebSocketManager) -> Reload:
    """A ``reload`` that replays the channel's retained history as server events (the bridge's
    default loader does this itself for channels ``aiops.snapshot`` does not cover)."""

    async def reload(channel: str, reason: str) -> list[object]:
        result = await manager.call(HistoryRequest(channel=channel, limit=-1))
        if not isinstance(result, HistoryResult):
            raise TypeError(f"history answered with {type(result).__name__}")
        return [publication_action(channel, p, result.epoch) for p in result.publications]

    return reload


class StoreBridge:
    """Connects ``manager`` to the store whose middleware includes :attr:`middleware`.

    Create the bridge, build the store with ``middleware=[bridge.middleware]`` (see
    :func:`reactive_aiops.app.create_live_store`), then ``await bridge.start()`` (subscribes the
    ``channels``) and ``await manager.connect()``. ``await bridge.aclose()`` releases the
    channels and waits for the bridge's tasks; it does not close the manager.

    ``reload`` replaces the default loader (module doc) with the application's own;
    ``on_connection_lost`` is ``"keep"`` or
    ``"revert"`` (module doc); ``command_timeout`` overrides the client's per-command timeout for
    commands; ``converter`` decodes RPC reply entities (default: the strict AIOps converter).

    Live publications are decoded at the edge (net.edge) with ``event_table`` (default: the
    AIOps table) and dispatched as their domain actions, each with its ``EventMeta``, so the
    store's dedupe, journal and action log see e.g. ``AnomalyUpserted`` rather than a
    ``ServerEvent``; whatever the edge does not decode goes as a ``ServerEvent`` to the store's
    ``map_events``. A store built with another table than the AIOps one should get the same
    table here, or ``edge_decode=False`` (every publication then goes as a ``ServerEvent``).
    """

    def __init__(
        self,
        manager: WebSocketManager,
        *,
        channels: Sequence[str] = AIOPS_CHANNELS,
        reload: Reload | None = None,
        on_connection_lost: LostPolicy = "keep",
        command_timeout: float | None = None,
        converter: cattrs.Converter | None = None,
        event_table: EventTable | None = None,
        edge_decode: bool = True,
    ) -> None:
        if on_connection_lost not in ("keep", "revert"):
            raise ValueError(
                f"on_connection_lost must be 'keep' or 'revert', not {on_connection_lost!r}"
            )
        self.manager = manager
        self.channels: tuple[str, ...] = tuple(dict.fromkeys(channels))
        self._policy = on_connection_lost
        self._command_timeout = command_timeout
        self._converter = converter if converter is not None else aiops_converter()
        self._edge: EdgeDecoder | None = None
        if edge_decode:
            self._edge = EdgeDecoder(event_table if event_table is not None else _aiops_table())
        self._api: StoreAPI[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._subscriptions: list[abc.DisposableBase] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._epochs: dict[str, str] = {}
        self._gates = ChannelGates()
        self._loader = ChannelLoader(
            manager,
            self._gates,
            self._epochs,
            apply=self._apply_load,
            to_action=publication_action,
            converter=self._converter,
            reload=reload,
            timeout=command_timeout,
        )
        self._loader.on_loaded = self._check_settled
        self._settled = asyncio.Event()
        #: channels the server refused for good: channel -> (code, reason)
        self.failed_channels: dict[str, tuple[int, str]] = {}
        #: load failures, oldest first (the newest 100): (channel, description); the store
        #: keeps what it had, and a temporary failure is retried
        self.reload_errors: list[tuple[str, str]] = self._loader.errors

    # -- store side ----------------------------------------------------------------------------

    def middleware(self, api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        """Store middleware: turns each AIOps command into an optimistic transaction and its RPC.
        Install it once, first in the chain."""
        if self._api is not None:
            raise RuntimeError("this StoreBridge is already installed in a store")
        self._api = api

        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                if not isinstance(act, COMMAND_TYPES):  # is_command, inline: once per event
                    return next_(act)
                command: Command = act  # type: ignore[assignment]
                result = next_(Optimistic(act, txn_id=command.command_id))
                self._send_soon(command)
                return result

            return dispatch

        return wrap

    @property
    def pending_tasks(self) -> int:
        """RPCs in flight, and the load task while it runs."""
        return len(self._tasks) + (1 if self._loader.busy else 0)

    @property
    def loading(self) -> frozenset[str]:
        """Channels being loaded now (their live publications are held until the load)."""
        return self._gates.loading_channels

    @property
    def loads(self) -> int:
        """Channel loads applied so far (initial loads and resync reloads)."""
        return self._loader.loads

    def _settled_now(self) -> bool:
        loaded = self._loader.loaded
        return not self._loader.busy and all(
            c in loaded or c in self.failed_channels for c in self.channels
        )

    def _check_settled(self) -> None:
        if self._settled_now():
            self._settled.set()

    async def wait_loaded(self) -> None:
        """Wait until each of :attr:`channels` was loaded (or refused by the server) and no
        load is in progress: the store then holds the server's state. Bound it with
        ``asyncio.timeout``."""
        while not self._settled_now():
            self._settled.clear()
            await self._settled.wait()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the manager and subscribe :attr:`channels`. Raises ``RuntimeError`` if the
        bridge's middleware is not installed in a store, or if already started."""
        if self._api is None:
            raise RuntimeError("install bridge.middleware in the store before start()")
        if self._loop is not None:
            raise RuntimeError("StoreBridge already started")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        # events first: the Subscribed of a channel must be seen before its publications.
        # One list per received frame: its publications are applied as one Batch (one store
        # notification, one selector run per frame), everything else one by one, in order.
        # raw: the edge decodes each publication's data straight into its domain action
        raw = self._edge is not None
        self._subscriptions.append(self.manager.listen_batches(self._on_events, raw=raw))
        for channel in self.channels:
            # held, not observed: the publications arrive through listen_batches above
            self._subscriptions.append(self.manager.hold(channel))

    async def aclose(self) -> None:
        """Release the channels, stop listening, cancel and await RPCs and reloads in flight."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            sub.dispose()
        await self._loader.aclose()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> StoreBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- manager -> store ----------------------------------------------------------------------

    def _dispatch(self, act: object) -> None:
        assert self._api is not None
        self._api.dispatch(act)

    def _on_events(self, events: list[Any]) -> None:
        run: list[object] = []
        gates = self._gates.active  # empty unless a channel loads: one truth test per event
        edge = self._edge
        epochs = self._epochs
        for event in events:
            kind = type(event)
            if kind is RawPublicationReceived or kind is PublicationReceived:
                channel = event.channel
                epoch = epochs.get(channel, "")
                # a raw one's data stays undecoded unless a gate or the slow path needs it
                pub = None if kind is RawPublicationReceived else event.publication
                if gates and channel in gates:
                    pub = event.to_publication() if pub is None else pub
                    if self._gated(channel, pub, epoch):
                        continue
                if edge is None:
                    act = None
                elif pub is None:
                    act = edge.decode_raw(channel, event.offset, event.data, epoch)
                else:
                    act = edge(channel, pub, epoch)
                if act is None:
                    pub = event.to_publication() if pub is None else pub
                    act = publication_action(channel, pub, epoch)
                run.append(act)
                if channel == CHANNEL_HEALTH:
                    # Health updates are samples (the dashboard plots every one): each ends
                    # its batch so its state is seen. Entity upserts are coalesced per frame.
                    self._dispatch_run(run)
                    run = []
                continue
            if run:
                self._dispatch_run(run)
                run = []
            self._guarded(self._on_event, event)
        if len(run) == 1:  # the one-event frame: _dispatch_run's path, inline
            try:
                self._api.dispatch(run[0])  # type: ignore[union-attr]
            except Exception:
                _log.exception("error while delivering %s", type(run[0]).__name__)
        elif run:
            self._dispatch_run(run)

    def _dispatch_run(self, run: list[object]) -> None:
        assert self._api is not None
        dispatch = self._api.dispatch
        if len(run) > 1:
            try:
                dispatch(Batch(tuple(run)))
                return
            except Exception:
                # Nothing was applied (a Batch is all or nothing): go one by one, so only the
                # event that fails is lost, as without batching.
                pass
        for act in run:  # inline, not through _guarded: this is the one-event frame's path
            try:
                dispatch(act)
            except Exception:
                _log.exception("error while delivering %s", type(act).__name__)

    @staticmethod
    def _guarded(handle: Callable[[Any], None], item: object) -> None:
        try:
            handle(item)
        except Exception:
            # Delivery goes on (as the manager does for a raising observer).
            _log.exception("error while delivering %s", type(item).__name__)

    def _gated(self, channel: str, pub: Publication, epoch: str) -> bool:
        """A publication of a channel that loads (held) or just loaded (dropped if the load
        already has it). True if it must not be applied now."""
        outcome = self._gates.offer(channel, pub, epoch)
        if outcome == HOLD:
            return True
        if outcome == DROP:
            self._guarded(self._dispatch, DuplicatesDropped(channel, 1))
            return True
        return False

    def _on_event(self, event: object) -> None:
        if isinstance(event, PublicationReceived):
            channel = event.channel
            epoch = self._epochs.get(channel, "")
            pub = event.publication
            if not (channel in self._gates.active and self._gated(channel, pub, epoch)):
                act = self._edge(channel, pub, epoch) if self._edge is not None else None
                self._dispatch(act if act is not None else publication_action(channel, pub, epoch))
        elif isinstance(event, Subscribed):
            channel = event.channel
            self._epochs[channel] = event.result.epoch
            self.failed_channels.pop(channel, None)
            if channel not in self._loader.loaded and not self._gates.loading(channel):
                self._loader.want(channel, "initial load")
            elif self._gates.loading(channel):
                self._gates.hold(channel, event.result.epoch)  # a new epoch drops the held
        elif isinstance(event, CONNECTION_ACTIONS):
            self._dispatch(event)
            if isinstance(event, ResyncRequired):
                self._loader.want(event.channel, event.reason)
            elif isinstance(event, ConnectionLost) and self._policy == "revert":
                self._dispatch(RevertPending(CONNECTION_LOST))
        elif isinstance(event, SubscriptionFailed):
            self.failed_channels[event.channel] = (event.code, event.reason)
            self._gates.forget(event.channel)
            self._check_settled()

    def _apply_load(self, channel: str, actions: list[object], dropped: int) -> None:
        if dropped:
            self._guarded(self._dispatch, DuplicatesDropped(channel, dropped))
        if actions:
            # one batch: all or nothing, one notification (as Store.dispatch_batch)
            self._dispatch_run(actions)

    # -- commands ------------------------------------------------------------------------------

    def _send_soon(self, command: Command) -> None:
        loop = self._loop
        if loop is None:
            self._dispatch(TransactionReverted(command.command_id, "bridge not started"))
            return
        if threading.get_ident() == self._thread:
            self._spawn(self._send(command))
        else:
            loop.call_soon_threadsafe(lambda: self._spawn(self._send(command)))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, command: Command) -> None:
        txn = command.command_id
        try:
            data = await self.manager.rpc(
                command.rpc_method, command.rpc_data(), self._command_timeout
            )
        except ReplyError as exc:
            self._dispatch(TransactionReverted(txn, f"rejected: {exc.code} {exc.message}"))
        except CommandTimeout:
            self._dispatch(TransactionReverted(txn, TIMEOUT))
        except OutboxFull as exc:
            self._dispatch(TransactionReverted(txn, f"outbox full: {exc}"))
        except ClientClosed as exc:
            self._dispatch(TransactionReverted(txn, f"{CONNECTION_LOST}: {exc}"))
        else:
            self._dispatch(TransactionCommitted(txn, result=self._result(command, data)))

    def _result(self, command: Command, data: object) -> object | None:
        entity = data.get("entity") if isinstance(data, dict) else None
        if entity is None:
            return None  # confirm the optimistic change; the echo brings the server's copy
        try:
            if isinstance(command, AcknowledgeAnomaly | ResolveAnomaly):
                return AnomalyUpserted(self._converter.structure(entity, Anomaly))
            return DetectorUpserted(self._converter.structure(entity, Detector))
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError):
            return None
