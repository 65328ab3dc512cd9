"""The edge decoder's mirror structs: a payload decoded into its mirror and copied into the attrs
model is the object msgspec builds when it decodes the model itself, field for field and type
for type (``==`` alone would let ``3`` pass for ``3.0``), and fails where that fails."""

from __future__ import annotations

import json
from typing import Any

import attrs
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops.actions import AnomalyUpserted
from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.core.actionlog import encode_action
from reactive_aiops.net.edge import _mirror

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(2**53 - 1, 2**64 + 1),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.sampled_from(["low", "medium", "high", "critical", "open", "acknowledged", "resolved"]),
    st.sampled_from(["active", "paused", "error", "ok", "degraded"]),
)

_BASES: dict[type[Any], dict[str, Any]] = {
    Anomaly: {
        "id": "an-1",
        "detector_id": "det-1",
        "metric": "cpu",
        "severity": "high",
        "score": 4,
        "value": 97.5,
        "started_at": 1_700_000_000,
        "version": 3,
    },
    Detector: {
        "id": "det-1",
        "name": "d",
        "metric": "cpu",
        "status": "active",
        "updated_at": 1,
        "version": 2,
    },
    SystemHealth: {
        "status": "ok",
        "events_per_second": 10,
        "open_anomalies": 1,
        "detectors_active": 2,
        "detectors_error": 0,
        "updated_at": 5.5,
    },
}


def _decode(cls: type[Any], text: bytes) -> tuple[str, Any]:
    try:
        return "ok", msgspec.json.decode(text, type=cls)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        return "error", type(exc)


def _decode_mirrored(cls: type[Any], text: bytes) -> tuple[str, Any]:
    mirror = _mirror(cls)
    assert mirror is not None
    struct, to_payload = mirror
    try:
        return "ok", to_payload(msgspec.json.decode(text, type=struct))
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        return "error", type(exc)


@settings(max_examples=400, deadline=None)
@given(
    cls=st.sampled_from(list(_BASES)),
    changes=st.dictionaries(
        st.sampled_from(
            ["id", "severity", "score", "value", "started_at", "state", "version", "updated_at",
             "resolved_at", "acknowledged_by", "status", "name", "open_anomalies", "extra"]
        ),
        _values | st.just(None),
        max_size=3,
    ),
    dropped=st.sampled_from([None, "id", "version", "score", "status", "updated_at"]),
)
def test_mirror_decodes_to_what_msgspec_builds_for_the_model(
    cls: type[Any], changes: dict[str, Any], dropped: str | None
) -> None:
    payload = {**_BASES[cls], **changes}
    if dropped is not None:
        payload.pop(dropped, None)
    text = json.dumps(payload).encode()
    expected, got = _decode(cls, text), _decode_mirrored(cls, text)
    assert got[0] == expected[0]
    if got[0] == "ok":
        want, have = expected[1], got[1]
        assert type(have) is cls
        for field in attrs.fields(cls):
            a, b = getattr(want, field.name), getattr(have, field.name)
            assert type(a) is type(b), field.name
            assert a == b or (a != a and b != b), field.name
        assert repr(have) == repr(want)
        if cls is Anomaly:  # the action log's line, byte for byte
            assert encode_action(AnomalyUpserted(have)) == encode_action(AnomalyUpserted(want))


def test_models_with_their_own_checks_get_no_mirror() -> None:
    @attrs.frozen
    class Checked:
        a: int = attrs.field(validator=attrs.validators.ge(0))

    @attrs.frozen
    class Factory:
        a: tuple[int, ...] = attrs.field(factory=tuple)

    assert _mirror(Checked) is None
    assert _mirror(Factory) is None
    assert _mirror(int) is None
