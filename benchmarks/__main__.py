"""Run every benchmark module and print one Markdown table per module.

Usage: ``python -m benchmarks [--quick] [--only NAME ...] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

import benchmarks
from benchmarks._harness import Row, render


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. bench_store")
    parser.add_argument("--json", type=Path, default=None, help="also write all rows as JSON")
    args = parser.parse_args()
    names = sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_") and (args.only is None or m.name in args.only)
    )
    print(f"# reactive-aiops benchmarks ({platform.python_version()}, {platform.machine()})")
    all_rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        rows: list[Row] = module.run(args.quick)
        print(f"\n## {name} ({time.perf_counter() - started:.1f} s)\n")
        print(render(rows))
        sys.stdout.flush()
        all_rows.extend(rows)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "group": r.group,
                        "variant": r.variant,
                        "unit": r.unit,
                        "median": r.median,
                        "p5": r.percentile(5),
                        "p95": r.percentile(95),
                        "note": r.note,
                    }
                    for r in all_rows
                ],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
