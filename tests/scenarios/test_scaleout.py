"""The executor layer on real Dask: same floats in-process, on 1 and on 2 worker processes."""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import numpy as np
import pytest
from distributed import Client, LocalCluster, get_task_stream

from scenarios.dask_executor import DaskExecutor
from scenarios.progress import progress_reporter
from scenarios.scaleout import (
    InProcessExecutor,
    open_executor,
    task_seed,
    task_seeds,
)
from sites.errors import InputError

N_TASKS = 20


@dataclass(frozen=True)
class Draw:
    """A small picklable task: a seed and what to do with it."""

    seed: np.random.SeedSequence
    size: int = 300  # big enough that OpenBLAS splits the work over threads when it may
    pause_s: float = 0.0  # stands for I/O; keeps a task running while a test kills its worker


def spectrum(task: Draw) -> tuple[float, float, float]:
    """A pure function whose last bits depend on how BLAS/LAPACK sum (eigvalsh, solve)."""
    time.sleep(task.pause_s)
    rng = np.random.default_rng(task.seed)
    a = rng.standard_normal((task.size, task.size))
    gram = a @ a.T
    top = float(np.linalg.eigvalsh(gram)[-1])
    solved = float(np.linalg.solve(gram + np.eye(task.size), a[0]).sum())
    return top, solved, float(rng.random())


def fails_on_three(task: int) -> int:
    if task == 3:
        raise InputError("sweep.yaml", f"points[{task}].carbon_price", "must be >= 0 (got -1)")
    return task


def draws(pause_s: float = 0.0) -> list[Draw]:
    return [Draw(seed, pause_s=pause_s) for seed in task_seeds(2026, N_TASKS)]


@pytest.fixture(scope="module")
def reference() -> list[tuple[float, float, float]]:
    return InProcessExecutor().map(spectrum, draws(), label="draws")


@pytest.fixture(scope="module")
def two_workers() -> Iterator[LocalCluster]:
    """One 2-process cluster for the module, reached through ``open_executor(scheduler=...)``."""
    environ = dict(os.environ)  # the nannies write their workers' variables into ours
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster:
        yield cluster
    os.environ.clear()
    os.environ.update(environ)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_task_seeds_are_spawned_from_one_seed_sequence_by_index() -> None:
    spawned = np.random.SeedSequence(2026).spawn(5)
    ours = task_seeds(2026, 5)
    assert [s.generate_state(4).tolist() for s in ours] == \
        [s.generate_state(4).tolist() for s in spawned]
    # Task 3's seed does not depend on how many tasks the run has.
    assert task_seed(2026, 3).generate_state(4).tolist() == \
        task_seeds(2026, 50)[3].generate_state(4).tolist()
    assert len({tuple(s.generate_state(2)) for s in task_seeds(2026, 100)}) == 100


def test_in_process_keeps_task_order_and_reports_each_task() -> None:
    calls: list[tuple[str, int, int]] = []
    executor = InProcessExecutor(progress=lambda *call: calls.append(call))
    assert executor.map(fails_on_three, [5, 4, 0], label="ints") == [5, 4, 0]
    assert calls == [("ints", 0, 3), ("ints", 1, 3), ("ints", 2, 3), ("ints", 3, 3)]


def test_workers_option_gives_the_same_floats_and_shuts_its_cluster_down(
        reference, monkeypatch) -> None:
    environ = dict(os.environ)
    notices = io.StringIO()
    with open_executor(workers=1, stream=notices) as executor:
        assert isinstance(executor, DaskExecutor)
        pids = list(executor.client.run(os.getpid).values())
        assert len(pids) == 1 and pids[0] != os.getpid()
        # Dask's default MALLOC_TRIM_THRESHOLD_ slows numpy temporaries down (bench/scale_out.py).
        trim = executor.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert list(trim.values()) == [None]
        # Reached as a remote cluster, no note: it is the workers' environment that counts, not
        # this process's (a plain LocalCluster leaves the variable in its parent's environment).
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
        remote_notices = io.StringIO()
        with open_executor(scheduler=executor.client.scheduler.address, stream=remote_notices):
            assert "MALLOC_TRIM_THRESHOLD_" not in remote_notices.getvalue()
        dashboard = notices.getvalue().strip().removeprefix("Dask dashboard: ")
        assert httpx.get(dashboard, timeout=10).status_code == 200
        assert executor.map(spectrum, draws(), label="draws") == reference
    for pid in pids:  # the worker process is gone, not left running after the context
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    monkeypatch.undo()
    assert dict(os.environ) == environ  # the nanny's OMP_NUM_THREADS=1 etc. did not stay here


