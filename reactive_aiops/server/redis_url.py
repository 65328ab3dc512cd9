"""Checking a ``--redis-url`` before a node tries to join a cluster with it."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Where ``serve`` reads the URL when ``--redis-url`` is absent.
URL_ENV = "REACTIVE_AIOPS_REDIS_URL"
#: The Redis password (or an ACL user's) comes only from here, never from a flag or the URL.
PASSWORD_ENV = "REACTIVE_AIOPS_REDIS_PASSWORD"
#: An ACL user name, if the deployment uses one.
USERNAME_ENV = "REACTIVE_AIOPS_REDIS_USERNAME"
#: The CA file of a ``rediss://`` server with a private CA, when ``--redis-ca`` is absent.
CA_ENV = "REACTIVE_AIOPS_REDIS_CA"


def check_redis_url(url: str) -> str:
    """Return ``url`` if it names a Redis database we can use; ``ValueError`` says why not.

    ``redis://HOST[:PORT][/DB]`` or ``rediss://`` (TLS). A password in the URL is refused: it
    would show in ``ps`` and in logs; set ``REACTIVE_AIOPS_REDIS_PASSWORD`` instead.
    """
    parts = urlsplit(url)
    if parts.password is not None:
        raise ValueError(f"put the Redis password in {PASSWORD_ENV}, not in the URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad Redis URL {url!r}: {exc}") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"bad Redis URL {url!r}: use redis://HOST:PORT/DB or rediss://...")
    if not parts.hostname:
        raise ValueError(f"bad Redis URL {url!r}: no host")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"bad Redis URL: port {port}")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"bad Redis URL {url!r}: the path must be a database number")
    if parts.query or parts.fragment:
        raise ValueError(f"bad Redis URL {url!r}: no query or fragment expected")
    return url
