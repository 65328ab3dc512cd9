"""The AIOps event table: every contract event decodes; anything else is Unknown or Malformed."""

from __future__ import annotations

from typing import Any

import cattrs
import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from reactive_aiops.aiops.actions import (
    AcknowledgeAnomaly,
    AnomalyUpserted,
    DetectorUpserted,
    HealthUpdated,
)
from reactive_aiops.aiops.event_table import aiops_converter, aiops_event_table
from reactive_aiops.aiops.models import (
    Anomaly,
    AnomalyState,
    Detector,
    DetectorStatus,
    HealthStatus,
    Severity,
    SystemHealth,
)
from reactive_aiops.aiops.state import AppState, root_reducer
from reactive_aiops.core import create_store
from reactive_aiops.core.actionlog import LogRecord, decode_record, encode_record
from reactive_aiops.core.dedupe import dedupe, dedupe_stats
from reactive_aiops.core.events import (
    EventMeta,
    MalformedEvent,
    ServerEvent,
    UnknownEvent,
    event_meta,
    map_events,
)
from reactive_aiops.core.optimistic import (
    Optimistic,
    TransactionReverted,
    expire_transactions,
    optimistic,
)

TABLE = aiops_event_table()
PLAIN = cattrs.Converter()  # the test's own view of "the model unstructured"

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
times = st.floats(0, 2e9, allow_nan=False)
detectors = st.builds(
    Detector,
    id=names,
    name=names,
    metric=names,
    status=st.sampled_from(DetectorStatus),
    updated_at=times,
    version=st.integers(0, 10**6),
)
anomalies = st.builds(
    Anomaly,
    id=names,
    detector_id=names,
    metric=names,
    severity=st.sampled_from(Severity),
    score=st.floats(allow_nan=False),
    value=st.floats(allow_nan=False, allow_infinity=False),
    started_at=times,
    state=st.sampled_from(AnomalyState),
    version=st.integers(0, 10**6),
    updated_at=times,
    resolved_at=st.none() | times,
    acknowledged_by=st.none() | names,
)
healths = st.builds(
    SystemHealth,
    status=st.sampled_from(HealthStatus),
    events_per_second=st.floats(0, 1e6),
    open_anomalies=st.integers(0, 10**6),
    detectors_active=st.integers(0, 10**4),
    detectors_error=st.integers(0, 10**4),
    updated_at=times,
)


def meta(channel: str, event_type: str, **kw: Any) -> EventMeta:
    return EventMeta(channel, event_type, **kw)


def entity_of(act: object) -> object:
    for name in ("detector", "anomaly", "health"):
        if hasattr(act, name):
            return getattr(act, name)
    raise AssertionError(f"not a domain fact: {act!r}")


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        detectors.map(lambda d: ("detectors", "detector.upserted", d, DetectorUpserted)),
        detectors.map(lambda d: (f"detectors:{d.id}", "detector.upserted", d, DetectorUpserted)),
        anomalies.map(lambda a: ("anomalies", "anomaly.upserted", a, AnomalyUpserted)),
        healths.map(lambda h: ("health", "health.updated", h, HealthUpdated)),
    )
)
def test_every_contract_event_decodes_to_its_action(case: tuple[str, str, Any, type]) -> None:
    channel, event_type, entity, action_cls = case
    m = meta(channel, event_type, event_id="e1", offset=3, command_id="c1")
    act = TABLE.decode(m, PLAIN.unstructure(entity))
    assert type(act) is action_cls
    assert entity_of(act) == entity
    assert event_meta(act) == m
    # and the decoded action survives the action log's own round trip
    assert decode_record(encode_record(LogRecord(1, 0.0, act))).action == act


@pytest.mark.parametrize(
    ("channel", "event_type", "version", "reason"),
    [
        ("anomalies", "anomaly.upserted", 2, "version 2 (newer than this client)"),
        ("anomalies", "anomaly.upserted", 0, "version 0 is not supported"),
        ("anomalies", "anomaly.deleted", 1, "unknown event type 'anomaly.deleted'"),
        ("health", "anomaly.upserted", 1, "not expected on channel 'health'"),
        ("detectors:d1", "anomaly.upserted", 1, "not expected on channel"),
    ],
)
def test_unknown_events(channel: str, event_type: str, version: int, reason: str) -> None:
    data = {"anything": 1}
    act = TABLE.decode(meta(channel, event_type, version=version), data)
    assert isinstance(act, UnknownEvent)
    assert reason in act.reason
    assert act.data is data


GOOD_ANOMALY = {
    "id": "a1",
    "detector_id": "d1",
    "metric": "cpu",
    "severity": "high",
    "score": 3.5,
    "value": 97,
    "started_at": 100.0,
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"severity": "huge"}, "'huge' is not a valid Severity @ data.severity"),
        ({"score": "3.5"}, "expected a number, got str '3.5' @ data.score"),
        ({"value": True}, "expected a number, got bool True @ data.value"),
        ({"id": 5}, "expected a string, got int 5 @ data.id"),
        ({"version": 1.5}, "expected an integer, got float 1.5 @ data.version"),
        ({"state": None}, "data.state"),
        ({"metric": None}, "data.metric"),
    ],
)
def test_malformed_payload_names_field_and_reason(change: dict[str, Any], reason: str) -> None:
    data = {**GOOD_ANOMALY, **change}
    act = TABLE.decode(meta("anomalies", "anomaly.upserted"), data)
    assert isinstance(act, MalformedEvent)
    assert reason in act.reason


