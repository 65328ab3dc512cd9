"""The exception tree of reactive-aiops.

::

    ReactiveAiopsError
    └── StoreError
        ├── ReducerError             a reducer raised; the state was left unchanged
        ├── DispatchInReducerError   a reducer tried to dispatch (also a RuntimeError)
        └── MiddlewareSetupError     a middleware dispatched while being constructed

Other packages hang their own subtrees off :class:`ReactiveAiopsError`.
"""

from __future__ import annotations

from reactive_aiops.core.actions import action_type


class ReactiveAiopsError(Exception):
    """Root of every exception this library raises on purpose."""


class StoreError(ReactiveAiopsError):
    """A store operation was refused or failed."""


class ReducerError(StoreError):
    """A reducer raised while handling ``action``; the store state is unchanged.

    The original exception is ``__cause__`` (and :attr:`original`). The store stays usable: fix
    the reducer or the action and dispatch again.
    """

    def __init__(self, action: object, original: BaseException) -> None:
        self.action = action
        self.original = original
        super().__init__(
            f"reducer raised {type(original).__name__} while handling {action_type(action)}: "
            f"{original}; the state was left unchanged"
        )


class DispatchInReducerError(StoreError, RuntimeError):
    """A reducer called ``dispatch``. Reducers must be pure."""

    def __init__(self, action: object) -> None:
        self.action = action
        super().__init__(
            f"reducers may not dispatch actions (tried to dispatch {action_type(action)}). "
            "Return the new state instead, or move the side effect to middleware, an epic or "
            "a store listener: dispatches from those are queued and run after the current one."
        )


class MiddlewareSetupError(StoreError, RuntimeError):
    """A middleware dispatched while the store was still applying middleware."""

    def __init__(self) -> None:
        super().__init__(
            "dispatching while constructing middleware is not allowed: other middleware would "
            "not see the action. Dispatch from the (next) -> (action) function instead."
        )
