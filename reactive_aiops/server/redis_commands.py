"""Operator commands on the Redis engine: applied once per ``command_id`` across nodes.

Read the entity, ``decide`` (the same pure rule the memory engine applies), then write with a
compare-and-set on the entity's version inside the publish script, which also stores the outcome
under the command id: a retry on any node answers the first outcome and publishes nothing; a
concurrent change of the entity makes the script answer ``conflict`` and the command is decided
again on what is there now.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from reactive_aiops.server.broker import Clock
from reactive_aiops.server.commands import Confirm, Outcome, ParsedCommand, Reject, decide
from reactive_aiops.server.engine import EngineUnavailable, Record
from reactive_aiops.wire.codes import ErrorCode
from reactive_aiops.wire.events import (
    ANOMALY_UPSERTED,
    CHANNEL_ANOMALIES,
    CHANNEL_DETECTORS,
    DETECTOR_UPSERTED,
    EventEnvelope,
    detector_channel,
    encode_event,
)


class CommandStore(Protocol):
    """What a command needs of the Redis engine (``RedisEngine`` implements it)."""

    clock: Clock

    async def remembered(self, command_id: str) -> str | None: ...

    async def read_entity(self, kind: str, entity_id: str
                          ) -> tuple[dict[str, Any] | None, int]: ...

    async def emit(self, channels: list[tuple[str, dict[str, Any], str | None]], *,
                   record: Record | None = None, expected: int | None = None,
                   target: tuple[str, str] | None = None, outcome: str = "",
                   command_id: str = "", fence: str = "") -> list[Any]: ...


#: How often a command is decided again when other writers keep changing its entity.
CAS_ATTEMPTS = 32


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def apply_command(engine: CommandStore, command: ParsedCommand,
                        event_id: Callable[[], str]) -> Outcome:
    """Apply ``command`` at most once per ``command_id`` on the cluster of ``engine``."""
    kind = command.kind
    fingerprint = list(command.fingerprint)
    for _attempt in range(CAS_ATTEMPTS):
        seen = await engine.remembered(command.command_id)
        if seen is not None:
            return remembered_outcome(seen, command)
        current, version = await engine.read_entity(kind, command.target)
        now = engine.clock()
        changed = decide(command, current, now)
        if isinstance(changed, Reject):
            outcome: Outcome = changed
            remembered = _dumps({"f": fingerprint, "code": int(changed.code),
                                 "message": changed.message})
            reply = await engine.emit([], expected=version, target=(kind, command.target),
                                      outcome=remembered, command_id=command.command_id)
        else:
            changed["version"] = version + 1
            outcome = Confirm({"command_id": command.command_id, "entity": changed})
            remembered = _dumps({"f": fingerprint, "ok": outcome.data})
            event_type = ANOMALY_UPSERTED if kind == "anomaly" else DETECTOR_UPSERTED
            names = ([CHANNEL_ANOMALIES] if kind == "anomaly"
                     else [CHANNEL_DETECTORS, detector_channel(command.target)])
            channels: list[tuple[str, dict[str, Any], str | None]] = [
                (name, encode_event(EventEnvelope(
                    type=event_type, id=event_id(), ts=now, data=changed,
                    command_id=command.command_id)), None) for name in names]
            reply = await engine.emit(channels, record=(kind, changed), expected=version,
                                      outcome=remembered, command_id=command.command_id)
        if reply[0] == "conflict":
            continue  # someone changed the entity between our read and write: decide again
        if reply[0] == "cmd":
            return remembered_outcome(reply[1], command)
        return outcome
    raise EngineUnavailable("too much contention on one entity")


def remembered_outcome(raw: str, command: ParsedCommand) -> Outcome:
    """The outcome stored for a command id, or 409 if it was used for another command."""
    stored = json.loads(raw)
    if stored["f"] != list(command.fingerprint):
        return Reject(ErrorCode.APP_CONFLICT, "command_id already used for a different command")
    if "ok" in stored:
        return Confirm(stored["ok"])
    return Reject(stored["code"], stored["message"])
