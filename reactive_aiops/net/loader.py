"""Loading channels into the store: the bridge's initial load and its resync reloads.

:class:`ChannelLoader` is the asynchronous half of the bridge's in-order resync (the pure half
is :mod:`reactive_aiops.net.resync`). When a channel needs loading (its first subscribe, or a
``ResyncRequired``) the bridge calls :meth:`ChannelLoader.want`: the channel's live publications
are held from then on, and one task loads the wanted channels:

* the AIOps channels with one ``aiops.snapshot`` RPC (detectors, anomalies and health together,
  each with the stream position it was read at, :mod:`reactive_aiops.net.snapshot`);
* any other channel, or every channel of a server without that RPC (an error reply that is not
  temporary, e.g. 104 "method not found" from Centrifugo), with the ``history`` command: the
  retained publications and the stream top;
* or, when the application passed its own ``reload(channel, reason)``, with that (it returns
  actions and says no position: the held publications are then applied after it, in order).

A load is applied only if it is of the channel's current epoch (else it is taken again: the
server restarted meanwhile), covers what an overflowing hold discarded, and no newer resync of
the channel came while it was in flight. Then the load's actions and the held publications above
its position go to the store as one batch. Temporary failures (timeouts, a temporary error,
the outbox full) are retried with a growing delay; a closed client waits until the channel is
wanted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import cattrs

from reactive_aiops.net.client import WebSocketManager
from reactive_aiops.net.resync import ChannelGates
from reactive_aiops.net.snapshot import SNAPSHOT_CHANNELS, SNAPSHOT_METHOD, parse_snapshot
from reactive_aiops.protocol.errors import ClientClosed, ClientError, ReplyError
from reactive_aiops.wire import ErrorCode, HistoryRequest, HistoryResult, Publication

__all__ = ["ChannelLoader", "Reload"]

#: ``reload(channel, reason)`` -> the actions that bring the store up to date for ``channel``.
Reload = Callable[[str, str], Awaitable[Iterable[object]]]

#: ``apply(channel, actions, dropped)``: the bridge dispatches one load and its held tail.
Apply = Callable[[str, list[object], int], None]

#: ``to_action(channel, publication, epoch)``: a publication as the store action.
ToAction = Callable[[str, Publication, str], object]

#: Delays between retries of a failed load, seconds.
RETRY_FIRST, RETRY_MAX = 0.1, 2.0
#: Load failures kept in :attr:`ChannelLoader.errors` (the newest).
MAX_ERRORS = 100

METHOD_NOT_FOUND = ErrorCode.METHOD_NOT_FOUND

_log = logging.getLogger(__name__)


class ChannelLoader:
    """Loads wanted channels (see the module doc). Owned by the bridge; one event loop."""

    def __init__(
        self,
        manager: WebSocketManager,
        gates: ChannelGates,
        epochs: dict[str, str],
        *,
        apply: Apply,
        to_action: ToAction,
        converter: cattrs.Converter,
        reload: Reload | None = None,
        timeout: float | None = None,
    ) -> None:
        self._manager = manager
        self._gates = gates
        self._epochs = epochs
        self._apply = apply
        self._to_action = to_action
        self._converter = converter
        self._reload = reload
        self._timeout = timeout
        self._snapshot_supported = True
        self._wanted: dict[str, str] = {}
        #: channel -> number of times it was wanted; a load requested before the latest is stale
        self._generation: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: channels loaded at least once
        self.loaded: set[str] = set()
        #: loads applied so far
        self.loads = 0
        #: failures, oldest first (at most MAX_ERRORS): (channel, description)
        self.errors: list[tuple[str, str]] = []
        #: called after each applied load (the bridge wakes ``wait_loaded``)
        self.on_loaded: Callable[[], None] = lambda: None

    @property
    def busy(self) -> bool:
        """True while a channel waits for its load."""
        return bool(self._wanted) or bool(self._gates.loading_channels)

    def want(self, channel: str, reason: str) -> None:
        """Hold ``channel`` from now on and load it (again, if a load is already in flight)."""
        if self._closed:
            return
        self._gates.hold(channel, self._epochs.get(channel, ""))
        self._generation[channel] = self._generation.get(channel, 0) + 1
        self._wanted[channel] = reason
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        self._wake.set()

    async def aclose(self) -> None:
        """Stop loading (a load in flight is cancelled)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _error(self, channel: str, what: str) -> None:
        self.errors.append((channel, what))
        del self.errors[:-MAX_ERRORS]
        _log.warning("loading %s: %s", channel, what)

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while self._wanted:
            await asyncio.sleep(0)  # the other channels of the same frame join this round
            wanted, self._wanted = self._wanted, {}
            generations = {c: self._generation[c] for c in wanted}
            retry, stopped = await self._load(wanted, generations)
            for channel in retry:
                self._wanted.setdefault(channel, wanted[channel])
            if not retry:
                delay = RETRY_FIRST
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # stopped (client closed): only a new want() starts again
                async with asyncio.timeout(None if stopped else delay):
                    await self._wake.wait()
            delay = min(RETRY_MAX, delay * 2)

    def _current(self, channel: str, generations: dict[str, int]) -> bool:
        return self._generation.get(channel) == generations[channel]

    def _finish(self, channel: str, actions: Iterable[object], position: int | None) -> None:
        epoch = self._epochs.get(channel, "")
        held, dropped = self._gates.release(channel, epoch, position)
        run = list(actions)
        run.extend(self._to_action(channel, pub, epoch) for pub in held)
        self.loaded.add(channel)
        self.loads += 1
        self._apply(channel, run, dropped)
        self.on_loaded()

    async def _load(
        self, wanted: dict[str, str], generations: dict[str, int]
    ) -> tuple[set[str], bool]:
        """Load ``wanted``; returns (channels to retry, client closed)."""
        if self._reload is not None:
            return await self._load_custom(wanted, generations), False
        retry: set[str] = set()
        others = [c for c in wanted if c not in SNAPSHOT_CHANNELS or not self._snapshot_supported]
        snap = [c for c in wanted if c not in others]
        if snap:
            try:
                data: Any = await self._manager.rpc(SNAPSHOT_METHOD, {}, self._timeout)
            except ClientClosed:
                return set(wanted), True
            except ReplyError as exc:
                if exc.code == METHOD_NOT_FOUND:
                    # not our server (e.g. Centrifugo): its history is the best there is
                    _log.info("%s: %s; loading from history", SNAPSHOT_METHOD, exc)
                else:
                    self._error(",".join(snap), f"{SNAPSHOT_METHOD}: {exc}")
                if exc.temporary:
                    retry.update(snap)
                else:
                    self._snapshot_supported = False
                    others += snap
            except ClientError as exc:  # timeout, outbox full
                self._error(",".join(snap), f"{SNAPSHOT_METHOD}: {type(exc).__name__}: {exc}")
                retry.update(snap)
            else:
                others += self._apply_snapshot(data, snap, generations, retry)
        for channel in others:
            outcome = await self._load_history(channel, generations)
            if outcome == "closed":
                return retry | set(others), True
            if outcome == "retry":
                retry.add(channel)
        return retry, False

    def _apply_snapshot(
        self, data: object, channels: list[str], generations: dict[str, int], retry: set[str]
    ) -> list[str]:
        """Apply the channels ``data`` covers; returns those it does not cover."""
        try:
            loads = parse_snapshot(data, self._converter)
        except ValueError as exc:
            self._error(",".join(channels), f"{SNAPSHOT_METHOD}: {exc}")
            return channels
        uncovered: list[str] = []
        for channel in channels:
            load = loads.get(channel)
            if load is None:
                uncovered.append(channel)
            elif not self._current(channel, generations):
                continue  # a newer resync wants it again
            elif load.epoch != self._epochs.get(channel) or not self._gates.covers(
                channel, load.offset
            ):
                retry.add(channel)  # read before the stream we follow: take it again
            else:
                for problem in load.problems:
                    self._error(channel, problem)
                self._finish(channel, load.actions, load.offset)
        return uncovered

    async def _load_history(self, channel: str, generations: dict[str, int]) -> str:
        """Load ``channel`` from its history; returns "done", "retry" or "closed"."""
        try:
            result = await self._manager.call(
                HistoryRequest(channel=channel, limit=-1), self._timeout
            )
        except ClientClosed:
            return "closed"
        except ReplyError as exc:
            self._error(channel, f"history: {exc}")
            if exc.temporary:
                return "retry"
            result = None  # nothing to load from: apply what was held, in order
        except ClientError as exc:
            self._error(channel, f"history: {type(exc).__name__}: {exc}")
            return "retry"
        if not self._current(channel, generations):
            return "done"
        if result is None or not isinstance(result, HistoryResult):
            if result is not None:
                self._error(channel, f"history answered with {type(result).__name__}")
            self._finish(channel, (), None)
            return "done"
        if result.epoch != self._epochs.get(channel) or not self._gates.covers(
            channel, result.offset
        ):
            return "retry"
        actions = [self._to_action(channel, p, result.epoch) for p in result.publications]
        self._finish(channel, actions, result.offset)
        return "done"

    async def _load_custom(self, wanted: dict[str, str], generations: dict[str, int]) -> set[str]:
        assert self._reload is not None
        for channel, reason in wanted.items():
            try:
                actions = list(await self._reload(channel, reason))
            except (ClientError, OSError, TypeError, ValueError) as exc:
                # The store keeps what it had; the held publications are applied in order.
                self._error(channel, f"{type(exc).__name__}: {exc}")
                actions = []
            if self._current(channel, generations):
                self._finish(channel, actions, None)
        return set()
