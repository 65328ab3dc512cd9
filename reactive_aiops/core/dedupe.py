"""Dropping re-delivered server events, in bounded memory, and counting what was dropped.

After a reconnect Centrifuge recovery (or a second subscription to an overlapping channel)
delivers some events again. The :func:`dedupe` middleware lets each event through once, keyed by

* ``(channel, epoch, offset)``: per channel a high-water mark plus a bitmask of the last
  ``window`` offsets, so reordering inside the window is fine and an offset at or below
  ``high - window`` is dropped as ``too_old``;
* ``event_id``: a FIFO set of the last ``max_ids`` ids, which also catches one event published
  on two channels (``anomalies`` and ``detectors:<id>``).

Memory is ``O(max_channels * window / 8 + max_ids)`` however many events pass. A dropped event
is replaced by a :class:`DuplicateDropped` action, so the reducer enhancer :func:`dedupe_stats`
can count it in the root state (field ``"dedupe"``, a :class:`DedupeStats`) for the health view;
it also counts :class:`~reactive_aiops.core.events.UnknownEvent` and ``MalformedEvent``::

    store = create_store(dedupe_stats(app_reducer), middleware=[dedupe(window=1024)])

An event is remembered only once the reducer accepted it: if the reducer raises, a re-delivery
still gets through. Entity upserts that carry an older version than the one held are ignored by
the entity collections themselves (``EntityCollection.empty(versioned=True)``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from reactive_aiops.core.actions import Batch, action
from reactive_aiops.core.batching import reduce_all, with_reduce_many
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI
from reactive_aiops.core.events import EventMeta, MalformedEvent, UnknownEvent, event_meta
from reactive_aiops.core.routing import handles

DUPLICATE_OFFSET = "duplicate_offset"
DUPLICATE_ID = "duplicate_id"
TOO_OLD = "too_old"


@action
class DuplicateDropped:
    """Stands in for a re-delivered event the dedupe middleware dropped.

    ``dropped`` is the event's meta (deliberately not named ``meta``: this is not a server event,
    so it must not count as an echo or be deduplicated again); ``reason`` is ``"duplicate_offset"``,
    ``"duplicate_id"`` or ``"too_old"``.
    """

    dropped: EventMeta
    reason: str


@attrs.frozen
class DedupeStats:
    """What the ingest path refused or could not read, for the health view."""

    duplicates: int = 0
    too_old: int = 0
    unknown: int = 0
    malformed: int = 0
    last_dropped: EventMeta | None = None

    @property
    def dropped(self) -> int:
        """Every event dropped as a re-delivery."""
        return self.duplicates + self.too_old

    def summary(self) -> str:
        """One line for logs and the replay summary."""
        return (
            f"{self.duplicates} duplicates, {self.too_old} too old, "
            f"{self.unknown} unknown, {self.malformed} malformed"
        )


class _Window:
    __slots__ = ("epoch", "high", "mask")

    def __init__(self, epoch: str | None, high: int) -> None:
        self.epoch = epoch
        self.high = high
        #: bit i set <=> offset ``high - i`` was delivered
        self.mask = 0


class Deduplicator:
    """The bounded memory of delivered events; one per stream of events (usually per store).

    ``window`` offsets are remembered per channel, for at most ``max_channels`` channels (least
    recently used forgotten first), and ``max_ids`` event ids (oldest forgotten first). Raises
    ``ValueError`` for non-positive sizes.
    """

    def __init__(self, *, window: int = 1024, max_channels: int = 4096, max_ids: int = 16384):
        if window < 1 or max_channels < 1 or max_ids < 1:
            raise ValueError("window, max_channels and max_ids must be positive")
        self.window = window
        self.max_channels = max_channels
        self.max_ids = max_ids
        self._full = (1 << window) - 1
        self._channels: OrderedDict[str, _Window] = OrderedDict()
        # The ids, as a plain dict (lookups) and their arrival order (the oldest leaves first):
        # cheaper per event than an OrderedDict's insert and popitem
        self._ids: dict[str, None] = {}
        self._id_order: deque[str] = deque()
        #: drops so far, by reason (also visible in state through :func:`dedupe_stats`)
        self.dropped: dict[str, int] = {DUPLICATE_OFFSET: 0, DUPLICATE_ID: 0, TOO_OLD: 0}

    @property
    def footprint(self) -> tuple[int, int, int]:
        """``(channels, ids, largest mask in bits)`` held now; bounded by the constructor sizes."""
        bits = max((w.mask.bit_length() for w in self._channels.values()), default=0)
        return len(self._channels), len(self._ids), bits

    def check(self, meta: EventMeta) -> str | None:
        """Return why ``meta``'s event is a re-delivery, or ``None`` if it is new. Pure."""
        if meta.offset is not None:
            win = self._channels.get(meta.channel)
            if win is not None and win.epoch == meta.epoch:
                behind = win.high - meta.offset
                if behind >= self.window:
                    return TOO_OLD
                if behind >= 0 and (win.mask >> behind) & 1:
                    return DUPLICATE_OFFSET
        if meta.event_id is not None and meta.event_id in self._ids:
            return DUPLICATE_ID
        return None

    def admits_all(self, metas: Sequence[EventMeta | None]) -> bool:
        """True when :meth:`check` would let every event of ``metas`` through even with the
        ones before it remembered: each is newer than its channel's high-water mark (or of a
        new epoch), offsets rise within the run, and no id repeats or was seen. Pure.

        ``False`` means only "look closer" (event by event): a live frame answers ``True``
        in one pass, without a check per event.
        """
        channels = self._channels
        last: dict[str, tuple[str | None, int]] = {}
        ids: list[str] = []
        for meta in metas:
            if meta is None:
                continue
            offset = meta.offset
            if offset is not None:
                channel = meta.channel
                before = last.get(channel)
                if before is None:
                    win = channels.get(channel)
                    if win is not None and win.epoch == meta.epoch and offset <= win.high:
                        return False
                elif before[0] != meta.epoch or offset <= before[1]:
                    return False
                last[channel] = (meta.epoch, offset)
            if meta.event_id is not None:
                ids.append(meta.event_id)
        return not ids or (len(set(ids)) == len(ids) and self._ids.keys().isdisjoint(ids))

    def remember(self, meta: EventMeta) -> None:
        """Record ``meta``'s event as delivered."""
        self.remember_many((meta,))

    def remember_many(self, metas: Iterable[EventMeta | None]) -> None:
        """Record each event of ``metas`` as delivered, in order (``None`` entries are skipped).

        The same as :meth:`remember` for each in turn; a run of one channel's events (a live
        frame) looks its window up once.
        """
        channels = self._channels
        ids = self._ids
        id_order = self._id_order
        window = self.window
        full = self._full
        win: _Window | None = None
        win_channel: str | None = None
        for meta in metas:
            if meta is None:
                continue
            offset = meta.offset
            if offset is not None:
                channel = meta.channel
                if win is None or channel != win_channel or win.epoch != meta.epoch:
                    win = channels.get(channel)
                    if win is None or win.epoch != meta.epoch:
                        # A new epoch means the server's stream restarted: old offsets mean
                        # nothing.
                        win = channels[channel] = _Window(meta.epoch, offset)
                        if len(channels) > self.max_channels:
                            channels.popitem(last=False)
                    else:
                        channels.move_to_end(channel)
                    win_channel = channel
                ahead = offset - win.high
                if ahead > 0:
                    # Shift the window and set bit 0 (this offset) in one pass over the mask
                    # (``window`` bits: each operation copies it); the live case, the next
                    # offset on a window with every offset delivered, leaves it as it is.
                    if ahead >= window:
                        win.mask = 1
                    elif ahead != 1 or win.mask != full:
                        win.mask = ((win.mask << ahead) | 1) & full
                    win.high = offset
                elif -ahead < window:
                    win.mask |= 1 << -ahead
            event_id = meta.event_id
            if event_id is not None and event_id not in ids:
                ids[event_id] = None
                id_order.append(event_id)
                if len(id_order) > self.max_ids:
                    del ids[id_order.popleft()]

    def count(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def dedupe(
    *,
    window: int = 1024,
    max_channels: int = 4096,
    max_ids: int = 16384,
    deduplicator: Deduplicator | None = None,
) -> Middleware:
    """Middleware that lets each server event (an action with an ``EventMeta``) through once.

    A re-delivery is replaced by :class:`DuplicateDropped`; inside a ``Batch`` each duplicate is
    replaced in place (duplicates within the batch included). Pass ``deduplicator`` to inspect or
    share its memory; otherwise one is made from the sizes.
    """

    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        seen = deduplicator or Deduplicator(
            window=window, max_channels=max_channels, max_ids=max_ids
        )

        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                if type(act) is Batch:
                    return _dispatch_batch(act, seen, next_)
                meta = getattr(act, "meta", None)  # event_meta(act), inline: once per event
                if type(meta) is not EventMeta:
                    meta = event_meta(act)  # None, or a subclass of EventMeta
                    if meta is None:
                        return next_(act)
                reason = seen.check(meta)
                if reason is not None:
                    seen.count(reason)
                    return next_(DuplicateDropped(meta, reason))
                result = next_(act)
                seen.remember_many((meta,))  # remember(meta), one call less per event
                return result

            return dispatch

        return wrap

    return middleware


def _self_consistent(metas: list[EventMeta | None]) -> bool:
    """True when no event of a batch repeats another of the same batch: offsets strictly
    rise per (channel, epoch) and event ids are distinct. The scratch memory below would then
    find nothing, so it can be skipped (the usual case: one frame of a live stream)."""
    last: dict[tuple[str, str | None], int] = {}
    ids: set[str] = set()
    for meta in metas:
        if meta is None:
            continue
        offset = meta.offset
        if offset is not None:
            key = (meta.channel, meta.epoch)
            if offset <= last.get(key, offset - 1):
                return False
            last[key] = offset
        event_id = meta.event_id
        if event_id is not None:
            if event_id in ids:
                return False
            ids.add(event_id)
    return True


def _dispatch_batch(batch: Batch, seen: Deduplicator, next_: Dispatch) -> Any:
    metas = [
        meta if type(meta := getattr(act, "meta", None)) is EventMeta else event_meta(act)
        for act in batch.actions
    ]
    if seen.admits_all(metas):  # the usual live frame: nothing to drop, one pass to know it
        result = next_(batch)
        seen.remember_many(metas)
        return result
    # A scratch Deduplicator sees the batch's own events so duplicates inside it are caught,
    # while the shared memory is updated only after the reducer accepted the whole batch.
    scratch = (
        None
        if _self_consistent(metas)
        else Deduplicator(window=seen.window, max_ids=max(len(batch.actions), 1))
    )
    out: list[object] = []
    accepted: list[EventMeta] = []
    replaced = False
    for act, meta in zip(batch.actions, metas, strict=True):
        if meta is None:
            out.append(act)
            continue
        reason = seen.check(meta)
        if reason is None and scratch is not None:
            reason = scratch.check(meta)
        if reason is not None:
            seen.count(reason)
            out.append(DuplicateDropped(meta, reason))
            replaced = True
            continue
        if scratch is not None:
            scratch.remember(meta)
        accepted.append(meta)
        out.append(act)
    result = next_(Batch(tuple(out)) if replaced else batch)
    seen.remember_many(accepted)
    return result


#: What the dedupe counters react to: the slice reducer's declaration and the enhancer's filter.
_STATS_ACTIONS = (DuplicateDropped, UnknownEvent, MalformedEvent)


@handles(*_STATS_ACTIONS)
def dedupe_stats_reducer(stats: DedupeStats | None, act: object) -> DedupeStats:
    """The ``dedupe`` slice as a slice reducer: counts :class:`DuplicateDropped`,
    ``UnknownEvent`` and ``MalformedEvent``; any other action returns ``stats`` itself.

    Declares its types (:func:`~reactive_aiops.core.routing.handles`), so under
    :func:`~reactive_aiops.core.combine.combine_reducers` a live event never reaches it.
    :func:`dedupe_stats` wraps a whole root reducer with the same counting instead.
    """
    if stats is None:
        stats = DedupeStats()
    if isinstance(act, DuplicateDropped):
        if act.reason == TOO_OLD:
            return attrs.evolve(stats, too_old=stats.too_old + 1, last_dropped=act.dropped)
        return attrs.evolve(stats, duplicates=stats.duplicates + 1, last_dropped=act.dropped)
    kind = type(act)
    if kind is UnknownEvent:
        return attrs.evolve(stats, unknown=stats.unknown + 1)
    if kind is MalformedEvent:
        return attrs.evolve(stats, malformed=stats.malformed + 1)
    return stats


def dedupe_stats(
    reducer: Callable[[Any, object], Any], *, field: str = "dedupe"
) -> Callable[[Any, object], Any]:
    """Enhance ``reducer`` to keep a :class:`DedupeStats` in ``field`` of the root state.

    Counts :class:`DuplicateDropped`, ``UnknownEvent`` and ``MalformedEvent``
    (:func:`dedupe_stats_reducer`), each passed on to ``reducer`` too (the connection slice
    counts the first in its duplicate figure). The root must be a frozen attrs class (or a
    ``dict``) with that field; a missing field raises ``TypeError`` naming it. The result
    carries ``reduce_many`` (:mod:`reactive_aiops.core.batching`): uncounted actions reach
    ``reducer`` in runs. Under ``combine_reducers``, passing :func:`dedupe_stats_reducer` as
    the slice's reducer does the same with one call less per action.
    """

    def enhanced(state: Any, act: object) -> Any:
        state = reducer(state, act)
        if not isinstance(act, _STATS_ACTIONS):
            return state
        stats = _get(state, field)
        counted = dedupe_stats_reducer(stats, act)
        return state if counted is stats else _set(state, field, counted)

    def enhanced_many(state: Any, actions: Sequence[object]) -> Any:
        # Runs of actions this layer does not count go to the inner reducer at once; a counted
        # action (dropped, unknown, malformed) takes the one-action path, in its place.
        kinds = set(map(type, actions))  # in C; a live frame has one or two kinds
        if kinds.isdisjoint(_COUNTED) and not any(issubclass(k, DuplicateDropped) for k in kinds):
            return reduce_all(reducer, state, actions)
        start = 0
        for i, act in enumerate(actions):
            if isinstance(act, DuplicateDropped) or type(act) in _COUNTED:
                if i > start:
                    state = reduce_all(reducer, state, actions[start:i])
                state = enhanced(state, act)
                start = i + 1
        if start < len(actions):
            state = reduce_all(reducer, state, actions[start:])
        return state

    return with_reduce_many(enhanced, enhanced_many)


_COUNTED = (UnknownEvent, MalformedEvent)


def _get(state: Any, field: str) -> DedupeStats:
    found = state.get(field) if isinstance(state, dict) else getattr(state, field, None)
    if found is None and isinstance(state, dict):
        return DedupeStats()
    if not isinstance(found, DedupeStats):
        raise TypeError(
            f"state field {field!r} must hold a DedupeStats (got {type(found).__name__}); "
            "add the field to the root state or pass field="
        )
    return found


def _set(state: Any, field: str, stats: DedupeStats) -> Any:
    if isinstance(state, dict):
        return {**state, field: stats}
    return attrs.evolve(state, **{field: stats})
