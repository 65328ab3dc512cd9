"""Actions: what happened (facts) or what the UI asks for (commands).

Any object may be dispatched. Library actions are frozen ``attrs`` classes registered with
:func:`action`, which gives each a stable type name for logs and for the action log's
round trip, independent of the module the class lives in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

import attrs

_T = TypeVar("_T")

_REGISTRY: dict[str, type[Any]] = {}


@overload
def action(cls: type[_T], /) -> type[_T]: ...


@overload
def action(*, name: str | None = None) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(attrs.field,))
def action(
    cls: type[_T] | None = None, /, *, name: str | None = None
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Make ``cls`` a frozen attrs class and register it under a stable type name.

    Use as ``@action`` or ``@action(name="detector.upserted")``; the name defaults to the class
    name. Registering a different class under a taken name raises :class:`ValueError`: rename one
    or pass ``name=``.
    """

    def wrap(klass: type[_T]) -> type[_T]:
        already_attrs = attrs.has(klass)  # kept in a variable: the TypeGuard would narrow klass
        if not already_attrs:
            klass = attrs.frozen(klass)
        type_name = name or klass.__name__
        existing = _REGISTRY.get(type_name)
        if existing is not None and existing.__qualname__ != klass.__qualname__:
            raise ValueError(
                f"action type name {type_name!r} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}; pass name= to disambiguate"
            )
        _REGISTRY[type_name] = klass
        setattr(klass, "__action_type__", type_name)  # noqa: B010 - a dunder mypy cannot know
        return klass

    if cls is None:
        return wrap
    return wrap(cls)


def action_type(act: object) -> str:
    """Return the stable type name of ``act`` (its class name when it was not registered)."""
    name: str | None = getattr(type(act), "__action_type__", None)
    return name if name is not None else type(act).__qualname__


def action_class(type_name: str) -> type[Any]:
    """Return the class registered under ``type_name``; raises :class:`KeyError` if unknown."""
    return _REGISTRY[type_name]


def registered_actions() -> dict[str, type[Any]]:
    """A copy of the registry: stable type name -> class."""
    return dict(_REGISTRY)


@action(name="@@init")
class Init:
    """Dispatched once by the store at creation; reducers return their initial state."""


@action(name="@@replace")
class ReplaceReducer:
    """Dispatched by :meth:`Store.replace_reducer` so the new reducer can fill in its slices."""


@action(name="@@batch")
class Batch:
    """Actions applied all-or-nothing with one notification (:meth:`Store.dispatch_batch`)."""

    actions: tuple[object, ...]


@action(name="@@effect_failed")
class EffectFailed:
    """An epic raised; it is restarted after ``retry_in`` seconds. Other epics carry on."""

    epic: str
    error: str
    attempt: int
    retry_in: float
