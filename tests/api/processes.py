"""Real processes for end-to-end tests: ``carbonfed serve``, ``carbonfed agent``, ``admin``.

Every wait has a deadline; every process is started in its own session and killed in the
``processes`` fixture's ``finally`` (``conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import yaml

ADMIN = "e2e-admin-token-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"
HOST = "127.0.0.1"
DEADLINE_S = 45.0
V100_STEPS_PER_S = 4.394774823323071  # resnet50 on a V100 (Gavel)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def carbonfed(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", *args], env=env, stdout=out,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def carbonfed_run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def wait_for(check: Callable[[], bool], what: str, alive: list[subprocess.Popen],
             timeout_s: float = DEADLINE_S) -> None:
    ends = time.monotonic() + timeout_s
    while time.monotonic() < ends:
        dead = [p.args for p in alive if p.poll() is not None]
        if dead:
            raise AssertionError(f"while waiting for {what}: exited early: {dead}")
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextlib.contextmanager
def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """``carbonfed serve`` on a free port in ``tmp_path`` (its SQLite file and log there), with
    this environment's ``CARBONFED_*`` variables replaced by ``env``; yields its URL."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    log = (tmp_path / "broker.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "serve", "--db", "broker.db", "--port",
         str(port)], cwd=tmp_path, env={**base, **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/v1/health").status_code == 200, "broker", [server])
        yield url
    finally:
        kill(server)
        log.close()


def enrol(site: dict, url: str, env: dict[str, str]) -> str:
    """Enrol a site through ``carbonfed admin enrol``; returns its one-time enrolment token."""
    gpus = ",".join(f"{g}={n}" for g, n in site["gpus"].items())
    done = carbonfed_run("admin", "--broker", url, "enrol", site["id"], "--zone", site["zone"],
                         "--gpus", gpus, "--pue", str(site["pue"]), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    [line] = [x for x in done.stdout.splitlines() if x.startswith("enrolment token")]
    return line.rsplit(" ", 1)[-1]


def agent_config(site: dict, tmp_path: Path, **schedule: object) -> Path:
    config = {"site": {k: site[k] for k in ("id", "zone", "pue", "gpus")},
              "signals": site["signals"], "slot_h": 1, "horizon_slots": 6,
              "offer_interval_s": 0.3, "poll_interval_s": 0.2, "time_scale": 3600,
              "signal_start": "2023-06-05T00:00:00Z", "signal_hours": 48,
              "backoff": {"initial_s": 0.05, "max_s": 0.5, "give_up_after_s": 30}, **schedule}
    path = tmp_path / f"{site['id']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
