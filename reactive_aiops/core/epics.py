"""Epics in the redux-observable sense: ``epic(actions, states) -> actions``.

Each epic's output is dispatched in order. An epic whose stream errors (or whose function
raises) is reported as an :class:`~reactive_aiops.core.actions.EffectFailed` action and started
again after an exponential backoff; the other epics and the store carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable

from reactive_aiops.core.actions import EffectFailed

__all__ = ["Epic", "EpicHost"]

#: ``epic(actions, states) -> actions to dispatch``.
Epic = Callable[[Observable[Any], Observable[Any]], Observable[Any]]


class EpicHost(Protocol):
    """What an epic runs against: the store's two streams and its ``dispatch``.

    A protocol rather than :class:`~reactive_aiops.core.store.Store` itself, so that the store
    imports this module and not the other way round (no import circle in the core).
    """

    @property
    def actions(self) -> Observable[Any]: ...

    @property
    def states(self) -> Observable[Any]: ...

    def dispatch(self, action: Any) -> Any: ...


def _epic_name(epic: Any) -> str:
    return str(getattr(epic, "__qualname__", None) or type(epic).__qualname__)


class _EpicRunner:
    """Runs one epic against a store and restarts it after failures."""

    def __init__(
        self,
        store: EpicHost,
        epic: Epic,
        scheduler: abc.SchedulerBase,
        backoff: tuple[float, float],
    ) -> None:
        self._store = store
        self._epic = epic
        self._scheduler = scheduler
        self._initial, self._maximum = backoff
        self._failures = 0
        self._subscription = SerialDisposable()
        self._stopped = False
        self.name = _epic_name(epic)

    def start(self) -> None:
        if self._stopped:
            return
        try:
            output = self._epic(self._store.actions, self._store.states)
        except Exception as exc:  # an epic factory bug must not kill the store
            self._failed(exc)
            return
        self._subscription.disposable = output.subscribe(on_next=self._emit, on_error=self._failed)

    def _emit(self, action: Any) -> None:
        # A successful emission proves the epic works again, so the next failure backs off
        # from the start instead of from where the last streak ended.
        self._failures = 0
        self._store.dispatch(action)

    def _failed(self, error: Exception) -> None:
        self._failures += 1
        delay = min(self._maximum, self._initial * 2 ** (self._failures - 1))
        self._store.dispatch(
            EffectFailed(epic=self.name, error=repr(error), attempt=self._failures, retry_in=delay)
        )
        if not self._stopped:
            self._subscription.disposable = self._scheduler.schedule_relative(
                delay, lambda _scheduler, _state: self.start()
            )

    def stop(self) -> None:
        self._stopped = True
        self._subscription.dispose()