def test_two_worker_processes_share_the_work_and_give_the_same_floats(
        two_workers, reference) -> None:
    calls: list[tuple[str, int, int]] = []
    notices = io.StringIO()
    with open_executor(scheduler=two_workers.scheduler_address, stream=notices,
                       progress=lambda *call: calls.append(call)) as executor:
        assert isinstance(executor, DaskExecutor)
        # A cluster started the plain Dask way: its workers have MALLOC_TRIM_THRESHOLD_.
        assert "note: 2 Dask worker(s) run with MALLOC_TRIM_THRESHOLD_" in notices.getvalue()
        with get_task_stream(executor.client) as stream:
            results = executor.map(spectrum, draws(), label="draws")
        assert results == reference
        assert len({record["worker"] for record in stream.data}) == 2
    assert [done for _, done, _ in calls] == list(range(N_TASKS + 1))
    assert {(label, total) for label, _, total in calls} == {("draws", N_TASKS)}


def test_a_task_error_comes_back_as_the_same_one_line_error(two_workers) -> None:
    with open_executor(scheduler=two_workers.scheduler_address, stream=io.StringIO()) as executor:
        with pytest.raises(InputError) as raised:
            executor.map(fails_on_three, list(range(8)), label="points")
        assert str(raised.value) == \
            "sweep.yaml: points[3].carbon_price: must be >= 0 (got -1)"
        assert executor.map(fails_on_three, [], label="points") == []


def test_unreachable_scheduler_is_a_one_line_error_within_ten_seconds() -> None:
    address = f"tcp://127.0.0.1:{unused_port()}"
    started = time.monotonic()
    with pytest.raises(InputError) as raised, open_executor(scheduler=address):
        pass
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert message.startswith(f"--scheduler: {address}: no Dask scheduler answered")
    assert "\n" not in message


class Silent(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


def test_a_peer_that_is_no_scheduler_is_refused_within_ten_seconds(two_workers) -> None:
    # A web server accepts the connection and then waits: Client(timeout=...) alone hangs here.
    server = HTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outcome: list[BaseException] = []

    def attempt(address: str) -> None:
        try:
            with open_executor(scheduler=address):
                pass
        except BaseException as error:
            outcome.append(error)

    started = time.monotonic()
    runner = threading.Thread(target=attempt, args=(f"tcp://127.0.0.1:{server.server_port}",))
    runner.start()
    runner.join(timeout=20)  # a regression must fail the test, not hang the suite
    server.shutdown()
    assert not runner.is_alive()
    assert time.monotonic() - started < 10
    assert len(outcome) == 1 and isinstance(outcome[0], InputError)
    assert "no Dask scheduler answered" in str(outcome[0])

    with Client(two_workers) as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(InputError, match="a Dask Worker answered, not a scheduler"), \
            open_executor(scheduler=worker):
        pass


def test_bad_option_combinations_are_input_errors() -> None:
    with pytest.raises(InputError, match="not both"), \
            open_executor(workers=2, scheduler="tcp://127.0.0.1:8786"):
        pass
    with pytest.raises(InputError, match="at least 1"), open_executor(workers=0):
        pass
    with pytest.raises(InputError, match="not a scheduler address"), \
            open_executor(scheduler="127.0.0.1"):
        pass


def test_piped_progress_prints_a_line_per_tenth_of_the_tasks() -> None:
    piped = io.StringIO()
    with progress_reporter("tasks", piped) as progress:
        InProcessExecutor(progress).map(fails_on_three, list(range(10, 33)), label="points")
    lines = piped.getvalue().splitlines()
    assert len(lines) == 11  # the start, then one line per 10 %
    assert lines[0].startswith("points: started, 23 tasks")
    assert lines[-1].startswith("points: 23/23 tasks (100%")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_shows_tasks_done_of_all_and_an_eta() -> None:
    screen = FakeTerminal()
    with progress_reporter("tasks", screen) as progress:
        results = InProcessExecutor(progress).map(spectrum, draws()[:4], label="draws")
    assert len(results) == 4
    shown = screen.getvalue()
    assert "4/4" in shown and "ETA" in shown


# Last in the module: it kills one of the module cluster's workers (the nanny restarts it).
def test_a_killed_worker_has_its_task_rerun_and_the_results_are_the_same(
        two_workers, reference) -> None:
    killed: list[int] = []
    with open_executor(scheduler=two_workers.scheduler_address, stream=io.StringIO()) as executor:
        client = executor.client

        def kill_a_busy_worker(label: str, done: int, total: int) -> None:
            if done == 1 and not killed:  # a task is finished, others are running
                busy = next(address for address, keys in client.processing().items() if keys)
                pid = client.run(os.getpid, workers=[busy])[busy]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        executor.progress = kill_a_busy_worker
        assert executor.map(spectrum, draws(pause_s=0.3), label="draws") == reference
        assert len(killed) == 1
        assert killed[0] not in client.run(os.getpid).values()
        client.wait_for_workers(2, timeout=30)  # leave the cluster whole for its teardown
