"""Scale-out on the project's own tasks (a script, not a test): ``python bench/scale_out_real.py``.

Issue 11's figures, measured in one run on this machine:

* federation-12's coalition values in ``plan`` mode (``scenarios.market_tasks.value_task``, the
  code path of ``carbonfed market --workers N``): one in k of the 4,095 coalitions, drawn at
  random with a fixed seed (so sizes come in proportion), in-process and on LocalClusters of 1
  and 2 worker processes (``--rounds`` times each, alternated); time per coalition, the
  projection to all 4,095, and whether the three gave the same floats;
* a 16-run sweep (``scenarios.sweep.run_task``, the path of ``carbonfed sweep``): ``default``,
  milp, 4 carbon prices x 4 seeds, on 1 and 2 workers (alternated), and whether the tables are
  identical;
* CPU seconds per coalition by coalition size (in-process), the input of the paper projection
  for 64 workers and 20-site federations that ends the output;
* batching (``scenarios.market_tasks.ExecutorEvaluate``): federation-12's 298 coalitions of 1-3
  sites (milliseconds each, where a task's cost to the scheduler shows) on 2 workers, one a task
  against the batch chosen for 2 workers, and whether the values are the same.

Needs the data folder for federation-12: ``CARBONFED_DATA=../shared/data``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections import defaultdict
from contextlib import ExitStack
from math import comb
from pathlib import Path

from market.analysis import all_coalitions
from market.valuation import VALUATIONS
from scenarios.build import build_run
from scenarios.loader import load_scenario
from scenarios.market_tasks import (
    CoalitionTask,
    ExecutorEvaluate,
    ScenarioRef,
    batch_size,
    value_task,
)
from scenarios.scaleout import open_executor
from scenarios.sweep import grid, run_task

PRICE_USD_PER_T = 100.0
SWEEP_PRICES = (0.0, 50.0, 100.0, 200.0)
SWEEP_SEEDS = 4
SCHEDULER_S_PER_TASK = 5e-3  # a task's cost in a bulk map on 2 local workers (bench/scale_out.py)


def load_average() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def coalition_tasks(data: Path, every: int) -> list[CoalitionTask]:
    loaded = load_scenario("federation-12", data)
    ref = ScenarioRef.of(loaded)
    sites = tuple(s.id for s in loaded.scenario.sites)
    everyone = all_coalitions(sites)
    # A fixed random sample: every size in proportion (every k-th would follow bit patterns).
    sample = sorted(random.Random(2026).sample(everyone, len(everyone) // every), key=len)
    return [CoalitionTask(ref, "plan", PRICE_USD_PER_T, (c,)) for c in sample]


def cpu_by_size(tasks: list[CoalitionTask]) -> dict[int, float]:
    """Mean CPU seconds of one coalition value, per coalition size (in this process)."""
    value_task(tasks[0])  # builds the period problem once (cached), not counted
    seconds: dict[int, list[float]] = defaultdict(list)
    for task in tasks:
        began = time.process_time()
        value_task(task)
        seconds[len(task.coalitions[0])].append(time.process_time() - began)
    return {size: statistics.mean(s) for size, s in sorted(seconds.items())}


def timed_map(workers: int | None, fn, tasks, label: str) -> tuple[float, list]:
    with open_executor(workers=workers) as executor:
        executor.map(fn, tasks[:2], label="warm-up")  # builds this process's caches
        began = time.perf_counter()
        results = executor.map(fn, tasks, label=label)
        return time.perf_counter() - began, results


def interleaved(fn, tasks, label: str, rounds: int) -> tuple[dict[str, list[float]], dict]:
    """Wall seconds of mapping ``fn`` over ``tasks`` on 1 and on 2 workers, ``rounds`` times
    each, alternated: the machine's speed drifts (other tenants), and a burst then falls on
    both rather than on one. Both clusters stay up; an idle one costs nothing."""
    walls: dict[str, list[float]] = {}
    results: dict[str, list] = {}
    with ExitStack() as stack:
        executors = {name: stack.enter_context(open_executor(workers=workers))
                     for name, workers in (("1 worker", 1), ("2 workers", 2))}
        for executor in executors.values():  # every worker builds its caches first
            executor.map(fn, tasks[:4 * executor.slots], label="warm-up")
        for _ in range(rounds):
            for name, executor in executors.items():
                began = time.perf_counter()
                results[name] = executor.map(fn, tasks, label=label)
                walls.setdefault(name, []).append(time.perf_counter() - began)
    return walls, results


def speedup(walls: dict[str, list[float]]) -> str:
    one, two = walls["1 worker"], walls["2 workers"]
    rounds = ", ".join(f"{a / b:.2f}x" for a, b in zip(one, two, strict=True))
    return (f"speed-up 2 workers against 1: {statistics.median(one) / statistics.median(two):.2f}x"
            f" on medians (rounds: {rounds})")


def batching(data: Path) -> None:
    """Small coalitions on 2 workers: one a task against ``batch_size``'s batches."""
    loaded = load_scenario("federation-12", data)
    run = build_run(loaded)
    valuation = VALUATIONS["plan"](run.setup, run.config)
    small = [c for c in all_coalitions(tuple(s.id for s in loaded.scenario.sites)) if len(c) <= 3]
    walls, values = {}, {}
    with open_executor(workers=2) as executor:
        auto = batch_size(len(small), executor.slots)
        for batch in (1, auto, 1, auto):  # alternated: the machine's speed drifts
            evaluate = ExecutorEvaluate(executor, ScenarioRef.of(loaded), "plan", batch)
            evaluate(valuation, small[:4])  # every worker builds its period problem first
            began = time.perf_counter()
            values[batch] = evaluate(valuation, small)
            walls.setdefault(batch, []).append(time.perf_counter() - began)
    print(f"batching: {len(small)} coalitions of 1-3 sites on 2 workers: "
          + "; ".join(f"{b} a task ({-(-len(small) // b)} tasks) "
                      + ", ".join(f"{w:.2f}" for w in walls[b]) + " s" for b in walls)
          + f"; speed-up {min(walls[1]) / min(walls[auto]):.2f}x (best of two); "
          f"identical values: {values[1] == values[auto]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=32,
                        help="sample one in k of federation-12's 4,095 coalitions (32: 127)")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed maps on each cluster, 1 and 2 workers alternated (3)")
    parser.add_argument("--only-batching", action="store_true")
    args = parser.parse_args()
    data = Path(os.environ["CARBONFED_DATA"])
    if args.only_batching:
        batching(data)
        return

    tasks = coalition_tasks(data, args.every)
    print(f"federation-12, plan mode at {PRICE_USD_PER_T:g} USD/t: {len(tasks)} of 4,095 "
          f"coalitions; {load_average()}")
    by_size = cpu_by_size(tasks)
    print("CPU s per coalition by size (in-process): "
          + ", ".join(f"{k}: {v:.3f}" for k, v in by_size.items()))
    wall_in, in_process = timed_map(None, value_task, tasks, "coalitions")
    walls, results = interleaved(value_task, tasks, "coalitions", args.rounds)
    for name, seconds in (("in-process", [wall_in]), *walls.items()):
        per = statistics.median(seconds) / len(tasks)
        print(f"  {name:<10} {', '.join(f'{w:.1f}' for w in seconds)} s, {1e3 * per:6.1f} ms "
              f"per coalition (median), all 4,095 projected {4095 * per / 60:5.1f} min")
    same = in_process == results["1 worker"] == results["2 workers"]
    print(f"  {speedup(walls)}; identical floats in all three: {same}; {load_average()}")

    if not args.skip_sweep:
        ref = ScenarioRef.of(load_scenario("default"))
        runs = grid(ref, ["milp"], list(SWEEP_PRICES), SWEEP_SEEDS)
        sweeps, tables = interleaved(run_task, runs, "runs", args.rounds)
        print(f"sweep of {len(runs)} runs (default, milp, {len(SWEEP_PRICES)} prices x "
              f"{SWEEP_SEEDS} seeds): " + "; ".join(
                  f"{name} {', '.join(f'{w:.1f}' for w in seconds)} s"
                  for name, seconds in sweeps.items()))
        print(f"  {speedup(sweeps)}; identical tables: "
              f"{tables['1 worker'] == tables['2 workers']}; {load_average()}")

    # Paper projection: exact games need every coalition; the mean CPU per coalition of a
    # 20-site federation is extrapolated linearly in coalition size from federation-12's.
    sizes = sorted(by_size)
    slope = ((by_size[sizes[-1]] - by_size[sizes[0]]) / (sizes[-1] - sizes[0])
             if len(sizes) > 1 else 0.0)
    mean_12 = sum(by_size[k] * comb(12, k) for k in sizes) / sum(comb(12, k) for k in sizes)
    mean_20 = sum((by_size[sizes[0]] + slope * (k - sizes[0])) * comb(20, k)
                  for k in range(1, 21)) / (2**20 - 1)
    # The scheduler hands out tasks one at a time: its cost per task adds up whatever the
    # workers, so at 10^6 coalitions tasks must carry a batch of coalitions each.
    print(f"paper projection (CPU-bound, perfect packing, {1e3 * SCHEDULER_S_PER_TASK:g} ms of "
          f"scheduler per task, serial):")
    for n_sites, mean_s in ((12, mean_12), (20, mean_20)):
        n = 2**n_sites - 1
        for workers in (2, 64):
            for batch in (1, batch_size(n, workers)):  # one a task, and ExecutorEvaluate's
                tasks = -(-n // batch)
                hours = (n * mean_s / workers + tasks * SCHEDULER_S_PER_TASK) / 3600
                print(f"  {n_sites} sites, {n:,} coalitions x {mean_s:.3f} CPU s, {workers} "
                      f"workers, {batch} coalition(s) a task: {hours:8.2f} h")
    batching(data)


if __name__ == "__main__":  # Dask spawns worker processes, which re-import this file
    main()
