"""Run every benchmark module and print one Markdown table per module.

Usage: ``python -m benchmarks [--quick] [--only NAME ...] [--json PATH] [--loop uvloop]``.

With more than one module selected, each runs in a fresh child process: a module leaves its
heap behind (a million entities, thousands of sockets' worth of objects), and the next one's
garbage collections would walk it, which slowed the pipeline benchmark by a third when it ran
after the others in one process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchmarks
from benchmarks._harness import Row, render
from reactive_aiops import _loop


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument("--only", nargs="*", default=None, help="module names, e.g. bench_store")
    parser.add_argument("--json", type=Path, default=None, help="also write all rows as JSON")
    parser.add_argument(
        "--loop",
        choices=_loop.LOOPS,
        default=None,
        help="event loop for the asyncio benchmarks (bench_latency; default asyncio)",
    )
    args = parser.parse_args()
    if args.loop is not None:
        # an environment variable, so that the child process of every module sees it too
        os.environ["REACTIVE_AIOPS_BENCH_LOOP"] = args.loop
    names = sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_") and (args.only is None or m.name in args.only)
    )
    print(f"# reactive-aiops benchmarks ({platform.python_version()}, {platform.machine()})")
    sys.stdout.flush()
    all_rows: list[dict[str, object]] = []
    for name in names:
        if len(names) == 1:
            all_rows.extend(_run_here(name, args.quick))
        else:
            all_rows.extend(_run_child(name, args.quick))
    if args.json is not None:
        args.json.write_text(json.dumps(all_rows, indent=2))
    return 0


def _run_here(name: str, quick: bool) -> list[dict[str, object]]:
    module = importlib.import_module(f"benchmarks.{name}")
    started = time.perf_counter()
    rows: list[Row] = module.run(quick)
    print(f"\n## {name} ({time.perf_counter() - started:.1f} s)\n")
    print(render(rows))
    sys.stdout.flush()
    return [
        {
            "group": r.group,
            "variant": r.variant,
            "unit": r.unit,
            "median": r.median,
            "p5": r.percentile(5),
            "p95": r.percentile(95),
            "note": r.note,
        }
        for r in rows
    ]


def _run_child(name: str, quick: bool) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", "benchmarks", "--only", name, "--json", str(out)]
        done = subprocess.run(
            command + (["--quick"] if quick else []), capture_output=True, text=True, check=False
        )
        # the child's own header line is ours already
        print(done.stdout.split("\n", 1)[1] if "\n" in done.stdout else done.stdout, end="")
        sys.stdout.flush()
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"benchmark {name} failed with exit status {done.returncode}")
        rows: list[dict[str, object]] = json.loads(out.read_text())
        return rows

if __name__ == "__main__":
    sys.exit(main())
