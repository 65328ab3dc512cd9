"""``reactive-aiops replay FILE``: rebuild the state from a JSON Lines action log and summarise it.

Prints how many actions were replayed over what span of time, a one-line summary per field of
the final state, and the count of each action type. A malformed line is reported as
``FILE:LINE: reason`` on stderr with exit status 2, never a traceback.

The reducer is named by ``--reducer module:attribute`` (a reducer), or by ``--reducer-factory``
(a callable returning one); the default is the live AIOps reducer
(``reactive_aiops.aiops.live_store:create_live_reducer``), loaded by name.
A log recorded outside ``dedupe``/``map_events`` (it holds raw ``ServerEvent`` records) is
replayed through those two middleware, with the event table from ``--event-table`` (a factory).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from reactive_aiops.core.actionlog import LogFormatError, LogRecord, read_jsonl, replay
from reactive_aiops.core.actions import Batch, action_type
from reactive_aiops.core.compose import Middleware
from reactive_aiops.core.dedupe import dedupe
from reactive_aiops.core.events import ServerEvent, map_events

#: Called with no arguments for the reducer when ``--reducer`` is not given.
DEFAULT_REDUCER_FACTORY = "reactive_aiops.aiops.live_store:create_live_reducer"
#: Called with no arguments for the event table when the log holds raw server events.
DEFAULT_EVENT_TABLE = "reactive_aiops.aiops.event_table:aiops_event_table"

_WIDTH = 72


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` arguments to ``parser``."""
    parser.add_argument("file", metavar="FILE", help="a JSON Lines action log (record_actions)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--reducer", metavar="MODULE:ATTR", help="the root reducer to replay with")
    which.add_argument(
        "--reducer-factory",
        default=DEFAULT_REDUCER_FACTORY,
        metavar="MODULE:ATTR",
        help=f"a callable returning the reducer (default: {DEFAULT_REDUCER_FACTORY})",
    )
    parser.add_argument(
        "--event-table",
        default=DEFAULT_EVENT_TABLE,
        metavar="MODULE:ATTR",
        help="a callable returning the EventTable, used only for raw ServerEvent records "
        f"(default: {DEFAULT_EVENT_TABLE})",
    )


def load_object(spec: str) -> Callable[..., Any]:
    """Import ``module:attribute`` (a callable); raises ``ValueError`` with a readable message."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected module:attribute, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attr, None)
    if not callable(found):
        raise ValueError(f"{module_name!r} has no callable {attr!r}")
    loaded: Callable[..., Any] = found
    return loaded


def count_actions(records: Iterable[LogRecord]) -> Counter[str]:
    """Action type -> how many; a batch counts itself and each action inside it."""
    counts: Counter[str] = Counter()
    for record in records:
        act = record.action
        counts[action_type(act)] += 1
        if type(act) is Batch:
            counts.update(action_type(inner) for inner in act.actions)
    return counts


def summarize_value(value: Any) -> str:
    """A short description: ``value.summary()`` if it has one, size for collections, else the
    repr (shortened)."""
    summary = getattr(value, "summary", None)
    if callable(summary):
        return str(summary())
    kind = type(value).__name__
    if isinstance(value, str | bytes):
        text = repr(value)
    elif hasattr(value, "__len__") and not attrs.has(type(value)):
        return f"{kind} of {len(value)}"
    else:
        text = repr(value)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def summarize_state(state: Any) -> list[str]:
    """One line per field of an attrs root (or key of a mapping root); else one line."""
    if attrs.has(type(state)):
        items = [(f.name, getattr(state, f.name)) for f in attrs.fields(type(state))]
    elif isinstance(state, dict) or hasattr(state, "items"):
        items = list(state.items())
    else:
        return [summarize_value(state)]
    return [f"{name}: {summarize_value(value)}" for name, value in items]


def run(args: argparse.Namespace) -> int:
    """Replay ``args.file``; print the summary. Returns 0, or 2 for unreadable input."""
    try:
        factory = None if args.reducer else load_object(args.reducer_factory)
        reducer = factory() if factory is not None else load_object(args.reducer)
        records = list(read_jsonl(args.file))
        middleware: list[Middleware] = []
        if any(type(r.action) is ServerEvent for r in records):
            table = load_object(args.event_table)()
            middleware = [dedupe(), map_events(table)]
        state = replay(records, reducer, middleware=middleware)
    except (LogFormatError, ValueError, OSError) as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2
    span = records[-1].ts - records[0].ts if records else 0.0
    print(f"replayed {len(records)} actions from {args.file} ({span:.3f} s of activity)")
    print(f"final state ({type(state).__name__}):")
    for line in summarize_state(state):
        print(f"  {line}")
    print("actions:")
    counts = count_actions(records)
    width = max((len(name) for name in counts), default=0)
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {name:<{width}}  {count}")
    return 0
