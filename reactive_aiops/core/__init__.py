"""The pure core: store, middleware composition, reducers, selectors. No I/O, no UI toolkits."""

from reactive_aiops.core.actions import (
    Batch,
    EffectFailed,
    Init,
    ReplaceReducer,
    action,
    action_class,
    action_type,
)
from reactive_aiops.core.combine import CombinedState, combine_reducers
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI, compose
from reactive_aiops.core.errors import (
    DispatchInReducerError,
    MiddlewareSetupError,
    ReactiveAiopsError,
    ReducerError,
    StoreError,
)
from reactive_aiops.core.selectors import Selector, create_selector
from reactive_aiops.core.store import Epic, Reducer, Store, create_store

__all__ = [
    "Batch",
    "CombinedState",
    "Dispatch",
    "DispatchInReducerError",
    "EffectFailed",
    "Epic",
    "Init",
    "Middleware",
    "MiddlewareSetupError",
    "ReactiveAiopsError",
    "Reducer",
    "ReducerError",
    "ReplaceReducer",
    "Selector",
    "Store",
    "StoreAPI",
    "StoreError",
    "action",
    "action_class",
    "action_type",
    "combine_reducers",
    "compose",
    "create_selector",
    "create_store",
]
