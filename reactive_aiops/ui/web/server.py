"""Assemble and serve the web dashboard: one live session, one hub, NiceGUI on uvicorn.

:func:`serve_dashboard` opens the live session (the embedded server with the simulated source
when no URL is given), builds the :class:`~reactive_aiops.ui.web.hub.Hub`, registers the pages
and runs uvicorn on the same event loop, so the store, the WebSocket client and every tab's
rendering share one thread. The operator token stays in this process: pages get rendered data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import secrets
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from nicegui import Client, app, ui

from reactive_aiops.ui.dashboard.session import open_session
from reactive_aiops.ui.gc_policy import streaming_gc
from reactive_aiops.ui.web.auth import PasswordHash, verify_password
from reactive_aiops.ui.web.hub import Hub
from reactive_aiops.ui.web.model import TabFilter
from reactive_aiops.ui.web.page import DashboardTab

__all__ = ["WebOptions", "serve_dashboard"]

#: Signed-in browsers remembered at most (the oldest sign-in is forgotten first).
_MAX_SESSIONS = 10_000


class WebOptions:
    """What :func:`serve_dashboard` needs (the parsed command line, typed)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        users: dict[str, PasswordHash] | None = None,
        local_user: str = "operator",
        tls_cert: str | None = None,
        tls_key: str | None = None,
        rate: float = 20.0,
        seed: int = 0,
        fps: float = 60.0,
        duration: float | None = None,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.host = host
        self.port = port
        self.users = users
        self.local_user = local_user
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.rate = rate
        self.seed = seed
        self.fps = fps
        self.duration = duration
        self.on_ready = on_ready


def _public_origin(url: str) -> str:
    # The server's address without path or query: a query could carry credentials.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else parts.netloc


def _register_pages(hub: Hub, options: WebOptions) -> None:
    users = options.users
    # Sign-ins live in this process only (browser id from NiceGUI's signed cookie -> user):
    # nothing is written to disk, and a restart signs everyone out.
    sessions: collections.OrderedDict[str, str] = collections.OrderedDict()

    def browser() -> str:
        return str(app.storage.browser["id"])

    def signed_in() -> str | None:
        if users is None:
            return options.local_user
        name = sessions.get(browser())
        return name if name is not None and name in users else None

    @ui.page("/", title="reactive-aiops")
    def index(client: Client, request: Request) -> Any:
        user = signed_in()
        if user is None:
            return RedirectResponse("/login")
        try:
            tab_filter = TabFilter.from_query(request.query_params)
        except ValueError as exc:
            ui.notify(str(exc), type="warning")
            tab_filter = TabFilter()
        DashboardTab(hub, client, user=user, tab_filter=tab_filter, fps=options.fps)
        if users is not None:
            def logout() -> None:
                sessions.pop(browser(), None)
                ui.navigate.to("/login")

            ui.button("Sign out", on_click=logout).props("flat dense")
        return None

    @ui.page("/login", title="reactive-aiops: sign in")
    def login() -> Any:
        if users is None or signed_in() is not None:
            return RedirectResponse("/")

        def attempt() -> None:
            name = str(username.value or "")
            stored = users.get(name)
            if stored is not None and verify_password(str(password.value or ""), stored):
                sessions[browser()] = name
                while len(sessions) > _MAX_SESSIONS:
                    sessions.popitem(last=False)
                ui.navigate.to("/")
                return
            # Same answer for an unknown user and a wrong password.
            message.set_text("wrong user name or password")
            password.set_value("")

        with ui.card().classes("absolute-center"):
            ui.label("reactive-aiops: sign in").classes("text-lg")
            username = ui.input("User").props("data-testid=login-user")
            password = ui.input("Password", password=True).props("data-testid=login-password")
            password.on("keydown.enter", attempt)
            ui.button("Sign in", on_click=attempt).props("data-testid=login-submit")
            message = ui.label("").classes("text-negative").props("data-testid=login-message")
        return None

    @app.get("/api/web-stats")
    def stats(request: Request) -> Any:
        # Counters per open tab and the audit backlog: for the tests and the benchmark.
        if users is not None and request.client is not None and \
                request.client.host not in ("127.0.0.1", "::1"):
            return JSONResponse({"error": "loopback only"}, status_code=403)
        return {
            "tabs": {tab: counters() for tab, counters in list(hub.tabs.items())},
            "pending_commands": hub.audit.pending,
        }


async def serve_dashboard(options: WebOptions) -> int:
    """Run the dashboard until interrupted (or ``options.duration`` seconds); exit status."""

    async with open_session(
        options.url, token=options.token, rate=options.rate, seed=options.seed,
        user=options.local_user,
    ) as session:
        hub = Hub(session.store, title=_public_origin(session.url))
        gc_policy: contextlib.AbstractContextManager[None] | None = None
        try:
            _register_pages(hub, options)
            fastapi_app = FastAPI()
            ui.run_with(
                fastapi_app,
                title="reactive-aiops",
                storage_secret=secrets.token_urlsafe(32),
                show_welcome_message=False,
                favicon="📈",
            )
            config = uvicorn.Config(
                fastapi_app,
                host=options.host,
                port=options.port,
                ssl_certfile=options.tls_cert,
                ssl_keyfile=options.tls_key,
                log_level="warning",
                access_log=False,
            )
            server = uvicorn.Server(config)
            # NiceGUI, FastAPI and the session are set up: hide that heap from the collector.
            gc_policy = streaming_gc()
            gc_policy.__enter__()
            serving = asyncio.create_task(server.serve())
            while not server.started:
                if serving.done():
                    await serving
                    print("web dashboard: the HTTP server did not start", file=sys.stderr)
                    return 1
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            scheme = "https" if options.tls_cert else "http"
            where = f"{scheme}://{options.host}:{port}/"
            if options.on_ready is not None:
                options.on_ready(where)
            if options.duration is not None:
                asyncio.get_running_loop().call_later(
                    options.duration, lambda: setattr(server, "should_exit", True)
                )
            await serving
        finally:
            hub.close()
            if gc_policy is not None:
                gc_policy.__exit__(None, None, None)
    return 0
