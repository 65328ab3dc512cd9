"""The memory engine and the Redis engine (a real redis-server) agree: the same sequence of
publishes (with and without idempotency keys) and operator commands gives the same offsets,
duplicate answers, command outcomes, histories and snapshot. Hypothesis draws the sequences."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_helpers import RedisServer, node_config

from reactive_aiops.server.auth import Claims
from reactive_aiops.server.commands import Confirm, Reject, parse_command
from reactive_aiops.server.core import ServerCore
from reactive_aiops.server.engine import Engine
from reactive_aiops.server.redis_engine import RedisEngine

NOW = 1_000.0
OPERATOR = Claims(sub="olga", exp=1e12, roles=frozenset({"operator"}))
CHANNELS = ("anomalies", "detectors", "detectors:d1", "health")


def _anomaly(aid: str, version: int, state: str, sparse: bool) -> dict[str, Any]:
    if sparse:  # optional fields left out and integral numbers as ints: stored filled in
        return {"id": aid, "detector_id": "d1", "metric": "cpu", "severity": "high", "score": 9,
                "value": 97, "started_at": 1, "state": state, "version": version}
    return {"id": aid, "detector_id": "d1", "metric": "cpu", "severity": "high", "score": 9.5,
            "value": 97.0, "started_at": 1.0, "state": state, "version": version,
            "updated_at": 1.0, "resolved_at": 2.0 if state == "resolved" else None,
            "acknowledged_by": None}


publishes = st.one_of(
    st.builds(lambda aid, v, state, sparse: (
        "anomalies", "anomaly.upserted", _anomaly(aid, v, state, sparse)),
        st.sampled_from(["a1", "a2"]), st.integers(1, 4),
        st.sampled_from(["open", "acknowledged", "resolved"]), st.booleans()),
    st.builds(lambda did, channel, v, status: (
        channel if did == "d1" else "detectors", "detector.upserted",
        {"id": did, "name": did, "metric": "cpu", "status": status, "updated_at": 1.0,
         "version": v}),
        st.sampled_from(["d1", "d2"]), st.sampled_from(["detectors", "detectors:d1"]),
        st.integers(1, 4), st.sampled_from(["active", "paused"])),
    st.just(("health", "health.updated", {"status": "ok", "events_per_second": 1.0,
                                          "open_anomalies": 0, "detectors_active": 1,
                                          "detectors_error": 0, "updated_at": 1.0})),
)
operations = st.lists(st.one_of(
    st.tuples(st.just("publish"), publishes, st.sampled_from([None, "k1", "k2"])),
    st.tuples(st.just("command"),
              st.sampled_from(["anomaly.acknowledge", "anomaly.resolve", "detector.pause",
                               "detector.resume"]),
              st.sampled_from(["a1", "a2", "d1", "d2", "zz"]),
              st.sampled_from(["c1", "c2", "c3", "c4"])),
), max_size=25)


async def _history(engine: Engine, channel: str) -> list[tuple[int, dict[str, Any]]]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    engine.history(channel, lambda outcome: future.done() or future.set_result(outcome))
    _epoch, top, pubs = await future
    # event ids and send times differ by engine and node; the rest must not
    return [(top, {})] + [(p.offset, {k: v for k, v in p.data.items() if k not in ("id", "ts")})
                          for p in pubs]


async def _run(core: ServerCore, ops: list[Any]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if op[0] == "publish":
            (channel, event_type, data), key = op[1], op[2]
            event = {"type": event_type, "v": 1, "id": "e", "ts": 0.0, "data": data}
            result = await core.apublish(channel, event, idempotency_key=key)
            out.append(("publish", result.offset, result.duplicate))
        else:
            _, method, target, command_id = op
            key = "anomaly_id" if method.startswith("anomaly") else "detector_id"
            parsed = parse_command(method, {"command_id": command_id, key: target}, OPERATOR,
                                   "operator")
            assert not isinstance(parsed, Reject)
            outcome = await core.engine.command(parsed, lambda: "ev")
            if isinstance(outcome, Confirm):
                out.append(("ok", outcome.data))
            else:
                out.append(("rejected", int(outcome.code), outcome.message))
    snapshot = await core.engine.snapshot(lambda _channel: True)
    out.append(("detectors", sorted(snapshot["detectors"], key=lambda d: d["id"])))
    out.append(("anomalies", sorted(snapshot["anomalies"], key=lambda a: a["id"])))
    out.append(("health", snapshot["health"]))
    out.append(("positions", {c: p["offset"] for c, p in snapshot["positions"].items()}))
    for channel in CHANNELS:
        out.append((channel, await _history(core.engine, channel)))
    return out


async def _both(url: str, ops: list[Any]) -> tuple[list[Any], list[Any]]:
    config = node_config(url)
    memory = await _run(ServerCore(config, clock=lambda: NOW), ops)
    engine = RedisEngine(url, config, clock=lambda: NOW)
    try:
        await engine.redis.flushall()
        await engine.start()
        redis = await _run(ServerCore(config, clock=lambda: NOW, engine=engine), ops)
    finally:
        await engine.close()
    return memory, redis


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_memory_and_redis_engines_agree(redis_server: RedisServer, ops: list[Any]) -> None:
    memory, redis = asyncio.run(_both(redis_server.url, ops))
    for step, (m, r) in enumerate(zip(memory, redis, strict=True)):
        assert m == r, (step, ops)
