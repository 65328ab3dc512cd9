"""Our RPC method names and their request/reply data shapes (contracts.md).

Request ``data``: ``{"command_id": str, "anomaly_id": str}`` for the anomaly methods,
``{"command_id": str, "detector_id": str}`` for the detector methods. Success reply ``data``:
``{"command_id": str, "entity": {...}}``. Rejections are error replies with the codes in
``wire.codes.ErrorCode`` (400, 403, 404, 409, 429). A ``command_id`` is applied at most once.
"""

from __future__ import annotations

from typing import Any

ANOMALY_ACKNOWLEDGE = "anomaly.acknowledge"
ANOMALY_RESOLVE = "anomaly.resolve"
DETECTOR_PAUSE = "detector.pause"
DETECTOR_RESUME = "detector.resume"

#: method -> the key naming the target entity in the request data.
METHOD_TARGET_KEY: dict[str, str] = {
    ANOMALY_ACKNOWLEDGE: "anomaly_id",
    ANOMALY_RESOLVE: "anomaly_id",
    DETECTOR_PAUSE: "detector_id",
    DETECTOR_RESUME: "detector_id",
}
RPC_METHODS = frozenset(METHOD_TARGET_KEY)


def rpc_request_data(method: str, command_id: str, target_id: str) -> dict[str, Any]:
    """Build the ``data`` of an RPC request; raises ``KeyError`` for an unknown method."""
    return {"command_id": command_id, METHOD_TARGET_KEY[method]: target_id}
