"""``core._fastinit.fast_constructor``: the objects it builds are the attrs class's own, in every
way a user (or the action log) can look at them, and it refuses classes whose ``__init__`` does
more than store its arguments."""

from __future__ import annotations

import pickle
import weakref
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive_aiops.aiops.actions import AnomalyUpserted, DetectorUpserted, HealthUpdated
from reactive_aiops.aiops.models import Anomaly, AnomalyState, Severity
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core._fastinit import fast_constructor, fast_replacers
from reactive_aiops.core.actionlog import encode_action
from reactive_aiops.core.events import EventMeta

_text = st.text(max_size=12)
_opt_text = st.none() | _text
_metas = st.tuples(
    _text,
    _text,
    st.integers(-5, 5),
    _opt_text,
    st.none() | st.integers(0, 2**63),
    _opt_text,
    _opt_text,
    st.none() | st.floats(allow_nan=False),
)


def _same(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert attrs.asdict(fast, recurse=False) == attrs.asdict(slow, recurse=False)
    assert pickle.loads(pickle.dumps(fast)) == slow


@given(_metas)
def test_event_meta_built_fast_is_the_same_object(fields: tuple[Any, ...]) -> None:
    build = fast_constructor(EventMeta)
    assert build is not None
    meta = build(*fields)
    _same(meta, EventMeta(*fields))
    assert attrs.evolve(meta, channel="other") == attrs.evolve(EventMeta(*fields), channel="other")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        meta.channel = "x"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del meta.offset
    assert weakref.ref(meta)() is meta


@given(_metas, st.integers(0, 9), st.sampled_from(list(Severity)))
def test_action_built_fast_is_the_same_object(
    fields: tuple[Any, ...], version: int, severity: Severity
) -> None:
    build = fast_constructor(AnomalyUpserted)
    assert build is not None
    meta = EventMeta(*fields)
    anomaly = Anomaly("a1", "d1", "cpu", severity, 0.5, 1.0, 2.0, AnomalyState.OPEN, version)
    for fast, slow in (
        (build(anomaly, meta), AnomalyUpserted(anomaly, meta=meta)),
        (build(anomaly, None), AnomalyUpserted(anomaly)),
    ):
        _same(fast, slow)
        assert encode_action(fast) == encode_action(slow)  # the action log's line, byte for byte


def test_the_aiops_upsert_actions_qualify() -> None:
    for cls in (AnomalyUpserted, DetectorUpserted, HealthUpdated):
        assert fast_constructor(cls) is not None


@attrs.frozen
class _Validated:
    a: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen
class _Converted:
    a: int = attrs.field(converter=int)


@attrs.frozen
class _PostInit:
    a: int

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "a", self.a + 1)


@attrs.frozen(init=False)
class _OwnInit:
    a: int

    def __init__(self, a: int) -> None:
        object.__setattr__(self, "a", a * 2)


@attrs.frozen(cache_hash=True)
class _CachedHash:
    a: int


@attrs.frozen(slots=False)
class _DictClass:
    a: int


@attrs.frozen
class _Base:
    a: int


@attrs.frozen
class _Sub(_Base):
    b: int


@attrs.frozen
class _NoInitField:
    a: int
    b: int = attrs.field(init=False, default=0)


@attrs.define
class _OwnSetattr:
    a: int

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value * 2)


@pytest.mark.parametrize(
    "cls",
    [_Validated, _Converted, _PostInit, _OwnInit, _CachedHash, _DictClass, _Sub, _NoInitField,
     _OwnSetattr, int],
)
def test_refuses_classes_whose_init_does_more(cls: type[Any]) -> None:
    assert fast_constructor(cls) is None


@attrs.frozen
class _Root:
    a: int = 0
    b: int = 0


@attrs.frozen
class _CheckedRoot:
    a: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    b: int = 0


def _slice(state: int | None, action: object) -> int:
    return (state or 0) + action if isinstance(action, int) else (state or 0)


def test_combined_root_is_rebuilt_as_evolve_would() -> None:
    from reactive_aiops.core import combine_reducers

    root = combine_reducers(_Root, a=_slice)
    state = root(None, None)
    after = root(state, 3)
    assert type(after) is _Root
    assert after == attrs.evolve(state, a=3)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        after.a = 1  # type: ignore[misc]


def test_combined_root_with_a_validator_still_validates() -> None:
    from reactive_aiops.core import combine_reducers

    root = combine_reducers(_CheckedRoot, a=_slice)
    state = root(None, None)
    assert root(state, 2).a == 2
    with pytest.raises(ValueError, match="must be >= 0"):
        root(state, -5)


@given(_metas, st.sampled_from([f.name for f in attrs.fields(EventMeta)]), st.integers())
def test_replacing_one_field_is_evolve(fields: tuple[Any, ...], name: str, value: int) -> None:
    replacers = fast_replacers(EventMeta)
    assert replacers is not None
    meta = EventMeta(*fields)
    _same(replacers[name](meta, value), attrs.evolve(meta, **{name: value}))
    assert meta == EventMeta(*fields)  # the original is untouched


def test_the_app_state_has_replacers_and_refused_classes_none() -> None:
    replacers = fast_replacers(AppState)
    assert replacers is not None
    assert set(replacers) == {f.name for f in attrs.fields(AppState)}
    state = AppState()
    after = replacers["health"](state, None)
    assert after == state
    assert after is not state
    assert type(after) is AppState
    for cls in (_Validated, _PostInit, _OwnInit, _CachedHash, _DictClass, _Sub, _NoInitField):
        assert fast_replacers(cls) is None
