"""Deprecated: the live store moved to :mod:`reactive_aiops.aiops.live_store`.

``from reactive_aiops.app import create_live_store`` still works and warns (DeprecationWarning);
import it from :mod:`reactive_aiops.aiops.live_store` instead. This alias goes in a later release.
"""

from __future__ import annotations

import warnings
from typing import Any

from reactive_aiops.aiops import live_store as _live_store

_MOVED = ("DEFAULT_COMMAND_TTL", "create_live_reducer", "create_live_store")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"reactive_aiops.app.{name} moved to reactive_aiops.aiops.live_store.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_live_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
