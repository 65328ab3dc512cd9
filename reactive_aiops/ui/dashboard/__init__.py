"""The Textual AIOps dashboard: ``reactive-aiops dashboard`` and the live ``demo`` pipeline.

Modules: ``view`` (pure view records and memoized selectors, no Textual), ``widgets`` (the
panels), ``bind`` (per-frame selector streams through the Textual adapter), ``app``
(:class:`~reactive_aiops.ui.dashboard.app.DashboardApp`), ``session`` (embedded server, client,
bridge and live store in one context manager), ``headless`` (the pipeline without a terminal,
with event-to-render latency). The commands that run it are :mod:`reactive_aiops.cli.dashboard`
and :mod:`reactive_aiops.cli.demo`. Nothing is imported here, so ``import
reactive_aiops.ui.dashboard`` does not pull in Textual.
"""
