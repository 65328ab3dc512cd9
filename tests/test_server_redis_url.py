"""``--redis-url`` checking: a bad URL is one line and exit status 2, before any connection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reactive_aiops.server.redis_url import PASSWORD_ENV, check_redis_url


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "redis://localhost", "rediss://cache.internal:6380/3",
    "redis://app@127.0.0.1:6379/0",  # an ACL user name is fine; its password is not
])
def test_good_urls_pass_unchanged(url: str) -> None:
    assert check_redis_url(url) == url


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:6379", "redis://"),
    ("redis://", "no host"),
    ("redis://127.0.0.1:notaport", "bad Redis URL"),
    ("redis://127.0.0.1:70000", "(?i)port"),
    ("redis://127.0.0.1/zero", "database number"),
    ("redis://127.0.0.1/0?x=1", "query"),
    ("redis://user:secret@127.0.0.1/0", PASSWORD_ENV),
    ("redis://user:secret@127.0.0.1:notaport/zero", PASSWORD_ENV),
])
def test_bad_urls_say_why(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        check_redis_url(url)
    assert "secret" not in str(info.value)  # a password given by mistake is never echoed


def test_serve_with_a_bad_redis_url_exits_2_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reactive_aiops", "serve", "--port", "0",
         "--redis-url", "redis://user:hunter2@127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "REACTIVE_AIOPS_TOKEN_SECRET": "s" * 40})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert PASSWORD_ENV in lines[0]
    assert "hunter2" not in proc.stderr
