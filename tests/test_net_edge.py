"""The edge decoder answers exactly what the slow path (publication_action + the event table)
gives, or leaves the publication to it."""

from __future__ import annotations

from typing import Any

import cattrs
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive_aiops.aiops.actions import AnomalyUpserted
from reactive_aiops.aiops.event_table import aiops_event_table, aiops_routes
from reactive_aiops.aiops.models import Anomaly
from reactive_aiops.core.events import EventTable, MalformedEvent, ServerEvent, UnknownEvent
from reactive_aiops.net.bridge import publication_action
from reactive_aiops.net.edge import EdgeDecoder
from reactive_aiops.wire import Publication

TABLE = aiops_event_table()


def _slow(channel: str, pub: Publication, epoch: str) -> object:
    act = publication_action(channel, pub, epoch)
    return TABLE.decode(act.meta, act.data) if isinstance(act, ServerEvent) else act


def _anomaly(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "an-1",
        "detector_id": "det-1",
        "metric": "cpu",
        "severity": "high",
        "score": 4.5,
        "value": 97.0,
        "started_at": 1_700_000_000.0,
        "version": 3,
    }
    payload.update(changes)
    return payload


def _envelope(**changes: Any) -> dict[str, Any]:
    env: dict[str, Any] = {"type": "anomaly.upserted", "v": 1, "id": "ev-1", "ts": 5.0}
    env["data"] = _anomaly()
    env.update(changes)
    return env


def test_a_valid_event_becomes_its_domain_action_with_meta() -> None:
    pub = Publication(data=_envelope(command_id="cmd-1"), offset=12)
    act = EdgeDecoder(TABLE)("anomalies", pub, "ep")
    assert isinstance(act, AnomalyUpserted)
    assert act == _slow("anomalies", pub, "ep")
    assert act.meta is not None
    assert (act.meta.offset, act.meta.epoch, act.meta.command_id) == (12, "ep", "cmd-1")


def test_what_the_edge_does_not_decode_goes_to_the_slow_path() -> None:
    edge = EdgeDecoder(TABLE)
    cases: list[tuple[str, Any]] = [
        ("anomalies", _envelope(type="anomaly.deleted")),  # no route: UnknownEvent
        ("anomalies", _envelope(v=2)),  # a newer version: UnknownEvent
        ("health", _envelope()),  # not expected on that channel
        ("anomalies", _envelope(data=_anomaly(severity="dire"))),  # MalformedEvent
        ("anomalies", _envelope(data=_anomaly(score="4.5"))),  # a string for a number
        ("anomalies", _envelope(ts=True)),  # a bool for the send time: bad envelope
        ("anomalies", [1, 2]),  # not an envelope at all
    ]
    for channel, data in cases:
        pub = Publication(data=data, offset=3)
        assert edge(channel, pub, "ep") is None
        assert isinstance(_slow(channel, pub, "ep"), UnknownEvent | MalformedEvent)


def test_a_custom_converter_is_never_bypassed() -> None:
    table = EventTable(aiops_routes(), converter=cattrs.Converter())
    pub = Publication(data=_envelope(), offset=1)
    assert EdgeDecoder(table)("anomalies", pub, "ep") is None


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(-10, 10), st.text(max_size=4)
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        ["id", "severity", "score", "value", "started_at", "state", "version", "resolved_at"]
    ),
    value=_scalars,
    env_field=st.sampled_from(["v", "id", "ts", "command_id", "type", None]),
    env_value=_scalars,
    channel=st.sampled_from(["anomalies", "detectors", "health", "other"]),
)
def test_the_edge_agrees_with_the_slow_path(
    field: str, value: Any, env_field: str | None, env_value: Any, channel: str
) -> None:
    env = _envelope(data=_anomaly(**{field: value}))
    if env_field is not None:
        env[env_field] = env_value
    pub = Publication(data=env, offset=9)
    fast = EdgeDecoder(TABLE)(channel, pub, "ep")
    if fast is not None:
        assert fast == _slow(channel, pub, "ep")
        assert isinstance(fast, AnomalyUpserted)
        assert isinstance(fast.anomaly, Anomaly)


def _jsonl_replay(actions: list[object], path: Any) -> Any:
    """Record ``actions`` (as a live store's outer action log sees them) to a JSON Lines file,
    read it back and replay it as the replay CLI does (dedupe and the event table)."""
    from reactive_aiops.aiops.live_store import create_live_reducer, create_live_store
    from reactive_aiops.core.actionlog import JsonlLog, read_jsonl, record_actions, replay
    from reactive_aiops.core.dedupe import dedupe
    from reactive_aiops.core.events import map_events
    from reactive_aiops.testing.clock import ManualClock

    with JsonlLog(path, truncate=True) as log:
        store = create_live_store(clock=ManualClock(), action_log=record_actions(log))
        for act in actions:
            store.dispatch(act)
    replayed = replay(
        read_jsonl(path), create_live_reducer(), middleware=[dedupe(), map_events(TABLE)]
    )
    assert dict(replayed.anomalies.items()) == dict(store.state.anomalies.items())
    assert replayed.dedupe == store.state.dedupe
    return replayed


def test_logs_of_edge_decoded_and_of_raw_events_replay_to_the_same_state(tmp_path: Any) -> None:
    # Publications as the bridge hands them on now (domain actions) and as it did before
    # (ServerEvent, decoded by the store): a re-delivery, a bad payload and an unknown type
    # included. Both logs replay, and to the same state.
    pubs = [
        ("anomalies", Publication(data=_envelope(id="ev-1"), offset=1)),
        ("anomalies", Publication(data=_envelope(id="ev-2", data=_anomaly(version=4)), offset=2)),
        ("anomalies", Publication(data=_envelope(id="ev-2", data=_anomaly(version=4)), offset=2)),
        ("anomalies", Publication(data=_envelope(id="ev-3", data=_anomaly(score="x")), offset=3)),
        ("anomalies", Publication(data=_envelope(id="ev-4", type="anomaly.gone"), offset=4)),
    ]
    edge = EdgeDecoder(TABLE)
    new = [edge(c, p, "ep") or publication_action(c, p, "ep") for c, p in pubs]
    old = [publication_action(c, p, "ep") for c, p in pubs]
    assert [type(a).__name__ for a in new] == ["AnomalyUpserted"] * 3 + ["ServerEvent"] * 2
    new_state = _jsonl_replay(new, tmp_path / "new.jsonl")
    old_state = _jsonl_replay(old, tmp_path / "old.jsonl")
    assert dict(new_state.anomalies.items()) == dict(old_state.anomalies.items())
    assert new_state.anomalies["an-1"].version == 4
    assert new_state.dedupe == old_state.dedupe
    assert (new_state.dedupe.duplicates, new_state.dedupe.malformed) == (1, 1)
    assert new_state.dedupe.unknown == 1
