"""Where the manager connects: one or several endpoint URLs, failover between them, and TLS.

Failover: the manager stays on its current endpoint while it works. A failed connection attempt
(refused, handshake error or timeout, HTTP 5xx) moves to the next endpoint, in order and wrapping
around; the next attempt is made at once while some endpoint of this round is untried, and after
the backoff delay once every endpoint failed (so a total outage still backs off, and a fleet
dropped at once stays spread by its first delay). A server that says it is going away (close
codes 3001 "shutdown" and 1001) sends the next attempt to the next endpoint too. A successful
connect starts a new round. Channels keep their stream positions across endpoints, so a node
of the same cluster (a shared engine: same epochs and offsets) recovers them; a node with its
own streams answers with other epochs and each channel resyncs once.

TLS: ``wss://`` endpoints verify the server's certificate and host name by default (the system's
CA store). ``ca_file`` (a PEM bundle) trusts a private CA instead; ``ssl_context`` replaces the
whole policy (client certificates, pinning...).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, InvalidURI

from reactive_aiops.net.client_streams import describe
from reactive_aiops.net.inline import InlineConnection
from reactive_aiops.protocol import ClientCode, CloseTransport

__all__ = [
    "FATAL_HTTP_STATUSES",
    "GOING_AWAY_CODES",
    "Endpoints",
    "close_info",
    "close_socket",
    "open_failure",
]

#: Close codes with which a server says it is going away: try the next endpoint.
GOING_AWAY_CODES = frozenset({1001, 3001})

#: HTTP statuses at the handshake that retrying cannot fix.
FATAL_HTTP_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 426})


def open_failure(exc: Exception) -> tuple[str, int, bool]:
    """``(reason, client code, fatal)`` for a failed socket open. Fatal: an invalid URL, or an
    HTTP status at the handshake that retrying cannot fix. Anything else (network errors,
    timeouts, 5xx, a certificate that does not verify) is retried."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        reason = f"HTTP {status} at handshake"
        return reason, ClientCode.HANDSHAKE_REJECTED, status in FATAL_HTTP_STATUSES
    if isinstance(exc, InvalidURI):
        return describe(exc), ClientCode.TRANSPORT_CLOSED, True
    return describe(exc), ClientCode.TRANSPORT_CLOSED, False


class Endpoints:
    """The endpoint list and its TLS policy. Raises ``ValueError`` for an empty list and
    ``TypeError`` if both ``ca_file`` and ``ssl_context`` are given; a ``ca_file`` that cannot be
    read raises ``OSError``/``ssl.SSLError`` here, not at the first connect."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.urls: tuple[str, ...] = (urls,) if isinstance(urls, str) else tuple(urls)
        if not self.urls or not all(isinstance(u, str) and u for u in self.urls):
            raise ValueError("need at least one endpoint URL (non-empty strings)")
        if ca_file is not None and ssl_context is not None:
            raise TypeError("pass ca_file or ssl_context, not both")
        self._tls = ssl_context
        if ca_file is not None:
            self._tls = ssl.create_default_context(cafile=ca_file)
        self._index = 0
        self._tried: set[int] = set()

    @property
    def current(self) -> str:
        """The endpoint the next attempt goes to."""
        return self.urls[self._index]

    def tls_for(self, url: str) -> ssl.SSLContext | None:
        """The TLS context for ``url``: None for ``ws://``; for ``wss://`` the given one, or a
        default context that verifies the certificate and host name."""
        if not url.lower().startswith("wss:"):
            return None
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def open(
        self,
        *,
        max_size: int,
        max_queue: int,
        open_timeout: float,
        close_timeout: float,
        headers: Mapping[str, str],
    ) -> InlineConnection:
        """Open a socket to :attr:`current` (websockets' exceptions propagate); text messages
        are queued for ``recv()`` until the caller sets the connection's ``on_text``."""
        url = self.current
        options: dict[str, Any] = {}
        tls = self.tls_for(url)
        if tls is not None:
            options["ssl"] = tls
        ws = await connect(
            url,
            create_connection=InlineConnection,
            compression=None,
            max_size=max_size,
            max_queue=max_queue,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=None,
            proxy=None,
            additional_headers=dict(headers) or None,
            **options,
        )
        assert isinstance(ws, InlineConnection)
        return ws

    def failed(self) -> bool:
        """The attempt on :attr:`current` failed: move on. True when the next endpoint is
        untried in this round (retry at once), False when all of them failed (back off)."""
        self._tried.add(self._index)
        self._index = (self._index + 1) % len(self.urls)
        return self._index not in self._tried

    def closed(self, code: int) -> None:
        """A connection ended with ``code``: one that says the server goes away moves on."""
        if code in GOING_AWAY_CODES:
            self._index = (self._index + 1) % len(self.urls)

    def connected(self) -> None:
        """A connect succeeded on :attr:`current`: a new round of failover starts."""
        self._tried.clear()


async def close_socket(ws: ClientConnection, close: CloseTransport, close_timeout: float) -> None:
    """Close ``ws`` as the protocol asked: abort at once for a dead link, else a closing
    handshake bounded by ``close_timeout`` (plus a margin), aborting if it does not finish."""
    if close.abort:
        ws.transport.abort()  # a dead peer would only make us wait for close_timeout
        return
    try:
        async with asyncio.timeout(close_timeout + 0.5):
            await ws.close(close.code, close.reason)
    except TimeoutError:
        pass
    finally:
        if ws.state.name != "CLOSED":
            ws.transport.abort()  # the reader then ends and reports the close


def close_info(ws: ClientConnection) -> tuple[int, str]:
    """``(code, reason)`` of a closed socket; 1006 "connection lost" when it sent none."""
    code = ws.close_code
    return (1006, "connection lost") if code is None else (code, ws.close_reason or "")
