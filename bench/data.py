"""Real-data benchmarks: read + resample the 24 hourly 2023 files; run ``federation-12``.

    CARBONFED_DATA=../shared/data python bench/data.py [--skip-run]

Prints figures; not a test. Targets: reading and resampling under 3 s; the federation-12 week
(every policy) under 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from scenarios.build import build_run
from scenarios.loader import load_scenario
from scenarios.runner import run_scenario
from sites.readers.electricitymaps import read_electricitymaps
from sites.readers.prices import read_prices


def read_and_resample(data: Path) -> tuple[float, int]:
    """All 12 carbon and 12 price files of 2023, each to 15-minute slots over the year."""
    start = pd.Timestamp("2023-01-01T00:00Z")
    slots = 8760 * 4
    clock = time.perf_counter()
    n = 0
    for path in sorted((data / "grid/carbon").glob("*_2023_hourly.csv")):
        table = read_electricitymaps(path)
        table.slots("direct", start, 0.25, slots)
        table.slots("lca", start, 0.25, slots)
        n += 1
    for path in sorted((data / "grid/prices").glob("*_2023_hourly.csv")):
        read_prices(path).slots("price_usd_per_mwh", start, 0.25, slots)
        n += 1
    return time.perf_counter() - clock, n


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=os.environ.get("CARBONFED_DATA"))
    parser.add_argument("--skip-run", action="store_true")
    args = parser.parse_args()
    if args.data is None or not Path(args.data).is_dir():
        print("set CARBONFED_DATA or pass --data DIR", file=sys.stderr)
        return 2
    data = Path(args.data)
    seconds, files = read_and_resample(data)
    print(f"read {files} hourly files and resampled to 15 min: {seconds:.2f} s (target < 3 s)")
    if args.skip_run:
        return 0
    clock = time.perf_counter()
    run = build_run(load_scenario("federation-12", data))
    result = run_scenario(run)
    wall = time.perf_counter() - clock
    jobs = len(run.setup.jobs)
    print(f"federation-12: {len(run.setup.federation.sites)} sites, {jobs} jobs, "
          f"{run.setup.n_rounds} rounds x {len(result.results)} policies: {wall:.1f} s wall "
          "(goal < 300 s)")
    for name, summary in result.summaries.items():
        print(f"  {name:14s} finished {summary.jobs_finished:4d}  CO2 {summary.carbon_kg:9.1f} kg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
