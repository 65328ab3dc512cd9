"""Fixtures shared by test modules: a real redis-server for the cluster tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_helpers import RedisServer, running_redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """redis-server on a free port, no persistence (``--save '' --appendonly no``)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    """redis-server with ``appendonly yes``, ``appendfsync always`` in a temporary directory
    that outlives its restarts."""
    with running_redis(tmp_path) as server:
        yield server
