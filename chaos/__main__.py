"""Run the fault scenarios and print one Markdown table.

Usage: ``python -m chaos [--quick] [--only NAME ...]``. Exit status 1 if a scenario failed one
of its checks or could not run. Each scenario has a time limit, so a hang is a failed row, not
a stuck run.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time

from chaos._harness import Result, render
from chaos.scenarios import SCENARIOS, run_scenario


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("--quick", action="store_true", help="smaller numbers, for a smoke run")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help=f"scenarios to run: {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    names = list(SCENARIOS) if args.only is None else args.only
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"python -m chaos: unknown scenario {unknown[0]!r}; "
              f"choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    print(f"# make chaos ({platform.python_version()}, {'quick' if args.quick else 'full'})",
          flush=True)
    started = time.monotonic()
    results: list[Result] = []
    for name in names:
        rows = asyncio.run(run_scenario(name, args.quick))
        for row in rows:
            print(f"  {name}: {row.scenario} [{row.engine}] "
                  f"{'ok' if row.ok else 'FAILED'} in {row.seconds:.0f} s", flush=True)
        results.extend(rows)
    print()
    print(render(results))
    print(f"\n{len(results)} rows, {sum(not r.ok for r in results)} failed, "
          f"{time.monotonic() - started:.0f} s")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
