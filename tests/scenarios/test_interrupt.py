"""Ctrl-C: every command exits 130 with the one line ``interrupted``, no traceback.

A real ``carbonfed`` process in its own process group gets SIGINT sent to the whole group, as a
terminal does (its worker processes get it too), once it has shown on stderr that it is at work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.processes import ADMIN, HOST, free_port, wait_for

INTERRUPTED = 130


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    return subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", *args], cwd=cwd, env={**base, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # a test run in the background inherits SIGINT ignored; a terminal's child does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt(process: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C to the process group; the exit code and what stderr said after it."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, err


def at_work(process: subprocess.Popen) -> str:
    """The first line the command writes to stderr (its progress): it is past its imports."""
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line, f"exited before any progress: {process.wait()}"
    return line


def assert_interrupted(code: int, err: str) -> None:
    assert code == INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = err.strip().splitlines()
    assert lines[-1] == "interrupted" and lines.count("interrupted") == 1, err


@pytest.mark.parametrize("args", [
    ["run", "default", "--seeds", "100"],
    ["market", "default", "--value", "simulate"],
    ["sweep", "default", "--seeds", "100"],
])
def test_ctrl_c_during_a_command_is_one_line_and_exit_130(tmp_path, args):
    process = start(args, tmp_path)
    at_work(process)
    code, err = interrupt(process)
    assert_interrupted(code, err)
    # before the one line, at most the progress lines written before the signal arrived
    assert all(": " in line and "rror" not in line for line in err.splitlines()[:-1]), err


def test_ctrl_c_with_dask_workers_prints_no_worker_traceback(tmp_path):
    """The workers are in the group too: they ignore SIGINT and the CLI shuts them down (Dask
    may log that it cancelled their tasks; no traceback)."""
    process = start(["sweep", "default", "--seeds", "100", "--workers", "2"], tmp_path)
    while "sweep: started" not in at_work(process):
        pass
    assert_interrupted(*interrupt(process))


def test_ctrl_c_stops_serve_and_a_waiting_agent(tmp_path):
    port = free_port()
    server = start(["serve", "--db", "fed.db", "--port", str(port)], tmp_path,
                   {"CARBONFED_ADMIN_TOKEN": ADMIN})
    try:
        wait_for(lambda: httpx.get(f"http://{HOST}:{port}/v1/health").status_code == 200,
                 "broker", [server])
    except AssertionError:
        interrupt(server)
        raise
    code, err = interrupt(server)
    assert code == INTERRUPTED and err.strip() == "interrupted", err

    config = tmp_path / "north.yaml"
    config.write_text("site: {id: north, zone: hydro, gpus: {V100: 2}}\n"
                      "signals: {carbon_g_per_kwh: {kind: constant, value: 30},\n"
                      "          price_usd_per_mwh: {kind: constant, value: 80}}\n")
    agent = start(["agent", str(config), "--broker", f"http://{HOST}:{free_port()}"], tmp_path)
    assert agent.stdout is not None
    assert "broker unreachable" in agent.stdout.readline()  # retrying: at work
    code, err = interrupt(agent)
    assert code == INTERRUPTED and err.strip() == "interrupted", err
