"""The server's core: validation, commands and the publish API in front of an engine.

``ServerCore`` is the ``Hub`` every ``ServerConnection`` talks to, and what ``publish`` (Python)
and ``POST /api/publish`` (HTTP) go through. Keeping it free of asyncio lets tests drive a whole
server with strings and a manual clock.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

from reactive_aiops.protocol.server import (
    AuthFailure,
    ConnectionLimits,
    HistoryOutcome,
    Principal,
    SubscribeOutcome,
)
from reactive_aiops.server.auth import Claims, TokenError, TokenExpired, verify_token
from reactive_aiops.server.broker import Broker, Clock, Publication
from reactive_aiops.server.commands import (
    CommandService,
    Confirm,
    Outcome,
    ParsedCommand,
    Reject,
    parse_command,
)
from reactive_aiops.server.config import ServerConfig
from reactive_aiops.server.engine import (
    Engine,
    EngineUnavailable,
    PublishResult,
    Record,
    unavailable,
)
from reactive_aiops.server.memory import MemoryEngine
from reactive_aiops.server.state import AiopsState
from reactive_aiops.wire.codes import ERROR_MESSAGES, TEMPORARY_ERRORS
from reactive_aiops.wire.events import (
    ANOMALY_UPSERTED,
    CHANNEL_ANOMALIES,
    CHANNEL_DETECTORS,
    CHANNEL_HEALTH,
    DETECTOR_UPSERTED,
    ENVELOPE_VERSION,
    HEALTH_UPDATED,
    EventEnvelope,
    EventError,
    decode_event,
    detector_channel,
    encode_event,
)
from reactive_aiops.wire.integers import MAX_SAFE_INTEGER, find_unsafe_integer
from reactive_aiops.wire.messages import Error, RPCResult

_DETECTOR_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_STATIC_CHANNELS = frozenset({CHANNEL_DETECTORS, CHANNEL_ANOMALIES, CHANNEL_HEALTH})

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_STR = (str, type(None))
#: Required payload fields and their JSON types, per event type.
_PAYLOAD_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    DETECTOR_UPSERTED: {"id": (str,), "name": (str,), "metric": (str,), "status": (str,),
                        "updated_at": _NUM, "version": (int,)},
    ANOMALY_UPSERTED: {"id": (str,), "detector_id": (str,), "metric": (str,), "severity": (str,),
                       "score": _NUM, "value": _NUM, "started_at": _NUM, "state": (str,),
                       "version": (int,), "updated_at": _NUM, "resolved_at": _OPT_NUM,
                       "acknowledged_by": _OPT_STR},
    HEALTH_UPDATED: {"status": (str,), "events_per_second": _NUM, "open_anomalies": (int,),
                     "detectors_active": (int,), "detectors_error": (int,), "updated_at": _NUM},
}
_ENUMS: dict[str, dict[str, frozenset[str]]] = {
    DETECTOR_UPSERTED: {"status": frozenset({"active", "paused", "training", "error"})},
    ANOMALY_UPSERTED: {"severity": frozenset({"low", "medium", "high", "critical"}),
                       "state": frozenset({"open", "acknowledged", "resolved"})},
    HEALTH_UPDATED: {"status": frozenset({"ok", "degraded", "critical"})},
}


class PublishError(ValueError):
    """A publish request was refused; ``code`` is the application error code (400/404)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def limits_from(config: ServerConfig) -> ConnectionLimits:
    """The per-connection policy implied by ``config``."""
    return ConnectionLimits(
        max_message_size=config.max_message_size,
        max_nesting_depth=config.max_nesting_depth,
        max_channels=config.max_channels_per_connection,
        rate_per_second=config.rate_limit_per_second,
        rate_burst=config.rate_limit_burst,
        send_queue_size=config.send_queue_size,
        auth_timeout=config.auth_timeout,
        ping_interval=config.ping_interval,
        pong_timeout=config.pong_timeout,
        max_recovery_size=config.max_recovery_size,
    )


#: Contract fields that may be absent (a default applies), besides the nullable ones.
_DEFAULTED = frozenset({"version", "state", "updated_at"})
_MISSING: Any = object()


