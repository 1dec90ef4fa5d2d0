"""Cost and gain of the executors (a script, not a test): ``python bench/scale_out.py``.

Prints, in one run on this machine:

* the per-task overhead: one empty task's round trip (median of repeated one-task maps) and the
  cost per task of one map of many empty tasks, in-process and on LocalClusters of 1 and 2
  worker processes (``open_executor(workers=N)``, the code path of ``--workers N``);
* the speed-up of N CPU-bound tasks (~0.5 s each of single-threaded numpy) on 2 workers
  against 1, with the in-process time beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from scenarios.scaleout import Executor, open_executor, task_seeds


def empty(task: int) -> int:
    return task


def logistic_orbit(task: tuple[np.random.SeedSequence, int]) -> float:
    """CPU-bound and single-threaded (ufuncs, no BLAS): iterate x <- 3.9 x (1 - x)."""
    seed, steps = task
    x = np.random.default_rng(seed).uniform(0.1, 0.9, 100_000)
    for _ in range(steps):
        x = 3.9 * x * (1.0 - x)
    return float(x.sum())


def steps_for(seconds: float) -> int:
    """Steps of ``logistic_orbit`` that take about ``seconds`` here."""
    trial = 200
    started = time.perf_counter()
    logistic_orbit((task_seeds(0, 1)[0], trial))
    return max(1, round(trial * seconds / (time.perf_counter() - started)))


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def overheads(executor: Executor, round_trips: int, many: int) -> tuple[float, float]:
    """(median one-task round trip, seconds per task in one map of ``many``), in seconds."""
    executor.map(empty, [0], label="warm-up")  # first use ships the function to the workers
    single = statistics.median(
        timed(lambda: executor.map(empty, [0], label="empty")) for _ in range(round_trips))
    bulk = timed(lambda: executor.map(empty, list(range(many)), label="empty")) / many
    return single, bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="CPU-bound tasks (default 8)")
    parser.add_argument("--task-s", type=float, default=0.5, help="seconds per task (0.5)")
    parser.add_argument("--empty", type=int, default=500, help="empty tasks in one map (500)")
    args = parser.parse_args()

    steps = steps_for(args.task_s)
    work = [(seed, steps) for seed in task_seeds(2026, args.tasks)]
    print(f"{args.tasks} CPU-bound tasks of {steps} steps (~{args.task_s} s each here); "
          f"{args.empty} empty tasks per bulk map")
    print(f"{'executor':<16} {'start s':>8} {'round trip ms':>14} {'ms/task bulk':>13} "
          f"{'CPU-bound s':>12}")

    results: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    modes: list[tuple[str, int | None]] = [("in-process", None), ("1 worker", 1), ("2 workers", 2)]
    for name, workers in modes:
        started = time.perf_counter()
        with open_executor(workers=workers) as executor:  # None: in-process
            start_s = time.perf_counter() - started
            single, bulk = overheads(executor, round_trips=30, many=args.empty)
            began = time.perf_counter()
            results[name] = executor.map(logistic_orbit, work, label="cpu")
            seconds[name] = time.perf_counter() - began
        print(f"{name:<16} {start_s:>8.2f} {single * 1e3:>14.2f} {bulk * 1e3:>13.3f} "
              f"{seconds[name]:>12.2f}")

    same = results["in-process"] == results["1 worker"] == results["2 workers"]
    print(f"load average during the run (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"speed-up, 2 workers against 1: {seconds['1 worker'] / seconds['2 workers']:.2f}x "
          f"(results identical in all three: {same})")


if __name__ == "__main__":  # Dask spawns worker processes, which re-import this file
    main()
