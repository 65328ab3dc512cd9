"""The AIOps event table: the channels and event types of the contract, as domain actions.

=====================  ===================  ===============  =====================
channel                event type (v1)      payload          action
=====================  ===================  ===============  =====================
``detectors``          detector.upserted    Detector         DetectorUpserted
``detectors:<id>``     detector.upserted    Detector         DetectorUpserted
``anomalies``          anomaly.upserted     Anomaly          AnomalyUpserted
``health``             health.updated       SystemHealth     HealthUpdated
=====================  ===================  ===============  =====================

Anything else becomes :class:`~reactive_aiops.core.events.UnknownEvent`; a payload that does not
decode becomes :class:`~reactive_aiops.core.events.MalformedEvent` with the field and the reason.
Payloads decode with :func:`aiops_converter`, a dedicated strict converter: a string is never
taken for a number, nor a number for a string or a bool for either (cattrs' defaults would
coerce them silently). Extra payload keys are ignored so a server may add fields within v1.

The event's :class:`~reactive_aiops.core.events.EventMeta` is attached as the action's ``meta``
when the action class has that field, so dedupe and the optimistic echo match can see it.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs

from reactive_aiops.aiops.actions import AnomalyUpserted, DetectorUpserted, HealthUpdated
from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.core.events import EventMeta, EventRoute, EventTable

__all__ = [
    "ANOMALY_UPSERTED",
    "DETECTOR_UPSERTED",
    "HEALTH_UPDATED",
    "aiops_converter",
    "aiops_event_table",
    "aiops_routes",
]

DETECTOR_UPSERTED = "detector.upserted"
ANOMALY_UPSERTED = "anomaly.upserted"
HEALTH_UPDATED = "health.updated"


def _strict_str(value: Any, type_: Any) -> Any:
    # Also reached for the models' StrEnums (str subclasses): those are looked up by value.
    # The exact-type checks first are the hot path (JSON gives exact types); the enum member is
    # read from the enum's own value map, as ``type_(value)`` would find it, minus the call.
    if type(value) is str:
        if type_ is str:
            return value
        member = getattr(type_, "_value2member_map_", _NO_MAP).get(value)
        if member is not None:
            return member
    elif not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value if type_ is str else type_(value)


def _strict_int(value: Any, _type: Any) -> int:
    if type(value) is int:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_float(value: Any, _type: Any) -> float:
    if type(value) is float:
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


_NO_MAP: dict[str, Any] = {}


def aiops_converter() -> cattrs.Converter:
    """A new converter for AIOps payloads: strict scalars, enums by value, extra keys ignored."""
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    for model in (Anomaly, Detector, SystemHealth):
        converter.register_structure_hook(model, _fast_hook(model, converter))
    return converter


_SCALARS = (str, int, float)


def _field_check(index: int, field: attrs.Attribute[Any], tp: Any) -> list[str] | None:
    """Lines binding ``a<index>`` to the field's value when the JSON holds exactly what the
    strict hooks accept unchanged; None when the field's type is not one of the simple kinds."""
    var, key = f"a{index}", repr(field.alias)
    optional = False
    args = typing.get_args(tp)
    if type(tp) is types.UnionType and len(args) == 2 and type(None) in args:
        optional, tp = True, next(a for a in args if a is not type(None))
    is_enum = isinstance(tp, type) and issubclass(tp, enum.Enum) and issubclass(tp, str)
    if not (tp in _SCALARS or is_enum):
        return None
    has_default = field.default is not attrs.NOTHING
    if has_default and isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        return None
    lines = [f"    {var} = get({key}, _MISSING)"]
    # A missing key takes the field's default (as the generated hook leaves it to attrs).
    missing = f"{var} = _D[{index}]" if has_default else "return slow(o, cl)"
    lines.append(f"    if {var} is _MISSING: {missing}")
    test = f"type({var}) is str and {var} in _E[{index}]" if is_enum else (
        f"type({var}) is {tp.__name__}"
    )
    accept = f"{var} is None or " if optional else ""
    lines.append(f"    elif not ({accept}{test}): return slow(o, cl)")
    if is_enum:
        lines.append(f"    if type({var}) is str: {var} = _E[{index}][{var}]")
    return lines


def _fast_hook(cls: type[Any], converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """A structure hook for ``cls`` that builds it directly when every field holds exactly
    the JSON type the strict hooks would pass through, and otherwise defers to the converter's
    generated hook (so results and error reports are the converter's, field by field)."""
    slow = converter.get_structure_hook(cls)
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    if any(not f.init or f.kw_only for f in fields):
        return slow
    body = ["def structure(o, cl):", "    if type(o) is not dict: return slow(o, cl)",
            "    get = o.get"]
    enums: dict[int, dict[str, Any]] = {}
    defaults: dict[int, Any] = {}
    for index, field in enumerate(fields):
        lines = _field_check(index, field, hints[field.name])
        if lines is None:
            return slow
        tp = hints[field.name]
        inner = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            enums[index] = dict(inner._value2member_map_)
        if field.default is not attrs.NOTHING:
            defaults[index] = field.default
        body += lines
    body.append(f"    return _cls({', '.join(f'a{i}' for i in range(len(fields)))})")
    namespace: dict[str, Any] = {
        "slow": slow, "_cls": cls, "_E": enums, "_D": defaults,
        "_MISSING": _MISSING_KEY,
    }
    exec("\n".join(body), namespace)  # the source is built above from the class's own fields
    fast: Callable[[Any, Any], Any] = namespace["structure"]
    return fast


_MISSING_KEY: Any = object()


def _builder(action_cls: type[Any], field: str) -> Callable[[Any, EventMeta], object]:
    """``build(payload, meta)`` for ``action_cls(field=payload[, meta=meta])``."""
    if "meta" in attrs.fields_dict(action_cls):
        first = next(f for f in attrs.fields(action_cls) if f.init)
        if first.name == field and not first.kw_only:
            return lambda payload, meta: action_cls(payload, meta=meta)
        return lambda payload, meta: action_cls(**{field: payload, "meta": meta})
    return lambda payload, meta: action_cls(**{field: payload})


def aiops_routes() -> list[EventRoute[Any]]:
    """The routes of the table above, for building a custom table around them."""
    detector = _builder(DetectorUpserted, "detector")
    return [
        EventRoute("detectors", DETECTOR_UPSERTED, Detector, detector),
        EventRoute("detectors:*", DETECTOR_UPSERTED, Detector, detector),
        EventRoute("anomalies", ANOMALY_UPSERTED, Anomaly, _builder(AnomalyUpserted, "anomaly")),
        EventRoute("health", HEALTH_UPDATED, SystemHealth, _builder(HealthUpdated, "health")),
    ]


def aiops_event_table() -> EventTable:
    """The AIOps :class:`~reactive_aiops.core.events.EventTable` with its own converter."""
    return EventTable(aiops_routes(), converter=aiops_converter())