def _field_checks(
    event_type: str,
) -> tuple[tuple[str, tuple[type, ...], bool, frozenset[str] | None], ...]:
    """(name, JSON types, may be absent, allowed values) per field: the table below, joined
    once so the per-publish check is one loop."""
    enums = _ENUMS[event_type]
    return tuple(
        (name, kinds, type(None) in kinds or name in _DEFAULTED, enums.get(name))
        for name, kinds in _PAYLOAD_FIELDS[event_type].items()
    )


_CHECKS = {event_type: _field_checks(event_type) for event_type in _PAYLOAD_FIELDS}


def _check_payload(event_type: str, data: dict[str, Any]) -> None:
    try:
        unsafe = find_unsafe_integer(data)
    except ValueError:
        raise PublishError(400, "payload nested too deep") from None
    if unsafe is not None:
        raise PublishError(400, f"payload integers must be within ±{MAX_SAFE_INTEGER}")
    for name, kinds, optional, allowed in _CHECKS[event_type]:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            if optional:
                continue
            raise PublishError(400, f"payload field {name!r} is required")
        kind = type(value)
        if kind is bool or not isinstance(value, kinds):
            raise PublishError(400, f"payload field {name!r} has the wrong type")
        if kind is float and not math.isfinite(cast(float, value)):
            # JSON has no NaN or infinity: the wire would carry null, not this number
            raise PublishError(400, f"payload field {name!r} must be a finite number")
        if allowed is not None and value not in allowed:
            raise PublishError(400, f"payload field {name!r} must be one of {sorted(allowed)}")


SNAPSHOT_METHOD = "aiops.snapshot"


def _outcome_reply(outcome: Outcome) -> RPCResult | Error:
    if isinstance(outcome, Confirm):
        return RPCResult(data=outcome.data)
    return Error(int(outcome.code), outcome.message, outcome.code in TEMPORARY_ERRORS)


