"""Disconnect / unsubscribe / error code classification (protocol v2 tables)."""

from __future__ import annotations

import pytest

from reactive_aiops.wire import (
    ERROR_MESSAGES,
    DisconnectCode,
    ErrorCode,
    is_reconnectable,
    is_resubscribable,
    is_retryable_error,
)


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (1000, True),
        (1001, True),
        (1006, True),
        (1009, False),
        (1011, True),
        (3000, True),
        (3001, True),
        (3004, True),
        (3005, True),
        (3010, True),
        (3012, True),
        (3013, True),
        (3014, True),
        (3499, True),
        (3500, False),
        (3501, False),
        (3502, False),
        (3503, False),
        (3507, False),
        (3999, False),
        (4000, True),
        (4499, True),
        (4500, False),
        (4999, False),
        (5000, True),
    ],
)
def test_disconnect_ranges(code: int, reconnect: bool) -> None:
    assert is_reconnectable(code) is reconnect


def test_v2_numbering_not_v1() -> None:
    v2 = {c.name: int(c) for c in DisconnectCode}
    assert (v2["INSUFFICIENT_STATE"], v2["NO_PONG"], v2["INVALID_TOKEN"]) == (3010, 3012, 3500)
    assert all(is_reconnectable(c) == (c < 3500 and c != 1009) for c in DisconnectCode)


def test_unsubscribe_codes() -> None:
    assert not is_resubscribable(2000)
    assert is_resubscribable(2500)
    assert is_resubscribable(2502)


@pytest.mark.parametrize(
    ("code", "temporary", "retry"),
    [
        (100, True, True),
        (111, True, True),
        (109, False, True),
        (101, False, False),
        (103, False, False),
        (107, False, False),
        (403, False, False),
        (3, False, True),
        (500, True, True),
    ],
)
def test_error_retry(code: int, temporary: bool, retry: bool) -> None:
    assert is_retryable_error(code, temporary) is retry


def test_every_error_code_has_a_message() -> None:
    assert {int(c) for c in ErrorCode} == set(ERROR_MESSAGES)