def test_missing_fields_and_non_object_payloads() -> None:
    act = TABLE.decode(meta("anomalies", "anomaly.upserted"), {"id": "a1"})
    assert isinstance(act, MalformedEvent)
    assert "required field missing @ data.detector_id" in act.reason
    for payload in ([1], "x", None, 3):
        act = TABLE.decode(meta("health", "health.updated"), payload)
        assert isinstance(act, MalformedEvent)
        assert act.reason.startswith("expected a JSON object")


def test_extra_payload_keys_are_ignored_within_a_version() -> None:
    act = TABLE.decode(meta("anomalies", "anomaly.upserted"), {**GOOD_ANOMALY, "new_field": 1})
    assert isinstance(act, AnomalyUpserted)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
any_payload = json_values | st.fixed_dictionaries(
    {k: json_values for k in GOOD_ANOMALY}, optional={"state": json_values}
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["detectors", "detectors:x", "anomalies", "health", "other"]),
    st.sampled_from(["detector.upserted", "anomaly.upserted", "health.updated", "zzz"]),
    st.integers(-1, 3),
    any_payload,
)
def test_garbage_never_raises(channel: str, event_type: str, version: int, data: Any) -> None:
    act = TABLE.decode(meta(channel, event_type, version=version), data)
    assert isinstance(
        act, UnknownEvent | MalformedEvent | DetectorUpserted | AnomalyUpserted | HealthUpdated
    )


def test_converter_is_dedicated() -> None:
    assert TABLE.converter is not cattrs.global_converter
    assert aiops_converter() is not aiops_converter()
    with pytest.raises(cattrs.BaseValidationError):
        aiops_converter().structure({"status": "ok"}, SystemHealth)


# -- the table in a live-like store -----------------------------------------------------------


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


def live_store(clock: Clock) -> Any:
    reducer = optimistic(dedupe_stats(root_reducer), ttl=15.0)
    return create_store(
        reducer,
        middleware=[dedupe(), map_events(TABLE), expire_transactions(now=clock)],
    )


def anomaly_event(offset: int, *, version: int, command_id: str | None = None, **kw: Any) -> Any:
    data = {**GOOD_ANOMALY, "version": version, **kw}
    m = meta(
        "anomalies",
        "anomaly.upserted",
        offset=offset,
        event_id=f"e{offset}",
        command_id=command_id,
        epoch="E",
    )
    return ServerEvent(m, data)


def test_live_store_dedupes_counts_and_keeps_newer_versions() -> None:
    store = live_store(Clock())
    store.dispatch(anomaly_event(1, version=2))
    store.dispatch(anomaly_event(1, version=2))  # re-delivered
    store.dispatch(anomaly_event(2, version=1, score=0.5))  # an older copy arriving late
    store.dispatch(ServerEvent(meta("anomalies", "anomaly.upserted", version=9), {}))
    store.dispatch(ServerEvent(meta("anomalies", "anomaly.upserted"), {"id": 1}))
    state: AppState = store.state
    assert state.anomalies["a1"].version == 2
    assert state.anomalies["a1"].score == 3.5
    assert (state.dedupe.duplicates, state.dedupe.unknown, state.dedupe.malformed) == (1, 1, 1)


def test_live_store_acknowledge_reverted_on_rejection() -> None:
    store = live_store(Clock())
    store.dispatch(anomaly_event(1, version=1))
    ack = AcknowledgeAnomaly("a1", command_id="c1", by="ops")
    store.dispatch(Optimistic(ack, ack.command_id))
    assert store.state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED
    store.dispatch(anomaly_event(2, version=2, score=9.0))  # lands underneath
    assert store.state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED
    store.dispatch(TransactionReverted("c1", "409: already resolved"))
    assert store.state.anomalies["a1"].state is AnomalyState.OPEN
    assert store.state.anomalies["a1"].score == 9.0
    assert store.state.optimistic.revert_reason("c1") == "409: already resolved"


def test_live_store_echo_confirms_acknowledge() -> None:
    store = live_store(Clock())
    store.dispatch(anomaly_event(1, version=1))
    ack = AcknowledgeAnomaly("a1", command_id="c1", by="ops")
    store.dispatch(Optimistic(ack, ack.command_id))
    store.dispatch(
        anomaly_event(2, version=2, command_id="c1", state="acknowledged", acknowledged_by="ops")
    )
    journal = store.state.optimistic
    assert not journal.is_pending("c1")
    assert journal.commits == 1
    assert store.state.anomalies["a1"].version == 2