class ServerCore:
    """Engine + commands + token verification; implements ``protocol.server.Hub``.

    The engine (``MemoryEngine`` by default, or ``RedisEngine``) holds channels and state; this
    class validates and routes. With the memory engine everything completes synchronously, so
    ``publish`` (sync) works; any engine supports ``await apublish(...)``.
    """

    def __init__(self, config: ServerConfig, *, clock: Clock = time.time,
                 broker: Broker | None = None, state: AiopsState | None = None,
                 engine: Engine | None = None) -> None:
        self.config = config
        self.clock = clock
        self.engine: Engine = engine or MemoryEngine(config, clock=clock, broker=broker,
                                                     state=state)
        self.limits = limits_from(config)
        prefix = secrets.token_hex(3)
        counter = itertools.count(1)
        self._event_ids = lambda: f"ev-{prefix}-{next(counter)}"

    def _memory(self) -> MemoryEngine:
        if not isinstance(self.engine, MemoryEngine):
            raise RuntimeError(f"the {self.engine.name} engine has no in-process broker or "
                               "state; use the async API")
        return self.engine

    @property
    def broker(self) -> Broker:
        """The in-process broker (memory engine only)."""
        return self._memory().broker

    @property
    def state(self) -> AiopsState:
        """The in-process AIOps state (memory engine only)."""
        return self._memory().aiops

    @property
    def commands(self) -> CommandService:
        """The in-process command service (memory engine only)."""
        return self._memory().commands

    # -- Hub ---------------------------------------------------------------------------------

    def authenticate(self, token: str, now: float) -> Principal | AuthFailure:
        """Verify a connection token (HS256, ``exp`` checked against ``now``)."""
        try:
            return verify_token(token, self.config.token_secret, now)
        except TokenExpired:
            return AuthFailure.EXPIRED
        except TokenError:
            return AuthFailure.INVALID

    def channel_exists(self, channel: str) -> bool:
        """``detectors``, ``anomalies``, ``health`` and ``detectors:<id>`` exist."""
        if channel in _STATIC_CHANNELS:
            return True
        prefix, _, detector_id = channel.partition(":")
        return prefix == CHANNEL_DETECTORS and bool(_DETECTOR_ID.match(detector_id))

    def subscribe(self, channel: str, subscriber: Any, recover: bool, offset: int, epoch: str,
                  done: Callable[[SubscribeOutcome | Error], None]) -> None:
        """Register with the engine, then report the position (and what was missed)."""
        self.engine.subscribe(channel, subscriber, recover, offset, epoch, done)

    def unsubscribe(self, channel: str, subscriber: Any) -> None:
        """Stop delivering ``channel`` to ``subscriber``."""
        self.engine.unsubscribe(channel, subscriber)

    def history(self, channel: str, done: Callable[[HistoryOutcome | Error], None]) -> None:
        """Report ``(epoch, top, retained publications)`` of ``channel``."""
        self.engine.history(channel, done)

    def rpc(self, method: str, data: Any, principal: Principal,
            done: Callable[[RPCResult | Error], None]) -> None:
        """Run a command (or the snapshot read); a rejection becomes an error reply."""
        if not isinstance(principal, Claims):
            done(Error(100, ERROR_MESSAGES[100], True))
            return
        if method == SNAPSHOT_METHOD:
            self.engine.submit(self._snapshot(principal), done)
            return
        parsed = parse_command(method, data, principal, self.config.operator_role)
        if isinstance(parsed, Reject):
            done(_outcome_reply(parsed))
            return
        self.engine.submit(self._command(parsed), done)

    async def _snapshot(self, principal: Claims) -> RPCResult | Error:
        try:
            return RPCResult(data=await self.engine.snapshot(principal.allows_channel))
        except EngineUnavailable:
            return unavailable()

    async def _command(self, command: ParsedCommand) -> RPCResult | Error:
        try:
            return _outcome_reply(await self.engine.command(command, self._event_ids))
        except EngineUnavailable:
            return unavailable("engine unavailable, retry")

    # -- publish API -------------------------------------------------------------------------

    def validate(self, channel: str, event: EventEnvelope | object) -> tuple[
            dict[str, Any], Record | None]:
        """Check an event envelope for ``channel``: the publication data (``ts`` set to now)
        and the entity it records, if any (its checked payload: the engine stores the full
        record, defaults filled in). Raises ``PublishError`` (code 400/404)."""
        if not isinstance(channel, str) or not self.channel_exists(channel):
            raise PublishError(404, "unknown channel")
        try:
            envelope = event if isinstance(event, EventEnvelope) else decode_event(
                event, known_types_only=True)
        except EventError as exc:
            raise PublishError(400, exc.reason) from None
        if envelope.type not in _PAYLOAD_FIELDS:
            raise PublishError(400, f"unknown event type {envelope.type!r}")
        if envelope.v != ENVELOPE_VERSION:
            raise PublishError(400, f"unsupported envelope version {envelope.v}")
        _check_payload(envelope.type, envelope.data)
        expected = {DETECTOR_UPSERTED: CHANNEL_DETECTORS, ANOMALY_UPSERTED: CHANNEL_ANOMALIES,
                    HEALTH_UPDATED: CHANNEL_HEALTH}[envelope.type]
        data = envelope.data
        record: Record | None
        if envelope.type == DETECTOR_UPSERTED:
            if channel not in (expected, detector_channel(data["id"])):
                raise PublishError(400, f"{envelope.type} belongs on {expected} or its own channel")
            record = ("detector", data)
        elif channel != expected:
            raise PublishError(400, f"{envelope.type} belongs on {expected}")
        else:
            record = ("anomaly", data) if envelope.type == ANOMALY_UPSERTED else ("health", data)
        return encode_event(envelope, ts=self.clock()), record

    def publish(self, channel: str, event: EventEnvelope | object) -> Publication:
        """Validate an event envelope for ``channel`` and publish it now (memory engine).

        Detectors, anomalies and health are also recorded as the current state, so operators'
        commands and snapshots see what detection services publish. Raises ``PublishError``.
        """
        data, record = self.validate(channel, event)
        pub, _result = self._memory().publish_now(channel, data, record=record)
        assert pub is not None
        return pub

    async def apublish(self, channel: str, event: EventEnvelope | object, *,
                       idempotency_key: str | None = None) -> PublishResult:
        """Validate and publish on any engine; a repeated ``idempotency_key`` (per channel,
        remembered at least 5 minutes, on every node) returns the first result and publishes
        nothing. Raises ``PublishError`` or ``EngineUnavailable``."""
        data, record = self.validate(channel, event)
        return await self.engine.publish(channel, data, record=record,
                                         idempotency_key=idempotency_key)
