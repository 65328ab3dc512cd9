"""The dashboard on the running event loop: open a session, then the Textual app or headless.

What ``reactive-aiops dashboard`` and ``demo`` run (:mod:`reactive_aiops.cli.dashboard` picks
the loop and handles exit statuses); an application embedding the dashboard calls these from
its own coroutine. Both run under :func:`~reactive_aiops.ui.gc_policy.streaming_gc`.
"""

from __future__ import annotations

from reactive_aiops.ui.dashboard.headless import Summary, run_headless
from reactive_aiops.ui.dashboard.session import open_session
from reactive_aiops.ui.gc_policy import streaming_gc

__all__ = ["run_dashboard_session", "run_headless_session"]


async def run_headless_session(
    url: str | None, token: str | None, *, duration: float, rate: float, seed: int
) -> Summary:
    """Connect (to ``url``, or an embedded server with the simulated source at ``rate`` and
    ``seed``), run the pipeline without a UI for ``duration`` seconds and return its summary.

    Raises ``ConnectionError``/``TimeoutError`` when the connection cannot be made.
    """
    async with open_session(url, token=token, rate=rate, seed=seed) as session:
        with streaming_gc():
            return await run_headless(session.store, duration)


async def run_dashboard_session(
    url: str | None,
    token: str | None,
    *,
    duration: float | None,
    rate: float,
    seed: int,
    user: str,
    fps: float,
    screenshot: str | None = None,
) -> int:
    """Connect as :func:`run_headless_session` does and run the Textual app until the user quits
    (or ``duration`` seconds); returns the app's exit code. With ``screenshot`` the app renders
    into a virtual 120x34 screen (no terminal) and saves an SVG there when ``duration`` is up.
    """
    from reactive_aiops.ui.dashboard.app import DashboardApp

    async with open_session(url, token=token, rate=rate, seed=seed, user=user) as session:
        app = DashboardApp(
            session.store,
            user=user,
            fps=fps,
            title=session.url,
            quit_after=duration,
            screenshot=screenshot,
        )
        with streaming_gc():
            if screenshot is not None:
                await app.run_async(headless=True, size=(120, 34))
            else:
                await app.run_async()
    return app.return_code or 0
