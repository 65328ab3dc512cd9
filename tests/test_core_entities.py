"""EntityCollection: a dict model under random operations, identity on no-ops, versions,
change tracking through weak links, and an ordered view derived without re-sorting."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.core.entities import EntityCollection


@attrs.frozen
class Item:
    id: str
    rank: int = 0
    version: int = 0


def make(*, versioned: bool = False, calls: list[str] | None = None) -> EntityCollection[str, Item]:
    def order(item: Item) -> int:
        if calls is not None:
            calls.append(item.id)
        return -item.rank

    return EntityCollection.empty(key=lambda i: i.id, order=order, versioned=versioned)


def contents(c: EntityCollection[str, Item]) -> dict[str, Item]:
    return dict(c.items())


def expected_order(model: dict[str, Item]) -> list[Item]:
    return sorted(model.values(), key=lambda i: (-i.rank, i.id))


# -- reading and identity ----------------------------------------------------------------------


def test_reads_like_a_mapping() -> None:
    c = make().upsert_many([Item("a", 1), Item("b", 2)])
    assert len(c) == 2
    assert "a" in c
    assert "z" not in c
    assert c["b"] == Item("b", 2)
    assert c.get("z") is None
    assert c.get("z", Item("z")) == Item("z")
    assert sorted(c) == ["a", "b"]
    assert sorted(c.keys()) == ["a", "b"]
    assert sorted(i.id for i in c.values()) == ["a", "b"]
    assert c.key_of(Item("q")) == "q"
    assert "2 entities" in repr(c)
    with pytest.raises(KeyError):
        c["z"]


def test_no_op_updates_return_the_same_collection() -> None:
    c = make().upsert(Item("a", 1))
    assert c.upsert(Item("a", 1)) is c  # equal, not identical
    assert c.remove("missing") is c
    assert c.remove_many(["x", "y"]) is c
    assert c.upsert_many([]) is c
    assert c.upsert_many([Item("a", 1)]) is c
    assert c.set_all([Item("a", 1)]) is c
    # Replaced and then put back within one upsert_many: nothing changed overall.
    assert c.upsert_many([Item("a", 9), c["a"]]) is c


def test_upsert_many_put_back_keeps_the_held_object() -> None:
    c = make(versioned=True).upsert_many([Item("a", 1), Item("b", 1)])
    c.ordered()
    held = c["a"]
    # "a" is replaced, then put back with an equal (not identical) copy; "b" really changes.
    d = c.upsert_many([Item("a", 5), Item("a", 1), Item("b", 2)])
    assert d["a"] is held
    assert d.changed_keys_since(c) == {"b"}
    assert [i.id for i in d.ordered()] == ["b", "a"]
    assert all(d[i.id] is i for i in d.ordered())


def test_updates_return_new_collections_and_leave_the_old_intact() -> None:
    c1 = make().upsert(Item("a", 1))
    c2 = c1.upsert(Item("a", 2))
    c3 = c2.remove("a")
    assert c1["a"].rank == 1
    assert c2["a"].rank == 2
    assert "a" not in c3
    assert len(c3) == 0


def test_equality_is_identity_so_comparing_states_is_cheap() -> None:
    a = make().upsert(Item("a"))
    b = make().upsert(Item("a"))
    assert a != b
    assert a == a
    assert contents(a) == contents(b)


def test_set_all_replaces_everything() -> None:
    c = make().upsert_many([Item("a"), Item("b"), Item("c")])
    d = c.set_all([Item("b"), Item("c", 5), Item("d")])
    assert contents(d) == {"b": Item("b"), "c": Item("c", 5), "d": Item("d")}
    assert d.changed_keys_since(c) == {"a", "c", "d"}


def test_remove_many_removes_present_keys() -> None:
    c = make().upsert_many([Item("a"), Item("b"), Item("c")])
    d = c.remove_many(["a", "c", "zz"])
    assert contents(d) == {"b": Item("b")}
    assert d.changed_keys_since(c) == {"a", "c"}


def test_upsert_calls_the_key_function_once_and_never_walks_the_collection() -> None:
    seen: list[Item] = []

    def key(item: Item) -> str:
        seen.append(item)
        return item.id

    c = EntityCollection.empty(key=key).upsert_many(Item(str(i)) for i in range(1000))
    seen.clear()
    c.upsert(Item("7", 1))
    assert seen == [Item("7", 1)]


# -- versions ----------------------------------------------------------------------------------


def test_versioned_upsert_ignores_older_versions() -> None:
    c = make(versioned=True).upsert(Item("a", 1, version=3))
    assert c.upsert(Item("a", 9, version=2)) is c
    newer = c.upsert(Item("a", 9, version=4))
    assert newer["a"] == Item("a", 9, version=4)
    # The same version with other content is not older: accepted (an optimistic edit).
    same = c.upsert(Item("a", 5, version=3))
    assert same["a"].rank == 5


def test_unversioned_upsert_takes_whatever_comes() -> None:
    c = make().upsert(Item("a", version=3))
    assert c.upsert(Item("a", version=1))["a"].version == 1


def test_versioned_set_all_keeps_a_newer_held_entity() -> None:
    c = make(versioned=True).upsert_many([Item("a", 1, 5), Item("b", 1, 1)])
    d = c.set_all([Item("a", 0, 4), Item("b", 2, 2), Item("a", 3, 3)])
    assert contents(d) == {"a": Item("a", 1, 5), "b": Item("b", 2, 2)}


def test_exact_set_all_takes_the_snapshot_even_over_newer_held_versions() -> None:
    # after a server lost its state, versions start again: the held newer one is dead
    c = make(versioned=True).upsert_many([Item("a", 1, 6), Item("b", 2, 9)])
    d = c.set_all([Item("a", 5, 2), Item("c", 0, 1)], keep_newer=False)
    assert contents(d) == {"a": Item("a", 5, 2), "c": Item("c", 0, 1)}
    assert d.set_all([Item("a", 5, 2), Item("c", 0, 1)], keep_newer=False) is d


def test_versioned_upsert_many_ignores_older_versions() -> None:
    c = make(versioned=True).upsert_many([Item("a", 1, 2), Item("a", 0, 1)])
    assert c["a"] == Item("a", 1, 2)


def test_versioned_collection_rejects_entities_without_version() -> None:
    c: EntityCollection[str, Any] = EntityCollection.empty(key=lambda e: e[0], versioned=True)
    c = c.upsert(("a", 1))
    with pytest.raises(TypeError, match="version"):
        c.upsert(("a", 2))


# -- change tracking ---------------------------------------------------------------------------


def test_changed_keys_since_follows_the_chain() -> None:
    base = make().upsert_many([Item("a"), Item("b")])
    c1 = base.upsert(Item("a", 1))
    c2 = c1.remove("b")
    c3 = c2.upsert(Item("c"))
    assert c3.changed_keys_since(c3) == frozenset()
    assert c3.changed_keys_since(c2) == {"c"}
    assert c3.changed_keys_since(base) == {"a", "b", "c"}
    assert c1.changed_keys_since(c3) is None  # newer, not older
    sibling = c1.upsert(Item("z"))
    assert c3.changed_keys_since(sibling) is None
    assert c3.changed_keys_since(make()) is None


def test_changed_keys_survive_dropped_intermediates() -> None:
    # Like a batch dispatch: intermediate collections are garbage before anyone looks.
    held = make().upsert(Item("a"))
    c = held
    for i in range(10):
        c = c.upsert(Item(f"k{i}"))
    gc.collect()
    assert c.changed_keys_since(held) == {f"k{i}" for i in range(10)}


def test_change_history_is_bounded_and_then_unknown() -> None:
    held = make().upsert(Item("a"))
    c = held
    for i in range(200):
        c = c.upsert(Item("a", i + 1))
    assert c.changed_keys_since(held) is None
    depth, link = 0, c._link
    while link is not None:
        depth, link = depth + 1, link.prev
    assert depth <= 64
    # A recent ancestor is still found after the chain was compacted.
    recent = c
    for i in range(40):
        c = c.upsert(Item(f"n{i}"))
    assert c.changed_keys_since(recent) == {f"n{i}" for i in range(40)}


def test_parents_are_not_retained() -> None:
    parent = make().upsert(Item("a"))
    child = parent.upsert(Item("b"))
    ref = weakref.ref(parent)
    del parent
    gc.collect()
    assert ref() is None
    assert child.changed_keys_since(child) == frozenset()
    assert contents(child) == {"a": Item("a"), "b": Item("b")}


# -- ordered view ------------------------------------------------------------------------------


def test_ordered_view_sorts_by_order_then_key() -> None:
    c = make().upsert_many([Item("b", 1), Item("a", 1), Item("c", 3), Item("d", 2)])
    view = c.ordered()
    assert [i.id for i in view] == ["c", "d", "a", "b"]
    assert len(view) == 4
    assert view[0].id == "c"
    assert [i.id for i in view[1:3]] == ["d", "a"]
    assert c.ordered() is view
    assert "OrderedView" in repr(view)


def test_ordered_view_without_order_sorts_by_key() -> None:
    c: EntityCollection[str, Item] = EntityCollection.empty(key=lambda i: i.id)
    c = c.upsert_many([Item("b"), Item("c"), Item("a")])
    assert [i.id for i in c.ordered()] == ["a", "b", "c"]


def test_ordered_view_is_derived_from_the_parent_not_resorted() -> None:
    calls: list[str] = []
    c = make(calls=calls).upsert_many(Item(str(i), i % 7) for i in range(2000))
    c.ordered()
    assert len(calls) == 2000
    calls.clear()
    d = c.upsert(Item("5", 100)).remove("6")
    e = d.upsert(Item("7", -1))
    view = e.ordered()
    # Only the changed keys' sort keys were computed (old and new value of each).
    assert sorted(calls) == sorted(["5", "5", "6", "7", "7"])
    assert view[0].id == "5"
    assert view[-1].id == "7"
    assert list(view) == expected_order(contents(e))


def test_ordered_view_falls_back_to_a_full_sort_when_most_keys_changed() -> None:
    calls: list[str] = []
    c = make(calls=calls).upsert_many(Item(str(i), i) for i in range(100))
    c.ordered()
    d = c.upsert_many(Item(str(i), -i - 1) for i in range(60))  # 60 of 100 changed and moved
    calls.clear()
    assert list(d.ordered()) == expected_order(contents(d))
    assert len(calls) == 100


def test_ordered_view_patches_a_frame_of_changes_relative_to_the_size() -> None:
    # A live frame: 50 changed keys among 200 entities (more than a fixed few dozen) are still
    # patched, two sort keys each, over one link or over many.
    calls: list[str] = []
    c = make(calls=calls).upsert_many(Item(str(i), i % 5) for i in range(200))
    c.ordered()
    for d in (
        c.upsert_many(Item(str(i), i % 3) for i in range(0, 200, 4)),
        _upsert_each(c, [Item(str(i), i % 3) for i in range(0, 200, 4)]),
    ):
        calls.clear()
        assert list(d.ordered()) == expected_order(contents(d))
        assert len(calls) == 2 * len(d.changed_keys_since(c) or ())
        assert 0 < len(calls) <= 100


def test_ordered_view_patch_limit_is_capped_for_big_collections() -> None:
    from reactive_aiops.core import entities

    assert entities._patch_limit(10) == entities._MAX_INCREMENTAL
    assert entities._patch_limit(200) == 100
    assert entities._patch_limit(10**6) == entities._MAX_PATCH


def _upsert_each(c: EntityCollection[str, Item], items: list[Item]) -> EntityCollection[str, Item]:
    for item in items:
        c = c.upsert(item)
    return c


# -- the dict model ----------------------------------------------------------------------------

KEYS = st.sampled_from([f"k{i}" for i in range(8)])
ITEMS = st.builds(Item, KEYS, st.integers(0, 3), st.integers(0, 3))
OPS = st.one_of(
    st.tuples(st.just("upsert"), ITEMS),
    st.tuples(st.just("upsert_many"), st.lists(ITEMS, max_size=4)),
    st.tuples(st.just("remove"), KEYS),
    st.tuples(st.just("remove_many"), st.lists(KEYS, max_size=3)),
    st.tuples(st.just("set_all"), st.lists(ITEMS, max_size=6)),
    st.tuples(st.just("ordered"), st.none()),
)


def accepts(versioned: bool, held: Item | None, item: Item) -> bool:
    return held is None or (held != item and (not versioned or item.version >= held.version))


def apply_model(model: dict[str, Item], op: str, arg: Any, versioned: bool) -> dict[str, Item]:
    model = dict(model)
    if op == "upsert":
        if accepts(versioned, model.get(arg.id), arg):
            model[arg.id] = arg
    elif op == "upsert_many":
        for item in arg:
            if accepts(versioned, model.get(item.id), item):
                model[item.id] = item
    elif op == "remove":
        model.pop(arg, None)
    elif op == "remove_many":
        for key in arg:
            model.pop(key, None)
    elif op == "set_all":
        incoming: dict[str, Item] = {}
        for item in arg:
            if accepts(versioned, incoming.get(item.id), item):
                incoming[item.id] = item
        for key, held in model.items():
            if key in incoming and not accepts(versioned, held, incoming[key]):
                incoming[key] = held
        model = incoming
    return model


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(OPS, max_size=40))
def test_collection_equals_a_dict_model(versioned: bool, ops: list[tuple[str, Any]]) -> None:
    c = make(versioned=versioned)
    model: dict[str, Item] = {}
    history = [(c, model)]
    for op, arg in ops:
        if op == "ordered":
            assert list(c.ordered()) == expected_order(model)
            continue
        before = c
        c = getattr(c, op)(arg)
        model = apply_model(model, op, arg, versioned)
        assert contents(c) == model
        assert len(c) == len(model)
        if contents(before) == model:
            assert c is before
        history.append((c, model))
    assert list(c.ordered()) == expected_order(model)
    # Change tracking never misses a changed key, whatever ancestor it is asked about.
    for older, older_model in history:
        changed = c.changed_keys_since(older)
        if changed is None:
            continue
        truly = {k for k in older_model.keys() | model.keys() if older_model.get(k) != model.get(k)}
        assert truly <= changed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(OPS, st.tuples(st.just("keep"), st.none())), max_size=60))
def test_ordered_view_survives_dropped_ancestors(ops: list[tuple[str, Any]]) -> None:
    # Only "kept" collections stay alive, so views are derived across dead intermediates
    # from whichever ancestor still holds one, or sorted afresh when none does.
    c = make(versioned=True)
    model: dict[str, Item] = {}
    kept = [c]
    for op, arg in ops:
        if op == "keep":
            kept.append(c)
        elif op == "ordered":
            assert list(c.ordered()) == expected_order(model)
        else:
            c = getattr(c, op)(arg)
            model = apply_model(model, op, arg, versioned=True)
    gc.collect()
    assert list(c.ordered()) == expected_order(model)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(ITEMS, max_size=8), st.lists(ITEMS, max_size=12), st.booleans())
def test_upsert_many_equals_upserting_one_by_one(
    versioned: bool, start: list[Item], items: list[Item], with_view: bool
) -> None:
    base = make(versioned=versioned).upsert_many(start)
    if with_view:
        base.ordered()
    one_by_one = base
    for item in items:
        one_by_one = one_by_one.upsert(item)
    many = base.upsert_many(items)
    assert contents(many) == contents(one_by_one)
    if one_by_one is base:
        assert many is base
    changed = many.changed_keys_since(base)
    assert changed is not None
    assert changed == {k for k in contents(many) if contents(base).get(k) != many[k]}
    view = many.ordered()
    assert list(view) == expected_order(contents(many))
    assert all(many[i.id] is i for i in view)


# -- the one-key fast path of the ordered view ---------------------------------------------------


def test_one_key_kept_in_place_computes_one_sort_key() -> None:
    calls: list[str] = []
    c = make(calls=calls, versioned=True).upsert_many(Item(str(i), i % 3) for i in range(50))
    c.ordered()
    calls.clear()
    kept = c.upsert(Item("7", 7 % 3, version=1))  # same rank: its slot does not move
    view = kept.ordered()
    assert calls == ["7"]
    assert list(view) == expected_order(contents(kept))
    assert view._sort_keys is c.ordered()._sort_keys  # shared, as nothing moved
    calls.clear()
    moved = kept.upsert(Item("7", 9, version=2))
    assert list(moved.ordered()) == expected_order(contents(moved))
    assert moved.ordered()[0].id == "7"
    assert calls == ["7", "7"]  # the new sort key missed, so the old one is looked up
    assert list(kept.ordered()) == expected_order(contents(kept))  # the parent's is untouched


def test_one_key_changes_report_a_frozenset() -> None:
    c = make().upsert(Item("a"))
    d = c.upsert(Item("a", 1))
    assert d.changed_keys_since(c) == frozenset({"a"})
    assert isinstance(d.changed_keys_since(c), frozenset)
    assert isinstance(d.remove("a").changed_keys_since(d), frozenset)


@attrs.frozen
class Ranked:
    """An entity whose sort key can tie with other keys' (``rank``) and whose equal-but-not-
    identical copies differ only in a field the order ignores (``note``)."""

    id: int
    rank: float
    note: int = 0
    version: int = 0


# Small key and rank spaces: ties in rank are the rule, not the exception; 1 and 1.0 (and 0.0
# and -0.0) are equal sort keys of different types, objects and signs.
RANKS = st.sampled_from([0, 1, 1.0, 2, -0.0, 0.0])
RANKED = st.builds(Ranked, st.integers(0, 9), RANKS, st.integers(0, 2), st.integers(0, 3))
ONE_KEY_OPS = st.one_of(
    st.tuples(st.just("upsert"), RANKED),
    st.tuples(st.just("copy"), st.integers(0, 9)),  # an equal, not identical copy of the held
    st.tuples(st.just("remove"), st.integers(0, 9)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.lists(RANKED, max_size=10),
    st.lists(ONE_KEY_OPS, max_size=40),
)
def test_one_key_patches_equal_a_full_sort(
    versioned: bool, by_key: bool, start: list[Ranked], ops: list[tuple[str, Any]]
) -> None:
    # Every collection asks for its view right after its one-key update, so each view is
    # derived from the direct parent's (the live path); the reference is a full sort.
    def rank(item: Ranked) -> float:
        return -item.rank

    c: EntityCollection[int, Ranked] = EntityCollection.empty(
        key=lambda r: r.id, order=None if by_key else rank, versioned=versioned
    ).upsert_many(start)
    c.ordered()
    for op, arg in ops:
        parent = c
        if op == "upsert":
            c = c.upsert(arg)
        elif op == "copy":
            held = c.get(arg)
            if held is None:
                continue
            c = c.upsert(attrs.evolve(held))
            assert c is parent  # equal: nothing changed, the held object stays
        else:
            c = c.remove(arg)
        view = c.ordered()
        if by_key:
            expected = sorted(c.values(), key=lambda r: r.id)
        else:
            expected = sorted(c.values(), key=lambda r: (-r.rank, r.id))
        assert list(view) == expected
        # The view holds the collection's own objects, not equal copies of them.
        assert all(c[r.id] is r for r in view)
        assert len(view) == len(c)
        # The parent's view is not disturbed by deriving the child's from it.
        assert list(parent.ordered()) == sorted(
            parent.values(), key=(lambda r: r.id) if by_key else (lambda r: (-r.rank, r.id))
        )
