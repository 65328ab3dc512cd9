"""Connection tokens: HS256 only, required claims, expiry against the injected clock."""

from __future__ import annotations

import jwt
import pytest
from server_helpers import SECRET

from reactive_aiops.server.auth import (
    Claims,
    InvalidToken,
    TokenExpired,
    mint_token,
    verify_token,
)

NOW = 1_700_000_000.0


def test_round_trip_with_claims() -> None:
    tok = mint_token(SECRET, "alice", exp=NOW + 60, channels=["health", "detectors:*"],
                     roles=["operator"])
    claims = verify_token(tok, SECRET, NOW)
    assert claims == Claims("alice", NOW + 60, ("health", "detectors:*"),
                            frozenset({"operator"}))
    assert claims.allows_channel("health")
    assert claims.allows_channel("detectors:d1")
    assert not claims.allows_channel("anomalies")
    assert not claims.allows_channel("detectors")
    assert claims.has_role("operator")
    assert Claims("a", 0).allows_channel("anything")


@pytest.mark.parametrize("payload", [
    {"sub": 1, "exp": NOW + 60}, {"sub": "a", "exp": "soon"}, {"sub": "a", "exp": True},
    {"sub": "a", "exp": NOW + 60, "roles": "operator"},
    {"sub": "a", "exp": NOW + 60, "channels": [1]},
])
def test_malformed_claims_are_invalid(payload: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        verify_token(jwt.encode(payload, SECRET, "HS256"), SECRET, NOW)


def test_alg_none_forged_and_non_string_tokens_are_invalid_without_echoing() -> None:
    none = jwt.encode({"sub": "a", "exp": NOW + 60}, None, algorithm="none")
    forged = jwt.encode({"sub": "a", "exp": NOW + 60}, "x" * 40, "HS256")
    for bad in (none, forged, None, 42, ""):
        with pytest.raises(InvalidToken) as info:
            verify_token(bad, SECRET, NOW)
        assert forged not in str(info.value)


def test_expiry_uses_the_given_clock() -> None:
    tok = mint_token(SECRET, "a", exp=NOW + 60)
    verify_token(tok, SECRET, NOW + 59)
    with pytest.raises(TokenExpired):
        verify_token(tok, SECRET, NOW + 60)
