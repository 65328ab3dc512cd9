"""TLS for the event server: one stdlib ``ssl`` context serves ``wss://`` and ``https://``.

The WebSocket handshake, the publish API, ``/health`` and ``/metrics`` share one port, so one
server context covers them all; asyncio decrypts before ``EdgeConnection`` sniffs the request.
"""

from __future__ import annotations

import os
import ssl


class TlsConfigError(ValueError):
    """The certificate or key cannot be loaded; the message names the file, never its content."""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context with TLS 1.2 as the floor, loaded from PEM files.

    Raises ``TlsConfigError`` if a file is missing, unreadable, or the key does not match.
    """
    for path in (cert_file, key_file):
        if not os.path.isfile(path):
            raise TlsConfigError(f"TLS file not found: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"cannot load TLS certificate {cert_file!r} with key {key_file!r}: "
            f"{getattr(exc, 'reason', None) or type(exc).__name__}") from None
    return context
