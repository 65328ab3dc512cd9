"""The pure core: store, middleware composition, reducers, selectors. No I/O, no UI toolkits."""

from reactive_aiops.core.actionlog import (
    JsonlLog,
    LogFormatError,
    MemoryLog,
    read_jsonl,
    record_actions,
    replay,
)
from reactive_aiops.core.actions import (
    Batch,
    EffectFailed,
    Init,
    ReplaceReducer,
    action,
    action_class,
    action_type,
)
from reactive_aiops.core.batching import BatchReducer, reduce_all, with_reduce_many
from reactive_aiops.core.combine import CombinedState, combine_reducers
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI, compose
from reactive_aiops.core.dedupe import DedupeStats, dedupe, dedupe_stats
from reactive_aiops.core.entities import EntityCollection, OrderedView
from reactive_aiops.core.epics import Epic
from reactive_aiops.core.errors import (
    DispatchInReducerError,
    MiddlewareSetupError,
    ReactiveAiopsError,
    ReducerError,
    StoreError,
)
from reactive_aiops.core.events import (
    EventMeta,
    EventRoute,
    EventTable,
    MalformedEvent,
    ServerEvent,
    UnknownEvent,
    map_events,
)
from reactive_aiops.core.keyed import KeyedSelector
from reactive_aiops.core.optimistic import (
    ExpireTransactions,
    Optimistic,
    OptimisticJournal,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
    expire_transactions,
    optimistic,
)
from reactive_aiops.core.selectors import Selector, create_selector
from reactive_aiops.core.store import Reducer, Store, create_store

__all__ = [
    "Batch",
    "BatchReducer",
    "CombinedState",
    "DedupeStats",
    "Dispatch",
    "DispatchInReducerError",
    "EffectFailed",
    "EntityCollection",
    "Epic",
    "EventMeta",
    "EventRoute",
    "EventTable",
    "ExpireTransactions",
    "Init",
    "JsonlLog",
    "KeyedSelector",
    "LogFormatError",
    "MalformedEvent",
    "MemoryLog",
    "Middleware",
    "MiddlewareSetupError",
    "Optimistic",
    "OptimisticJournal",
    "OrderedView",
    "ReactiveAiopsError",
    "Reducer",
    "ReducerError",
    "ReplaceReducer",
    "RevertPending",
    "Selector",
    "ServerEvent",
    "Store",
    "StoreAPI",
    "StoreError",
    "TransactionCommitted",
    "TransactionReverted",
    "UnknownEvent",
    "action",
    "action_class",
    "action_type",
    "combine_reducers",
    "compose",
    "create_selector",
    "create_store",
    "dedupe",
    "dedupe_stats",
    "expire_transactions",
    "map_events",
    "optimistic",
    "read_jsonl",
    "record_actions",
    "reduce_all",
    "replay",
    "with_reduce_many",
]
