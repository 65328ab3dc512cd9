"""Operability on the WebSocket port: ``GET /health`` and ``GET /metrics`` of a running server,
scraped over real sockets, with counters checked against what the test did."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import API_KEY, RawClient, anomaly_event, config, token
from test_server_app import http_post
from test_server_integers import http_get
from websockets.asyncio.client import connect

from reactive_aiops.server import health
from reactive_aiops.server.app import EventServer, serve_embedded
from reactive_aiops.server.metrics import NAMESPACES, disconnect_reason, namespace


async def scrape(server: EventServer) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]],
                                                      float]]:
    """``GET /metrics``: the text, and every sample by (name, sorted labels)."""
    status, body = await http_get(server.port, "/metrics")
    assert status == 200
    text = body.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.asyncio
async def test_health_reports_ok_engine_and_connections() -> None:
    async with serve_embedded(config()) as server:
        assert server.phase is health.Phase.SERVING
        status, body = await http_get(server.port, "/health")
        assert status == 200
        assert json.loads(body) == {"status": "ok", "engine": {"name": "memory", "state": "ok"},
                                    "connections": 0}
        client = await RawClient.open(server.url)
        await client.connect(token())
        status, body = await http_get(server.port, "/health?verbose=1")
        assert json.loads(body)["connections"] == 1
        await client.close()
    assert server.phase is health.Phase.STOPPED


class EngineDown(EventServer):
    """A server whose (shared) engine is unreachable."""

    def engine_health(self) -> dict[str, Any]:
        return {"name": "redis", "state": "unreachable"}


@pytest.mark.asyncio
async def test_engine_outage_is_degraded_but_still_200() -> None:
    server = EngineDown(config())
    await server.start()
    try:
        status, body = await http_get(server.port, "/health")
        assert status == 200  # a load balancer must not drop every node at once
        assert json.loads(body)["status"] == "degraded"
    finally:
        await server.stop()


@pytest.mark.parametrize("phase", [health.Phase.STARTING, health.Phase.STOPPING,
                                   health.Phase.STOPPED])
def test_health_is_503_unless_serving(phase: health.Phase) -> None:
    status, body = health.report(phase, {"name": "memory", "state": "ok"}, 3)
    assert status == 503
    assert body["status"] == phase.value


def test_namespaces_are_bounded() -> None:
    assert namespace("detectors:det-1") == namespace("detectors:x") == "detectors:*"
    assert [namespace(c) for c in ("anomalies", "health", "detectors", "zzz")] == [
        "anomalies", "health", "detectors", "other"]


@pytest.mark.asyncio
async def test_metrics_move_with_what_clients_and_publishers_did() -> None:
    async with serve_embedded(config(history_size=100)) as server:
        _, before = await scrape(server)
        assert value(before, "reactive_aiops_connections") == 0
        assert value(before, "reactive_aiops_publications_total", namespace="anomalies") == 0

        alice_token = token("alice-user-id")
        alice = await RawClient.open(server.url)
        await alice.connect(alice_token)
        await alice.call("subscribe", {"channel": "anomalies"})
        await alice.call("subscribe", {"channel": "detectors:det-x"})
        for i in range(3):
            server.publish("anomalies", anomaly_event(f"a{i}", event_id=f"e{i}"))
        auth = {"Authorization": f"apikey {API_KEY}"}
        api_event = json.dumps({"channel": "anomalies", "data": anomaly_event("a9")}).encode()
        assert (await http_post(server, api_event, auth))[0] == 200
        assert (await http_post(server, api_event, {"X-API-Key": "wrong"}))[0] == 401
        reply = await alice.call("rpc", {"method": "anomaly.acknowledge",
                                         "data": {"command_id": "c1", "anomaly_id": "a1"}})
        assert "rpc" in reply
        reply = await alice.call("rpc", {"method": "detector.pause",
                                         "data": {"command_id": "c2", "detector_id": "nope"}})
        assert reply["error"]["code"] == 404

        bob = await RawClient.open(server.url)
        await bob.connect(token("bob"))
        epoch = (await bob.call("subscribe", {"channel": "health"}))["subscribe"].get("epoch")
        await bob.call("unsubscribe", {"channel": "health"})
        await bob.call("subscribe", {"channel": "health", "recover": True, "offset": 0,
                                     "epoch": epoch})  # nothing missed: recovered
        await bob.call("subscribe", {"channel": "anomalies", "recover": True, "offset": 1,
                                     "epoch": "another-epoch"})  # position void: resync

        mallory = await RawClient.open(server.url)
        await mallory.send("connect", {"token": "not-a-token"})
        assert await mallory.closed_code() == 3500

        text, after = await scrape(server)
        assert value(after, "reactive_aiops_connections") == 2
        assert value(after, "reactive_aiops_connections_accepted_total") == 3
        assert value(after, "reactive_aiops_subscriptions", namespace="anomalies") == 2
        assert value(after, "reactive_aiops_subscriptions", namespace="detectors:*") == 1
        assert value(after, "reactive_aiops_subscriptions", namespace="health") == 1
        # 3 Python + 1 API publications, and the acknowledgement's own
        assert value(after, "reactive_aiops_publications_total", namespace="anomalies") == 5
        # alice was the one subscriber of anomalies for all five
        assert value(after, "reactive_aiops_deliveries_total", namespace="anomalies") == 5
        assert value(after, "reactive_aiops_recoveries_total", outcome="recovered") == 1
        assert value(after, "reactive_aiops_recoveries_total", outcome="resync") == 1
        assert value(after, "reactive_aiops_disconnects_total", code="3500",
                     reason="invalid_token") == 1
        assert value(after, "reactive_aiops_token_failures_total", reason="invalid") == 1
        assert value(after, "reactive_aiops_commands_total", method="anomaly.acknowledge",
                     outcome="ok") == 1
        assert value(after, "reactive_aiops_commands_total", method="detector.pause",
                     outcome="404") == 1
        assert value(after, "reactive_aiops_publish_api_requests_total", status="200") == 1
        assert value(after, "reactive_aiops_publish_api_requests_total", status="401") == 1
        published = sum(v for (name, _), v in after.items()
                        if name == "reactive_aiops_publications_total")
        assert value(after, "reactive_aiops_engine_publish_seconds_count") == published
        # no token, key or user id in any label or value
        for secret in (alice_token, API_KEY, "alice-user-id", "bob", "not-a-token"):
            assert secret not in text
        await alice.close()
        await bob.close()


@pytest.mark.asyncio
async def test_two_servers_in_one_process_count_apart() -> None:
    async with serve_embedded(config()) as one, serve_embedded(config()) as two:
        one.publish("anomalies", anomaly_event())
        _, first = await scrape(one)
        _, second = await scrape(two)
        assert value(first, "reactive_aiops_publications_total", namespace="anomalies") == 1
        assert value(second, "reactive_aiops_publications_total", namespace="anomalies") == 0


@pytest.mark.asyncio
async def test_health_and_metrics_need_no_origin_even_when_origins_are_required() -> None:
    async with serve_embedded(config(allow_missing_origin=False)) as server:
        assert (await http_get(server.port, "/health"))[0] == 200
        assert (await http_get(server.port, "/metrics"))[0] == 200
        async with connect(server.url, origin="https://ops.example") as ws:  # type: ignore[arg-type]
            assert ws.protocol.state.name == "OPEN"


@given(st.text(max_size=80))
def test_any_channel_name_maps_to_a_bounded_label(channel: str) -> None:
    assert namespace(channel) in NAMESPACES


def test_disconnect_reasons_of_the_codes_operators_watch() -> None:
    assert [disconnect_reason(c) for c in (3008, 3012, 3005, 3500, 3001, 3000, 4999)] == [
        "slow", "no_pong", "expired", "invalid_token", "shutdown", "connection_closed", "other"]


@pytest.mark.asyncio
async def test_expired_token_is_counted_without_closing() -> None:
    async with serve_embedded(config()) as server:
        client = await RawClient.open(server.url)
        reply = await client.connect(token(ttl=-60))
        assert reply["error"]["code"] == 109
        _, samples = await scrape(server)
        assert value(samples, "reactive_aiops_token_failures_total", reason="expired") == 1
        assert value(samples, "reactive_aiops_connections") == 1
        await client.close()
