"""Shared timing and reporting for the benchmark modules.

Every benchmark module exposes ``run(quick: bool) -> list[Row]``. Rows of one comparison share a
``group`` so the runner prints them side by side, with the ratio to the group's first row (the
baseline: a bare-Python floor, a peer library, or a raw loop).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence

import attrs


@attrs.frozen
class Row:
    """One measured variant: ``samples`` are per-operation costs in ``unit``."""

    group: str
    variant: str
    unit: str
    samples: tuple[float, ...]
    note: str = ""
    #: True when bigger is better (throughput); ratios are then inverted for readability.
    higher_is_better: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the samples, ``p`` in [0, 100]."""
        ordered = sorted(self.samples)
        if not ordered:
            return float("nan")
        k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
        return ordered[k]


def time_per_op(
    op: Callable[[int], None], *, ops: int, repeats: int, warmup: int = 1
) -> tuple[float, ...]:
    """Run ``op(ops)`` ``repeats`` times; return microseconds per operation for each repeat.

    ``op`` must perform ``ops`` operations itself so the loop overhead is the caller's to choose.
    The collector is paused during a repeat so a GC pause lands between samples, not inside one.
    """
    for _ in range(warmup):
        op(ops)
    samples = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            op(ops)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        samples.append(elapsed / 1000 / ops)
    return tuple(samples)


def fmt(value: float) -> str:
    """Format a number with three significant digits and thousands separators."""
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def render(rows: Sequence[Row]) -> str:
    """Render rows as a Markdown table grouped by ``group`` with ratios to each group's baseline."""
    lines = [
        "| group | variant | median | p5 | p95 | unit | vs baseline | note |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    baselines: dict[str, Row] = {}
    for row in rows:
        base = baselines.setdefault(row.group, row)
        if row is base:
            ratio = "baseline"
        elif row.higher_is_better:
            ratio = f"{row.median / base.median:.2f}x" if base.median else "n/a"
        else:
            ratio = f"{row.median / base.median:.2f}x" if base.median else "n/a"
        lines.append(
            f"| {row.group} | {row.variant} | {fmt(row.median)} | {fmt(row.percentile(5))} "
            f"| {fmt(row.percentile(95))} | {row.unit} | {ratio} | {row.note} |"
        )
    return "\n".join(lines)
