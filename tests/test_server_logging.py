"""``serve --log-format json``: one JSON object per log line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

import pytest
from server_helpers import SECRET

from reactive_aiops.server.logging_setup import JsonFormatter, configure


def test_json_formatter_writes_one_object_per_line_with_the_exception() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "x"
    assert entry["message"] == "failed here"
    assert entry["exc_type"] == "RuntimeError"
    assert "boom" in entry["exc"]
    assert entry["ts"].endswith("+00:00")


def test_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        configure("INFO", "xml")
    with pytest.raises(ValueError, match="level"):
        configure("LOUD", "text")


@pytest.mark.asyncio
async def test_serve_logs_json_lines() -> None:
    env = {**os.environ, "REACTIVE_AIOPS_TOKEN_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reactive_aiops", "serve", "--port", "0", "--no-simulation",
        "--log-format", "json", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        await asyncio.wait_for(proc.stdout.readline(), 20)
        entries = []
        while not any(e["logger"] == "reactive_aiops.server" for e in entries):
            # every line, ours and the libraries', is one JSON object
            entries.append(json.loads(await asyncio.wait_for(proc.stderr.readline(), 20)))
        assert entries[-1]["message"].startswith("listening on ws://127.0.0.1:")
        assert entries[-1]["level"] == "INFO"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
