"""Operator commands as RPC: validate, authorize, apply at most once per command id, publish.

Methods (contract): ``anomaly.acknowledge`` / ``anomaly.resolve`` with data
``{"command_id", "anomaly_id"}``; ``detector.pause`` / ``detector.resume`` with
``{"command_id", "detector_id"}``. A confirm is ``{"command_id", "entity"}``; a reject is an error
code: 400 invalid, 403 not an operator, 404 unknown entity, 409 conflicting state or a command id
reused for a different command; 104 unknown method.

Idempotency: once a command passed validation and authorization its outcome (confirm, 404 or 409)
is remembered by command id; a retry with the same method and arguments returns that outcome and
publishes nothing. The memory is bounded (oldest ids forgotten first).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import attrs

from reactive_aiops.server.auth import Claims
from reactive_aiops.server.state import AiopsState, AnomalyRecord, DetectorRecord
from reactive_aiops.wire.codes import ErrorCode
from reactive_aiops.wire.rpc import METHOD_TARGET_KEY

BAD_REQUEST = ErrorCode.APP_BAD_REQUEST
FORBIDDEN = ErrorCode.APP_FORBIDDEN
NOT_FOUND = ErrorCode.APP_NOT_FOUND
CONFLICT = ErrorCode.APP_CONFLICT
METHOD_NOT_FOUND = ErrorCode.METHOD_NOT_FOUND

_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@attrs.frozen
class Confirm:
    """The command was applied (or had been): reply data for the RPC."""

    data: dict[str, Any]


@attrs.frozen
class Reject:
    """The command was refused with an error ``code`` and a human ``message``."""

    code: int
    message: str


Outcome = Confirm | Reject

_METHODS = METHOD_TARGET_KEY


@attrs.frozen
class ParsedCommand:
    """A command that passed validation and authorization, ready for an engine to apply."""

    method: str
    #: ``"anomaly"`` or ``"detector"``
    kind: str
    target: str
    command_id: str
    #: who sent it (the token's subject)
    sub: str

    @property
    def fingerprint(self) -> tuple[str, str]:
        """What a reused ``command_id`` must match to be a retry and not a different command."""
        return (self.method, self.target)


REUSED = Reject(CONFLICT, "command_id already used for a different command")


def parse_command(method: str, data: object, claims: Claims,
                  operator_role: str) -> ParsedCommand | Reject:
    """Validate and authorize one command; never raises on bad input."""
    target_key = _METHODS.get(method)
    if target_key is None:
        return Reject(METHOD_NOT_FOUND, "method not found")
    if not isinstance(data, dict):
        return Reject(BAD_REQUEST, "data must be an object")
    command_id, target = data.get("command_id"), data.get(target_key)
    if not isinstance(command_id, str) or not _ID_RE.match(command_id):
        return Reject(BAD_REQUEST, "command_id must be a string of 1-128 [A-Za-z0-9_.:-]")
    if not isinstance(target, str) or not _ID_RE.match(target):
        return Reject(BAD_REQUEST, f"{target_key} must be a string of 1-128 [A-Za-z0-9_.:-]")
    if not claims.has_role(operator_role):
        return Reject(FORBIDDEN, f"commands need the {operator_role!r} role")
    return ParsedCommand(method, method.partition(".")[0], target, command_id, claims.sub)


def decide(command: ParsedCommand, current: dict[str, Any] | None,
           now: float) -> dict[str, Any] | Reject:
    """The entity payload ``command`` turns ``current`` into (version not yet bumped), or why
    it is refused. Pure: both engines apply it to what they read, under their own atomicity."""
    method = command.method
    if command.kind == "anomaly":
        if current is None:
            return Reject(NOT_FOUND, "anomaly not found")
        if current["state"] == "resolved":
            return Reject(CONFLICT, "anomaly already resolved")
        if method == "anomaly.acknowledge":
            if current["state"] == "acknowledged":
                return Reject(CONFLICT, "anomaly already acknowledged")
            return {**current, "state": "acknowledged", "updated_at": now,
                    "acknowledged_by": command.sub}
        return {**current, "state": "resolved", "updated_at": now, "resolved_at": now}
    if current is None:
        return Reject(NOT_FOUND, "detector not found")
    if method == "detector.pause":
        if current["status"] == "paused":
            return Reject(CONFLICT, "detector already paused")
        return {**current, "status": "paused", "updated_at": now}
    if current["status"] != "paused":
        return Reject(CONFLICT, "detector is not paused")
    return {**current, "status": "active", "updated_at": now}


class CommandService:
    """Applies commands to an in-process ``state`` (the memory engine's command path)."""

    def __init__(self, state: AiopsState, *, operator_role: str = "operator",
                 memory: int = 10_000) -> None:
        self.state = state
        self.operator_role = operator_role
        self._memory = memory
        self._done: OrderedDict[str, tuple[tuple[str, str], Outcome]] = OrderedDict()

    @staticmethod
    def knows(method: str) -> bool:
        """True if ``method`` is one of the command methods."""
        return method in _METHODS

    def handle(self, method: str, data: object, claims: Claims) -> Outcome:
        """Validate, authorize and apply one command; never raises on bad input."""
        parsed = parse_command(method, data, claims, self.operator_role)
        if isinstance(parsed, Reject):
            return parsed
        return self.apply(parsed)

    def apply(self, command: ParsedCommand) -> Outcome:
        """Apply a parsed command at most once per ``command_id``."""
        remembered = self._done.get(command.command_id)
        if remembered is not None:
            if remembered[0] != command.fingerprint:
                return REUSED
            return remembered[1]
        outcome = self._apply(command)
        self._done[command.command_id] = (command.fingerprint, outcome)
        while len(self._done) > self._memory:
            self._done.popitem(last=False)
        return outcome

    def _apply(self, command: ParsedCommand) -> Outcome:
        now = self.state.clock()
        if command.kind == "anomaly":
            anomaly = self.state.anomalies.get(command.target)
            changed = decide(command, None if anomaly is None else anomaly.payload(), now)
            if isinstance(changed, Reject):
                return changed
            stored: DetectorRecord | AnomalyRecord = self.state.upsert_anomaly(
                AnomalyRecord(**changed), command_id=command.command_id)
        else:
            detector = self.state.detectors.get(command.target)
            changed = decide(command, None if detector is None else detector.payload(), now)
            if isinstance(changed, Reject):
                return changed
            stored = self.state.upsert_detector(DetectorRecord(**changed),
                                                command_id=command.command_id)
        return Confirm({"command_id": command.command_id, "entity": stored.payload()})
