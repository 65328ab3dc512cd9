"""The ordered view of an :class:`~reactive_aiops.core.entities.EntityCollection` (private).

How a view is built: sorted in full, or patched from an ancestor's view by removing and inserting
only the changed keys. ``entities.py`` decides which (and when the patch is not worth it); this
module does it. A sort key is ``sort_key(key, entity)``, unique per key (the entity key breaks
ties), so every entity has exactly one slot that ``bisect`` finds.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

import immutables

__all__ = ["OrderedView", "patch", "patch_one", "sort_all"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()

_new = object.__new__


class OrderedView(Sequence[V]):
    """A read-only sequence of entities in the collection's order; cached per collection."""

    __slots__ = ("_items", "_sort_keys")

    def __init__(self, items: list[V], sort_keys: list[Any]) -> None:
        # patch_one builds a view without this call: keep the two in step
        self._items = items
        # Kept so a descendant's view can bisect without recomputing n sort keys.
        self._sort_keys = sort_keys

    @overload
    def __getitem__(self, index: int) -> V: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[V]: ...

    def __getitem__(self, index: int | slice) -> V | Sequence[V]:
        if isinstance(index, slice):
            return tuple(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[V]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"OrderedView({self._items!r})"


def sort_all(sort_key: Callable[[K, V], Any], entities: immutables.Map[K, V]) -> OrderedView[V]:
    """The view of ``entities`` sorted in full: n sort keys, n log n comparisons."""
    pairs = sorted(((sort_key(k, v), v) for k, v in entities.items()), key=_first)
    return OrderedView([v for _, v in pairs], [sk for sk, _ in pairs])


def patch(
    sort_key: Callable[[K, V], Any],
    old_map: immutables.Map[K, V],
    new_map: immutables.Map[K, V],
    old_view: OrderedView[V],
    changed: Iterable[K],
) -> OrderedView[V]:
    """The view of ``new_map`` from ``old_view`` (of ``old_map``): ``changed`` keys moved only."""
    # Copying two lists is a C-level memcpy; every bisect/insert below is O(log n)
    # comparisons plus a memmove, far below the O(n log n) comparisons of a full sort.
    # The sort keys are shared with the old view (never mutated) until one actually moves:
    # an update that keeps its sort key (the usual live upsert) only swaps the value in place.
    keys = old_view._sort_keys
    shared = True
    values = list(old_view._items)
    for key in changed:
        old = old_map.get(key, _MISSING)
        new = new_map.get(key, _MISSING)
        old_sk = sort_key(key, old) if old is not _MISSING else _MISSING
        if old is not _MISSING and new is not _MISSING:
            new_sk = sort_key(key, new)
            if new_sk == old_sk:
                values[bisect.bisect_left(keys, old_sk)] = new
                continue
        elif new is not _MISSING:
            new_sk = sort_key(key, new)
        if shared:
            keys, shared = list(keys), False
        if old is not _MISSING:
            i = bisect.bisect_left(keys, old_sk)
            del keys[i]
            del values[i]
        if new is not _MISSING:
            i = bisect.bisect_left(keys, new_sk)
            keys.insert(i, new_sk)
            values.insert(i, new)
    return OrderedView(values, keys)


def patch_one(
    order: Callable[[V], Any] | None,
    old_map: immutables.Map[K, V],
    new_map: immutables.Map[K, V],
    old_view: OrderedView[V],
    key: K,
) -> OrderedView[V]:
    """:func:`patch` for one changed key, with one sort key when that key did not move.

    Takes the collection's ``order`` (or None), not its ``sort_key``: the sort key
    ``(order(entity), key)`` (``key`` without an order, as ``_Config.sort_key`` makes it) is
    built here, which saves a call on the live path.

    Sort keys are unique (the entity key breaks ties), so if the old view holds a sort key
    equal to the new entity's, it is this key's own (the key was held) and unchanged: the
    new entity takes its slot, found by one bisect, without computing the old entity's sort
    key or even looking the old entity up.
    """
    keys = old_view._sort_keys
    values = old_view._items[:]
    new = new_map.get(key, _MISSING)
    i = 0
    if new is not _MISSING:
        new_sk = key if order is None else (order(new), key)
        i = bisect.bisect_left(keys, new_sk)
        if i < len(keys) and keys[i] == new_sk:
            values[i] = new
            # OrderedView(values, keys), without its __init__ frame (keep in step)
            view: OrderedView[V] = _new(OrderedView)
            view._items = values
            view._sort_keys = keys
            return view
    keys = keys[:]
    old = old_map.get(key, _MISSING)
    if old is not _MISSING:
        j = bisect.bisect_left(keys, key if order is None else (order(old), key))
        del keys[j]
        del values[j]
        if j < i:
            i -= 1  # the new slot was counted with the old entry still before it
    if new is not _MISSING:
        keys.insert(i, new_sk)
        values.insert(i, new)
    return OrderedView(values, keys)


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]
