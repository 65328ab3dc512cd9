"""The Textual AIOps dashboard: ``reactive-aiops dashboard`` and the ``demo`` pipeline.

Import :class:`~reactive_aiops.ui.dashboard.app.DashboardApp` from ``.app`` (it imports Textual);
the pure view records live in ``.view``, the command line in ``.cli``, the headless run in
``.headless``.
"""
