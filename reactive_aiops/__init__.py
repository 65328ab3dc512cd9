"""reactive-aiops: a real-time state layer for AIOps dashboards.

The top level re-exports the store core. Networking lives in :mod:`reactive_aiops.net`, the
server in :mod:`reactive_aiops.server` and UI adapters in :mod:`reactive_aiops.ui`; none of them
is imported here, so ``import reactive_aiops`` needs no UI toolkit.
"""

from reactive_aiops.core import (
    Batch,
    CombinedState,
    DispatchInReducerError,
    EffectFailed,
    Init,
    ReactiveAiopsError,
    ReducerError,
    Selector,
    Store,
    StoreAPI,
    action,
    action_type,
    combine_reducers,
    compose,
    create_selector,
    create_store,
)

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "CombinedState",
    "DispatchInReducerError",
    "EffectFailed",
    "Init",
    "ReactiveAiopsError",
    "ReducerError",
    "Selector",
    "Store",
    "StoreAPI",
    "__version__",
    "action",
    "action_type",
    "combine_reducers",
    "compose",
    "create_selector",
    "create_store",
]
