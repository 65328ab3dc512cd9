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
from reactive_aiops.server.state import AiopsState
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


class CommandService:
    """Applies commands to ``state``; ``operator_role`` is the role a token needs."""

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
        if not claims.has_role(self.operator_role):
            return Reject(FORBIDDEN, f"commands need the {self.operator_role!r} role")
        fingerprint = (method, target)
        remembered = self._done.get(command_id)
        if remembered is not None:
            if remembered[0] != fingerprint:
                return Reject(CONFLICT, "command_id already used for a different command")
            return remembered[1]
        outcome = self._apply(method, target, command_id, claims)
        self._done[command_id] = (fingerprint, outcome)
        while len(self._done) > self._memory:
            self._done.popitem(last=False)
        return outcome

    def _apply(self, method: str, target: str, command_id: str, claims: Claims) -> Outcome:
        now = self.state.clock()
        if method.startswith("anomaly."):
            anomaly = self.state.anomalies.get(target)
            if anomaly is None:
                return Reject(NOT_FOUND, "anomaly not found")
            if anomaly.state == "resolved":
                return Reject(CONFLICT, "anomaly already resolved")
            if method == "anomaly.acknowledge":
                if anomaly.state == "acknowledged":
                    return Reject(CONFLICT, "anomaly already acknowledged")
                anomaly = attrs.evolve(anomaly, state="acknowledged", updated_at=now,
                                       acknowledged_by=claims.sub)
            else:
                anomaly = attrs.evolve(anomaly, state="resolved", updated_at=now, resolved_at=now)
            stored = self.state.upsert_anomaly(anomaly, command_id=command_id)
            return Confirm({"command_id": command_id, "entity": stored.payload()})
        detector = self.state.detectors.get(target)
        if detector is None:
            return Reject(NOT_FOUND, "detector not found")
        if method == "detector.pause":
            if detector.status == "paused":
                return Reject(CONFLICT, "detector already paused")
            detector = attrs.evolve(detector, status="paused", updated_at=now)
        else:
            if detector.status != "paused":
                return Reject(CONFLICT, "detector is not paused")
            detector = attrs.evolve(detector, status="active", updated_at=now)
        stored_detector = self.state.upsert_detector(detector, command_id=command_id)
        return Confirm({"command_id": command_id, "entity": stored_detector.payload()})
