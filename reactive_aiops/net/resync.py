"""Holding a channel's live publications while it loads, and merging them after: pure logic.

While the bridge loads a channel (its first subscribe, or a resync), the live stream goes on.
Applying those publications at once would put newer offsets into the store before the load
brings the older state, so :class:`ChannelGates` *holds* them instead. When the load arrives,
taken at stream position ``P`` of epoch ``E``, :meth:`ChannelGates.release` returns the held
publications of ``E`` above ``P``, in offset order and each offset once; those at or below
``P`` are already in the load and are dropped (counted). A *floor* stays at ``P`` afterwards:
a live publication at or below it may still arrive after the load's reply (the server read its
state after publishing it but fanned it out later) and is dropped too. The first publication
above the floor removes the gate, so the usual case costs the bridge one truth test of an empty
dict per publication.

The result for the store: one contiguous, ordered sequence per channel and epoch -- the load,
then ``P + 1``, ``P + 2``, ...

Memory is bounded: at most ``max_held`` publications per channel. Past that the held ones are
discarded and the channel must be loaded at a position at or above the highest discarded
offset (:meth:`ChannelGates.covers`); a load read before it is taken again.
"""

from __future__ import annotations

from reactive_aiops.wire import Publication

__all__ = ["APPLY", "DROP", "HOLD", "MAX_HELD", "ChannelGates"]

#: Publications held per loading channel before they are discarded (see module doc).
MAX_HELD = 10_000

#: :meth:`ChannelGates.offer` outcomes.
APPLY, HOLD, DROP = 0, 1, 2


class _Gate:
    __slots__ = ("epoch", "floor", "held", "must_cover")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        #: the publications held while loading, in arrival order; None once loaded (floor only)
        self.held: list[Publication] | None = []
        #: after a load at position P: live publications of ``epoch`` at or below P are dropped
        self.floor = 0
        #: the highest offset discarded on overflow: the load must be at or past it
        self.must_cover = 0


class ChannelGates:
    """Per-channel gates in front of the store (see the module doc). Not thread-safe: the
    bridge uses it from its event loop only."""

    def __init__(self, max_held: int = MAX_HELD) -> None:
        if max_held < 1:
            raise ValueError("max_held must be positive")
        self.max_held = max_held
        #: channel -> gate, only for channels loading or with a floor; read directly on the
        #: bridge's hot path (``if gates and channel in gates``)
        self.active: dict[str, _Gate] = {}

    def hold(self, channel: str, epoch: str) -> None:
        """Start holding ``channel``'s live publications (epoch ``epoch``). Already holding the
        same epoch: keeps what is held. Another epoch: what was held is of a dead stream and
        is dropped."""
        gate = self.active.get(channel)
        if gate is None or gate.epoch != epoch:
            self.active[channel] = _Gate(epoch)
        elif gate.held is None:
            gate.held, gate.floor, gate.must_cover = [], 0, 0

    def loading(self, channel: str) -> bool:
        """True while ``channel``'s publications are held."""
        gate = self.active.get(channel)
        return gate is not None and gate.held is not None

    @property
    def loading_channels(self) -> frozenset[str]:
        """The channels being held now."""
        return frozenset(c for c, g in self.active.items() if g.held is not None)

    def offer(self, channel: str, pub: Publication, epoch: str) -> int:
        """A live publication of a gated channel: :data:`HOLD` (kept for :meth:`release`),
        :data:`DROP` (already in the load) or :data:`APPLY` (pass it on; the gate is gone)."""
        gate = self.active.get(channel)
        if gate is None:
            return APPLY
        if epoch != gate.epoch:
            if gate.held is None:
                del self.active[channel]  # the floor belonged to a dead epoch
                return APPLY
            # a new stream while loading: what was held is dead, the load must match the new
            gate.epoch, gate.must_cover = epoch, 0
            gate.held.clear()
        held = gate.held
        if held is not None:
            if len(held) >= self.max_held:
                gate.must_cover = max(gate.must_cover, *(p.offset for p in held))
                held.clear()
            held.append(pub)
            return HOLD
        if pub.offset and pub.offset <= gate.floor:
            return DROP
        del self.active[channel]
        return APPLY

    def covers(self, channel: str, position: int) -> bool:
        """False if a load at ``position`` misses publications discarded on overflow: take a
        newer one."""
        gate = self.active.get(channel)
        return gate is None or position >= gate.must_cover

    def release(
        self, channel: str, epoch: str, position: int | None
    ) -> tuple[list[Publication], int]:
        """The load of ``channel`` at ``position`` of ``epoch`` arrived: returns the held
        publications to apply after it (epoch ``epoch``, above ``position``, in offset order,
        each offset once) and how many were dropped as already covered or repeated. With
        ``position`` None (a load that does not say where it was read) every held publication
        is returned, in offset order, each once. Leaves a floor at ``position`` (see module)."""
        gate = self.active.pop(channel, None)
        if gate is None or gate.held is None:
            return [], 0
        held = gate.held if gate.epoch == epoch else []
        floor = position or 0
        by_offset: dict[int, Publication] = {}
        unpositioned: list[Publication] = []
        for pub in held:
            if not pub.offset:
                unpositioned.append(pub)  # nothing to order or compare it by
            elif pub.offset > floor:
                by_offset.setdefault(pub.offset, pub)
        apply = [by_offset[o] for o in sorted(by_offset)] + unpositioned
        dropped = len(held) - len(apply)
        if position and gate.epoch == epoch and not by_offset:
            # Nothing above ``position`` arrived yet, and publications at or below it may still
            # be on their way: keep dropping those until the first one above it passes.
            floor_gate = _Gate(epoch)
            floor_gate.held, floor_gate.floor = None, position
            self.active[channel] = floor_gate
        return apply, dropped

    def forget(self, channel: str) -> None:
        """Drop ``channel``'s gate (no longer subscribed, or the bridge stops)."""
        self.active.pop(channel, None)
