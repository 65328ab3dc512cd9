"""Who may use the web dashboard: a users file of salted scrypt password hashes (stdlib only).

Format: one user per line, ``#`` starts a comment line, blank lines are ignored::

    # name:scrypt$N$r$p$salt_hex$hash_hex
    ann:scrypt$16384$8$1$1f2e...$9a8b...

The name is ``[A-Za-z0-9_.@-]{1,64}``; the hash is :func:`hashlib.scrypt` of the UTF-8 password
with the given cost parameters and salt, 32 bytes long. ``python -m reactive_aiops.ui.web.auth
NAME`` prints a line for NAME (the password is read without echo, or from standard input when it
is not a terminal). The same lines may come from the environment variable
``REACTIVE_AIOPS_WEB_USERS`` (lines separated by newlines or spaces).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sys
from collections.abc import Mapping

import attrs

__all__ = [
    "USERS_ENV",
    "PasswordHash",
    "UsersFileError",
    "hash_password",
    "load_users",
    "parse_users",
    "verify_password",
]

#: Environment variable that may hold the users lines instead of a file.
USERS_ENV = "REACTIVE_AIOPS_WEB_USERS"

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HEX = re.compile(r"[0-9a-f]+")
_KEY_LENGTH = 32
# scrypt cost: n=2**14, r=8 takes ~16 MiB and tens of ms, the usual interactive-login setting.
DEFAULT_N, DEFAULT_R, DEFAULT_P = 16384, 8, 1
# Upper bounds so a hostile users file cannot make a login allocate gigabytes.
_MAX_N, _MAX_R, _MAX_P = 1 << 20, 32, 16


class UsersFileError(ValueError):
    """A users file (or ``REACTIVE_AIOPS_WEB_USERS``) line is malformed; the message names it."""


@attrs.frozen
class PasswordHash:
    """One stored hash: scrypt parameters, salt and derived key."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        """The ``scrypt$N$r$p$salt_hex$hash_hex`` text of this hash."""
        return f"scrypt${self.n}${self.r}${self.p}${self.salt.hex()}${self.key.hex()}"


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
        maxmem=256 * n * r + (1 << 20), dklen=_KEY_LENGTH,
    )


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> PasswordHash:
    """A fresh salted scrypt hash of ``password``. Raises ``ValueError`` for an empty one."""
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(16)
    return PasswordHash(n, r, p, salt, _derive(password, salt, n, r, p))


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison of the keys)."""
    candidate = _derive(password, stored.salt, stored.n, stored.r, stored.p)
    return hmac.compare_digest(candidate, stored.key)


def _parse_hash(text: str, where: str) -> PasswordHash:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise UsersFileError(f"{where}: expected scrypt$N$r$p$salt_hex$hash_hex")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        raise UsersFileError(f"{where}: N, r and p must be integers") from None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        raise UsersFileError(f"{where}: scrypt parameters out of range (N a power of 2)")
    salt_hex, key_hex = parts[4], parts[5]
    if not (_HEX.fullmatch(salt_hex) and _HEX.fullmatch(key_hex)) or len(key_hex) != 64:
        raise UsersFileError(f"{where}: salt and hash must be lowercase hex, hash 32 bytes")
    return PasswordHash(n, r, p, bytes.fromhex(salt_hex), bytes.fromhex(key_hex))


def parse_users(text: str, *, source: str = "users") -> dict[str, PasswordHash]:
    """Parse users lines (see the module docstring). Raises :class:`UsersFileError` for a bad
    line, a duplicate name, or no user at all."""
    users: dict[str, PasswordHash] = {}
    for number, raw in enumerate(re.split(r"[\r\n]+", text), start=1):
        for entry in raw.split():
            if entry.startswith("#"):
                break
            where = f"{source}:{number}"
            name, sep, rest = entry.partition(":")
            if not sep or not _NAME.fullmatch(name):
                raise UsersFileError(f"{where}: expected NAME:HASH with a plain user name")
            if name in users:
                raise UsersFileError(f"{where}: user {name!r} is listed twice")
            users[name] = _parse_hash(rest, where)
    if not users:
        raise UsersFileError(f"{source}: no user defined")
    return users


def load_users(
    path: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, PasswordHash] | None:
    """Users from the file at ``path``, else from ``$REACTIVE_AIOPS_WEB_USERS``, else None.

    Raises :class:`UsersFileError` for a malformed source and ``OSError`` for an unreadable file.
    """
    env = os.environ if environ is None else environ
    if path is not None:
        with open(path, encoding="utf-8") as handle:
            return parse_users(handle.read(), source=path)
    text = env.get(USERS_ENV)
    if text:
        return parse_users(text, source=f"${USERS_ENV}")
    return None


def _main(argv: list[str]) -> int:  # pragma: no cover - interactive helper
    import getpass

    if len(argv) != 1 or not _NAME.fullmatch(argv[0]):
        print("usage: python -m reactive_aiops.ui.web.auth NAME", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {argv[0]}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(f"{argv[0]}:{hash_password(password).encode()}")
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
