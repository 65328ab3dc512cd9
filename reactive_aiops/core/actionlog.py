"""Recording actions, and replaying them to reproduce a state exactly.

:func:`record_actions` is a middleware that appends every action it passes on, with a timestamp,
to an :class:`ActionLog`: a bounded :class:`MemoryLog` (``max_records``, ``max_age``) or a
:class:`JsonlLog` file, one JSON object per line::

    log = JsonlLog("session.jsonl")
    store = create_store(reducer, middleware=[dedupe(), record_actions(log)])
    ...
    assert replay(read_jsonl("session.jsonl"), reducer) == store.state

Put ``record_actions`` *last* (innermost) so it records exactly what reaches the reducer, in that
order: a middleware between it and the reducer that dispatches after calling ``next`` would
otherwise have its follow-up recorded first. Reducers must be pure for replay to be exact (the
optimistic journal is: its clock arrives as ``ExpireTransactions`` actions, which are logged
like any other).

Actions round-trip through this module's own cattrs converter. An action class must be
registered with :func:`~reactive_aiops.core.actions.action` (its stable name is the ``type`` in
the log); a field annotated ``object`` (a nested action) is written as ``{"type", "data"}``.
A line that cannot be read raises :class:`LogFormatError` naming the line number.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import attrs
import cattrs

from reactive_aiops.core.actions import Batch, Init, action_class, action_type
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI
from reactive_aiops.core.errors import ReactiveAiopsError
from reactive_aiops.core.events import describe_error
from reactive_aiops.core.store import create_store

_JSON_SCALARS = (str, int, float, bool, type(None))


class ActionLogError(ReactiveAiopsError, ValueError):
    """An action cannot be recorded (its class is not registered, or a field is not JSON)."""


class LogFormatError(ReactiveAiopsError, ValueError):
    """A log line cannot be read; ``line`` is its 1-based number and ``reason`` says why."""

    def __init__(self, line: int, reason: str, source: str = "") -> None:
        self.line = line
        self.reason = reason
        self.source = source
        where = f"{source}:{line}" if source else f"line {line}"
        super().__init__(f"{where}: {reason}")


@attrs.frozen
class LogRecord:
    """One recorded action: its position ``seq`` (from 1), when it was dispatched, the action."""

    seq: int
    ts: float
    action: object


def make_converter() -> cattrs.Converter:
    """A new converter that (un)structures log records and registered actions, nested ones too."""
    converter = cattrs.Converter()

    def unstructure_any(value: object) -> Any:
        if isinstance(value, _JSON_SCALARS):
            return value
        name = action_type(value)
        try:
            registered = action_class(name)
        except KeyError:
            registered = None
        if registered is not type(value):
            raise ActionLogError(
                f"cannot record {type(value).__qualname__}: register it with @action so it has "
                "a stable type name"
            )
        return {"type": name, "data": converter.unstructure(value, type(value))}

    def structure_any(value: Any, _type: Any) -> object:
        if isinstance(value, _JSON_SCALARS):
            return value
        if not isinstance(value, dict) or set(value) != {"type", "data"}:
            raise ValueError(f"expected an action as {{'type', 'data'}}, got {value!r:.80}")
        name = value["type"]
        try:
            cls = action_class(name)
        except (KeyError, TypeError):
            raise ValueError(f"unknown action type {name!r}") from None
        return converter.structure(value["data"], cls)

    converter.register_unstructure_hook_func(lambda t: t is object, unstructure_any)
    converter.register_structure_hook_func(lambda t: t is object, structure_any)
    return converter


_CONVERTER = make_converter()


def encode_action(act: object) -> str:
    """The JSON text of ``act`` as ``{"type", "data"}``; raises :class:`ActionLogError`."""
    try:
        return json.dumps(_CONVERTER.unstructure(act, object), separators=(",", ":"))
    except ActionLogError:
        raise
    except (TypeError, ValueError) as exc:
        raise ActionLogError(f"cannot record {action_type(act)}: {exc}") from exc


def encode_record(record: LogRecord) -> str:
    """One JSON line (without the newline) for ``record``; raises :class:`ActionLogError`."""
    return _format_line(record.seq, record.ts, encode_action(record.action))


def _format_line(seq: int, ts: float, action_json: str) -> str:
    return f'{{"seq":{seq},"ts":{json.dumps(ts)},"action":{action_json}}}'


def decode_record(line: str, lineno: int = 1, source: str = "") -> LogRecord:
    """Parse one JSON line; raises :class:`LogFormatError` with ``lineno`` and the reason."""
    try:
        body = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LogFormatError(
            lineno, f"not JSON ({exc.msg} at column {exc.colno})", source
        ) from None
    if not isinstance(body, dict):
        raise LogFormatError(lineno, "expected a JSON object", source)
    try:
        return _CONVERTER.structure(body, LogRecord)
    except cattrs.BaseValidationError as exc:
        raise LogFormatError(lineno, describe_error(exc, path="record"), source) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise LogFormatError(lineno, str(exc), source) from None


def read_jsonl(path: str | Path) -> Iterator[LogRecord]:
    """Yield the records of a JSON Lines log lazily; blank lines are skipped.

    Raises :class:`LogFormatError` at the first bad line (``OSError`` if the file cannot be read).
    """
    source = str(path)
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                yield decode_record(line, lineno, source)


class ActionLog(Protocol):
    """Where :func:`record_actions` writes. ``encode`` runs before the action is dispatched
    (so an unrecordable action is refused before it changes anything); ``append`` after."""

    def encode(self, act: object) -> Any:
        """Check and prepare ``act`` for :meth:`append`; raise :class:`ActionLogError`."""
        ...

    def append(self, prepared: Any, ts: float, state_before: Any) -> None:
        """Record the prepared action, dispatched at ``ts`` onto ``state_before``."""
        ...


class MemoryLog:
    """An in-memory log keeping at most ``max_records`` records, none older than ``max_age``
    seconds before the newest. ``initial_state`` is the state the oldest kept record was applied
    to, so :func:`replay` of a trimmed log still rebuilds the current state."""

    def __init__(self, *, max_records: int = 10_000, max_age: float | None = None) -> None:
        if max_records < 1 or (max_age is not None and max_age <= 0):
            raise ValueError("max_records and max_age must be positive")
        self.max_records = max_records
        self.max_age = max_age
        # (seq, ts, action, state before): plain tuples, LogRecords are built only when read
        self._entries: deque[tuple[int, float, object, Any]] = deque()
        self._seq = 0
        #: records dropped so far by the bounds
        self.trimmed = 0

    def encode(self, act: object) -> object:
        return act

    def append(self, prepared: Any, ts: float, state_before: Any) -> None:
        self._seq += 1
        entries = self._entries
        entries.append((self._seq, ts, prepared, state_before))
        if len(entries) > self.max_records:
            entries.popleft()
            self.trimmed += 1
        if self.max_age is not None:
            horizon = ts - self.max_age
            while entries[0][1] < horizon:
                entries.popleft()
                self.trimmed += 1

    @property
    def records(self) -> tuple[LogRecord, ...]:
        """The kept records, oldest first."""
        return tuple(LogRecord(seq, ts, act) for seq, ts, act, _ in self._entries)

    @property
    def initial_state(self) -> Any:
        """The state before the oldest kept record (``None`` when the log is empty)."""
        return self._entries[0][3] if self._entries else None

    def __len__(self) -> int:
        return len(self._entries)


class JsonlLog:
    """Appends records to a JSON Lines file (``encoding="utf-8"``), flushing each line so a
    crash loses at most the line being written. Use as a context manager or call
    :meth:`close`. ``truncate=True`` starts a new file instead of appending."""

    def __init__(self, path: str | Path, *, truncate: bool = False) -> None:
        self.path = Path(path)
        self._handle: IO[str] = open(self.path, "w" if truncate else "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._seq = 0

    def encode(self, act: object) -> str:
        return encode_action(act)

    def append(self, prepared: Any, ts: float, state_before: Any) -> None:
        self._seq += 1
        self._handle.write(_format_line(self._seq, ts, prepared) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Flush and close the file; further appends raise ``ValueError``."""
        self._handle.close()

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_actions(log: ActionLog, *, now: Callable[[], float] = time.time) -> Middleware:
    """Middleware appending each action to ``log`` once the reducer accepted it.

    An action the log cannot encode raises :class:`ActionLogError` before it is dispatched;
    an action the reducer rejects (the dispatch raised) is not recorded.
    """

    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                prepared = log.encode(act)
                ts = now()
                before = api.state
                result = next_(act)
                log.append(prepared, ts, before)
                return result

            return dispatch

        return wrap

    return middleware


def replay(
    records: Iterable[LogRecord] | MemoryLog,
    reducer: Callable[[Any, Any], Any],
    *,
    initial_state: Any = None,
    middleware: Sequence[Middleware] = (),
) -> Any:
    """Apply the recorded actions in order and return the final state.

    Starts from ``initial_state``, else a :class:`MemoryLog`'s ``initial_state``, else
    ``reducer(None, Init())`` as a store does. A ``Batch`` is applied action by action, as the
    store does. A log recorded *outside* other middleware (say, raw ``ServerEvent``s before
    ``dedupe`` and ``map_events``) replays through a store built with those deterministic
    ``middleware`` (never a clock-driven one: its clock readings are already in the log).
    """
    if isinstance(records, MemoryLog):
        if initial_state is None:
            initial_state = records.initial_state
        records = records.records
    if middleware:
        store = create_store(reducer, initial_state=initial_state, middleware=middleware)
        for record in records:
            store.dispatch(record.action)
        return store.state
    state = initial_state if initial_state is not None else reducer(None, Init())
    for record in records:
        act = record.action
        if type(act) is Batch:
            for inner in act.actions:
                state = reducer(state, inner)
        else:
            state = reducer(state, act)
    return state
