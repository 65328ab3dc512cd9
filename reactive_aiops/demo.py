"""Deprecated: the scripted scenario moved to :mod:`reactive_aiops.aiops.scenario`.

``reactive_aiops.demo.scenario()`` and the other names still work and warn (DeprecationWarning);
import them from :mod:`reactive_aiops.aiops.scenario`. The command is ``reactive-aiops demo
--scripted`` (:mod:`reactive_aiops.cli.demo`). This alias goes in a later release.
"""

from __future__ import annotations

import warnings
from typing import Any

from reactive_aiops.aiops import scenario as _scenario


def __getattr__(name: str) -> Any:
    if name in _scenario.__all__:
        warnings.warn(
            f"reactive_aiops.demo.{name} moved to reactive_aiops.aiops.scenario.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_scenario, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
