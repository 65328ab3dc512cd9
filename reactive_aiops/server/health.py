"""``GET /health``: is this process serving its connections, and how is its engine?

A load balancer reads the status code: 200 while the process serves (``status`` is ``ok``, or
``degraded`` when the engine is not ``ok``: a shared engine's outage must not make a balancer drop
every node at once), 503 only while the server is starting or shutting down. The body is a small
JSON object for people and dashboards.
"""

from __future__ import annotations

import enum
from typing import Any


class Phase(enum.Enum):
    """Where the server is in its life."""

    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


def report(phase: Phase, engine: dict[str, Any], connections: int) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` of the health endpoint.

    ``engine`` is ``EventServer.engine_health()``: at least ``{"name": ..., "state": ...}`` where
    ``state`` is ``"ok"`` when the engine works.
    """
    if phase is not Phase.SERVING:
        return 503, {"status": phase.value, "engine": engine, "connections": connections}
    status = "ok" if engine.get("state") == "ok" else "degraded"
    return 200, {"status": status, "engine": engine, "connections": connections}
