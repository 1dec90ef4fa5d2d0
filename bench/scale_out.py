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
from contextlib import ExitStack

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
    parser.add_argument("--rounds", type=int, default=3, help="CPU-bound rounds per mode (3)")
    args = parser.parse_args()

    steps = steps_for(args.task_s)
    work = [(seed, steps) for seed in task_seeds(2026, args.tasks)]
    print(f"{args.tasks} CPU-bound tasks of {steps} steps (~{args.task_s} s each here); "
          f"{args.empty} empty tasks per bulk map; "
          f"{args.rounds} rounds, 1 and 2 workers interleaved")
    print(f"{'executor':<12} {'start s':>8} {'round trip ms':>14} {'ms/task bulk':>13} "
          f"{'CPU-bound s (median)':>21}")

    rows: dict[str, tuple[float, float, float]] = {}
    seconds: dict[str, list[float]] = {}
    results: dict[str, list[float]] = {}

    def cpu_bound_rounds(executors: dict[str, Executor]) -> None:
        # Interleaved rounds: this machine is shared, and a burst of someone else's load then
        # falls on every mode rather than on one.
        for _ in range(args.rounds):
            for name, executor in executors.items():
                began = time.perf_counter()
                results[name] = executor.map(logistic_orbit, work, label="cpu")
                seconds.setdefault(name, []).append(time.perf_counter() - began)

    # In-process first and alone: a LocalCluster's scheduler runs in this process, in a thread
    # that would compete with the in-process tasks for the CPU and the GIL.
    with open_executor() as executor:
        rows["in-process"] = (0.0, *overheads(executor, round_trips=30, many=args.empty))
        cpu_bound_rounds({"in-process": executor})
    with ExitStack() as stack:
        executors: dict[str, Executor] = {}
        for name, workers in (("1 worker", 1), ("2 workers", 2)):
            started = time.perf_counter()
            executors[name] = stack.enter_context(open_executor(workers=workers))
            start_s = time.perf_counter() - started
            rows[name] = (start_s, *overheads(executors[name], round_trips=30, many=args.empty))
        cpu_bound_rounds(executors)
    for name, (start_s, single, bulk) in rows.items():
        print(f"{name:<12} {start_s:>8.2f} {single * 1e3:>14.2f} {bulk * 1e3:>13.3f} "
              f"{statistics.median(seconds[name]):>21.2f}")

    same = results["in-process"] == results["1 worker"] == results["2 workers"]
    one, two = seconds["1 worker"], seconds["2 workers"]
    per_round = [a / b for a, b in zip(one, two, strict=True)]
    median_speedup = statistics.median(one) / statistics.median(two)
    print(f"speed-up, 2 workers against 1: {median_speedup:.2f}x on medians "
          f"(rounds: {', '.join(f'{x:.2f}x' for x in per_round)}); "
          f"results identical in all three: {same}")
    print(f"load average at the end (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":  # Dask spawns worker processes, which re-import this file
    main()
