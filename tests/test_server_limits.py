"""Origin allowlist and the token bucket."""

from __future__ import annotations

import pytest

from reactive_aiops.server.limits import TokenBucket, json_depth_exceeds, origin_allowed


def test_origin_allowlist() -> None:
    allowed = frozenset({"https://ops.example"})
    assert origin_allowed("https://ops.example", allowed, allow_missing=False)
    assert not origin_allowed("https://evil.example", allowed, allow_missing=True)
    assert origin_allowed(None, allowed, allow_missing=True)
    assert not origin_allowed(None, allowed, allow_missing=False)
    assert origin_allowed("https://any", None, allow_missing=False)


def test_token_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(2.0, 3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5)
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0, 1, now=0.0)


def test_depth_scan_skips_strings() -> None:
    assert not json_depth_exceeds('{"a":"[[[[[[[[[["}', 3)
    assert json_depth_exceeds("[[[[", 3)
    assert not json_depth_exceeds('[["\\"[[["]]', 3)
