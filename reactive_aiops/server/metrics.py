"""Prometheus metrics of one event server, served as ``GET /metrics`` on the WebSocket port.

Every server has its own ``CollectorRegistry`` (never the process-global one), so several servers
in one process (tests, benchmarks) keep separate counts. Labels are bounded and carry no secrets:
channel *namespaces* (``detectors:<id>`` channels count as one ``detectors:*``), disconnect codes,
command methods from the fixed table, HTTP statuses; never a token, key, user or client id.

The counters are fed at the edges only: ``instrument_broker`` wraps the broker's ``publish``
(publications, deliveries, engine latency), ``MeteredHub`` sits between a protocol connection and
the core (recoveries, commands, token failures), and ``EventServer`` counts connections,
disconnects and publish API requests. Gauges (connections, subscriptions) are read at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from reactive_aiops.protocol.server import (
    AuthFailure,
    HistoryOutcome,
    Hub,
    Principal,
    SubscribeOutcome,
    Subscriber,
)
from reactive_aiops.protocol.server import ServerConnection as ProtocolConnection
from reactive_aiops.server.broker import Broker, Publication
from reactive_aiops.server.commands import CommandService
from reactive_aiops.wire.codes import DisconnectCode
from reactive_aiops.wire.events import CHANNEL_ANOMALIES, CHANNEL_DETECTORS, CHANNEL_HEALTH
from reactive_aiops.wire.messages import Error, RPCResult

__all__ = ["CONTENT_TYPE", "NAMESPACES", "MeteredHub", "ServerMetrics", "instrument_broker",
           "namespace"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Every value the ``namespace`` label takes.
NAMESPACES = (CHANNEL_ANOMALIES, CHANNEL_HEALTH, CHANNEL_DETECTORS, "detectors:*", "other")
#: Engine publish latency buckets (seconds): an in-memory publish is microseconds, a Redis
#: round trip about a millisecond, a fan-out to thousands of sockets up to tens of them.
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)


def namespace(channel: str) -> str:
    """The bounded label value for ``channel``."""
    if channel in (CHANNEL_ANOMALIES, CHANNEL_HEALTH, CHANNEL_DETECTORS):
        return channel
    if channel.startswith(CHANNEL_DETECTORS + ":"):
        return "detectors:*"
    return "other"


def disconnect_reason(code: int) -> str:
    """``slow``, ``no_pong``, ``expired``, ``invalid_token``... for a known code, else ``other``."""
    try:
        return DisconnectCode(code).name.lower()
    except ValueError:
        return "other"


class _LiveCollector(Collector):
    """Gauges computed when scraped: nothing to keep in step on the hot path."""

    def __init__(self, connections: Callable[[], Sequence[ProtocolConnection]]) -> None:
        self._connections = connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        conns = self._connections()
        yield GaugeMetricFamily("reactive_aiops_connections", "Open client connections.",
                                value=len(conns))
        counts = dict.fromkeys(NAMESPACES, 0)
        for conn in conns:
            for channel in conn.positions:
                counts[namespace(channel)] += 1
        subs = GaugeMetricFamily("reactive_aiops_subscriptions",
                                 "Channel subscriptions of open connections.",
                                 labels=["namespace"])
        for ns, count in counts.items():
            subs.add_metric([ns], count)
        yield subs


class ServerMetrics:
    """The metric families of one server, in a registry of its own."""

    def __init__(self, connections: Callable[[], Sequence[ProtocolConnection]]) -> None:
        self.registry = registry = CollectorRegistry()
        self.connections_accepted = Counter(
            "reactive_aiops_connections_accepted", "WebSocket connections accepted.",
            registry=registry)
        self.publications = Counter(
            "reactive_aiops_publications", "Publications, by channel namespace.",
            ["namespace"], registry=registry)
        self.deliveries = Counter(
            "reactive_aiops_deliveries",
            "Publications handed to subscribed connections, by channel namespace.",
            ["namespace"], registry=registry)
        self.recoveries = Counter(
            "reactive_aiops_recoveries",
            "Subscribes that asked to recover: recovered, or resync (position lost).",
            ["outcome"], registry=registry)
        self.disconnects = Counter(
            "reactive_aiops_disconnects", "Connections ended, by the server's close code.",
            ["code", "reason"], registry=registry)
        self.token_failures = Counter(
            "reactive_aiops_token_failures", "Connection tokens refused (connect or refresh).",
            ["reason"], registry=registry)
        self.commands = Counter(
            "reactive_aiops_commands", "Operator commands (RPC), by method and outcome.",
            ["method", "outcome"], registry=registry)
        self.publish_api = Counter(
            "reactive_aiops_publish_api_requests", "Publish API requests, by HTTP status.",
            ["status"], registry=registry)
        self.engine_latency = Histogram(
            "reactive_aiops_engine_publish_seconds",
            "Time around the engine's publish (append to history and fan out).",
            buckets=LATENCY_BUCKETS, registry=registry)
        for ns in NAMESPACES:  # every namespace shows from the first scrape, at 0
            self.publications.labels(ns)
            self.deliveries.labels(ns)
        for outcome in ("recovered", "resync"):
            self.recoveries.labels(outcome)
        registry.register(_LiveCollector(connections))
        self._per_namespace: dict[str, tuple[Any, Any]] = {}

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def disconnected(self, code: int) -> None:
        """Count one ended connection with the close code the server chose."""
        self.disconnects.labels(str(int(code)), disconnect_reason(code)).inc()

    def published(self, channel: str, fanout: int, seconds: float) -> None:
        """Count one publication on ``channel`` handed to ``fanout`` subscribers, made by an
        engine call that took ``seconds``."""
        self.fanned_out(channel, fanout)
        self.engine_latency.observe(seconds)

    def fanned_out(self, channel: str, fanout: int) -> None:
        """Count one publication on ``channel`` handed to ``fanout`` local subscribers (on the
        Redis engine: every publication of the cluster this node received)."""
        ns = namespace(channel)
        children = self._per_namespace.get(ns)
        if children is None:
            children = self._per_namespace[ns] = (
                self.publications.labels(ns), self.deliveries.labels(ns))
        children[0].inc()
        if fanout:
            children[1].inc(fanout)


def instrument_broker(broker: Broker, metrics: ServerMetrics) -> None:
    """Count every publication of ``broker`` (whoever publishes: state, API, simulation).

    Wraps the instance's ``publish`` so the broker itself stays metric-free; the fan-out is the
    subscriber count when the publication was made.
    """
    inner = broker.publish
    clock = time.perf_counter

    def publish(channel: str, data: Any) -> Publication:
        fanout = broker.subscriber_count(channel)
        start = clock()
        pub = inner(channel, data)
        metrics.published(channel, fanout, clock() - start)
        return pub

    broker.publish = publish  # type: ignore[method-assign]


class MeteredHub:
    """A ``Hub`` that forwards to the core and counts what the edge cannot see."""

    def __init__(self, core: Hub, metrics: ServerMetrics) -> None:
        self._core = core
        self._metrics = metrics

    def authenticate(self, token: str, now: float) -> Principal | AuthFailure:
        """Verify through the core; count refusals by reason (``expired`` / ``invalid``)."""
        verified = self._core.authenticate(token, now)
        if isinstance(verified, AuthFailure):
            self._metrics.token_failures.labels(verified.value).inc()
        return verified

    def channel_exists(self, channel: str) -> bool:
        """As the core."""
        return self._core.channel_exists(channel)

    def subscribe(self, channel: str, subscriber: Subscriber, recover: bool, offset: int,
                  epoch: str, done: Callable[[SubscribeOutcome | Error], None]) -> None:
        """Subscribe through the core; count recoveries by outcome."""

        def counted(result: SubscribeOutcome | Error) -> None:
            if recover and not isinstance(result, Error):
                self._metrics.recoveries.labels("recovered" if result[2] else "resync").inc()
            done(result)

        self._core.subscribe(channel, subscriber, recover, offset, epoch, counted)

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """As the core."""
        self._core.unsubscribe(channel, subscriber)

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """As the core."""
        self._core.history(channel, done)

    def rpc(self, method: str, data: Any, principal: Principal,
            done: Callable[[RPCResult | Error], None]) -> None:
        """Run the command through the core; count it by method and outcome (``ok`` or the
        error code)."""
        label = method if CommandService.knows(method) else "other"

        def counted(result: RPCResult | Error) -> None:
            outcome = "ok" if isinstance(result, RPCResult) else str(result.code)
            self._metrics.commands.labels(label, outcome).inc()
            done(result)

        self._core.rpc(method, data, principal, counted)

    def __getattr__(self, name: str) -> Any:
        # Hub methods added later (e.g. a snapshot read) pass through uncounted.
        return getattr(self._core, name)

