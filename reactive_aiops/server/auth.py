"""Connection tokens: HS256 JWTs verified with PyJWT, claims turned into a typed record.

Claims: ``sub`` (user id, required string), ``exp`` (Unix seconds, required), optional ``channels``
(list of allowed channel names; an entry ending in ``*`` allows every channel with that prefix;
absent means every channel) and optional ``roles`` (list of strings; ``operator`` may run commands).
Only HS256 is accepted, so ``alg=none`` and algorithm confusion fail like a forged signature.
Expiry is checked against the injected clock, not the wall clock, so tests control it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    """Root of token failures; ``str(exc)`` is safe to send (never contains the token)."""


class InvalidToken(TokenError):
    """Malformed, forged, wrong algorithm or missing claims: terminal for the client."""


class TokenExpired(TokenError):
    """Signature fine but ``exp`` has passed: the client should fetch a new token."""


@attrs.frozen
class Claims:
    """What a verified token grants."""

    sub: str
    exp: float
    channels: tuple[str, ...] | None = None
    roles: frozenset[str] = frozenset()

    def allows_channel(self, channel: str) -> bool:
        """True if the ``channels`` claim is absent or names ``channel`` (exactly or by prefix*)."""
        if self.channels is None:
            return True
        for entry in self.channels:
            if entry.endswith("*"):
                if channel.startswith(entry[:-1]):
                    return True
            elif entry == channel:
                return True
        return False

    def has_role(self, role: str) -> bool:
        """True if the token's ``roles`` claim contains ``role``."""
        return role in self.roles


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToken(f"claim {name!r} must be a list of strings")
    return tuple(value)


def verify_token(token: object, secret: str, now: float) -> Claims:
    """Verify ``token`` and return its claims; raise ``InvalidToken`` or ``TokenExpired``."""
    if not isinstance(token, str) or not token:
        raise InvalidToken("token required")
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                     "require": ["sub", "exp"]},
        )
    except jwt.PyJWTError:
        # The library's message may quote header fields; never echo anything from the token.
        raise InvalidToken("invalid token") from None
    sub, exp = payload.get("sub"), payload.get("exp")
    if not isinstance(sub, str):
        raise InvalidToken("claim 'sub' must be a string")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidToken("claim 'exp' must be a number")
    channels = payload.get("channels")
    roles = payload.get("roles", [])
    claims = Claims(
        sub=sub,
        exp=float(exp),
        channels=None if channels is None else _string_list(channels, "channels"),
        roles=frozenset(_string_list(roles, "roles")),
    )
    if claims.exp <= now:
        raise TokenExpired("token expired")
    return claims


def mint_token(
    secret: str,
    sub: str,
    *,
    exp: float,
    channels: Iterable[str] | None = None,
    roles: Iterable[str] = (),
) -> str:
    """Sign a connection token (for tests, the demo and operators' tooling)."""
    payload: dict[str, Any] = {"sub": sub, "exp": int(exp)}
    if channels is not None:
        payload["channels"] = list(channels)
    roles = list(roles)
    if roles:
        payload["roles"] = roles
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
