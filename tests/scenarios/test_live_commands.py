"""``carbonfed serve``, ``agent`` and ``admin``: bad input is one line and exit 2.

Errors raised before anything serves run in-process (``main``; stdout is captured, so not a
terminal); what needs a broker uses a real ``carbonfed serve`` and real agent processes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from scenarios.cli import main
from tests.api.processes import ADMIN, HOST, V100_STEPS_PER_S, free_port, kill, serving, wait_for

SITE = {"id": "north", "zone": "hydro", "pue": 1.1, "gpus": {"V100": 2}}
SIGNALS = {"carbon_g_per_kwh": {"kind": "constant", "value": 30},
           "price_usd_per_mwh": {"kind": "constant", "value": 80}}


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    return subprocess.run([sys.executable, "-m", "scenarios.cli", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def main_in(cwd: Path, monkeypatch, capsys, *args: str) -> subprocess.CompletedProcess:
    """``carbonfed ARGS`` in this process (no CARBONFED_ variables), as a CompletedProcess."""
    for name in [k for k in os.environ if k.startswith("CARBONFED_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(cwd)
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


HAS_PSYCOPG = importlib.util.find_spec("psycopg") is not None
needs_psycopg = pytest.mark.skipif(not HAS_PSYCOPG, reason="psycopg not installed (the "
                                   "postgres extra); the driver-missing error is tested instead")


def agent_file(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "north.yaml"
    path.write_text(yaml.safe_dump({"site": SITE, "signals": SIGNALS, **extra}))
    return path


@pytest.mark.parametrize(("args", "says"), [
    (["--db", "no/such/dir/x.db"], "does not exist"),
    (["--db", "mysql://u@h/db"], "unsupported database 'mysql'"),
    pytest.param(["--db", "postgresql://u:pw@127.0.0.1:1/db"],
                 "cannot use postgresql://u:***@127.0.0.1:1", marks=needs_psycopg),
    (["--slot-h", "0.7"], "--slot-h / CARBONFED_SLOT_H: slot_h=0.7 does not divide an hour"),
    (["--slot-h", "1.5"], "slot_h=1.5 is not a whole number of hours"),
    (["--port", "-5"], "--port: -5 is not in 1..65535"),
    (["--port", "http"], "not a port number"),
    (["--lease-s", "0"], "--lease-s / CARBONFED_LEASE_S: Input should be greater than 0"),
    (["--admin-token", "short"], "32 bytes of entropy"),
])
def test_serve_bad_settings(tmp_path, monkeypatch, capsys, args, says):
    line = one_line_error(main_in(tmp_path, monkeypatch, capsys, "serve", *args))
    assert says in line and "pw" not in line
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("command", ["serve", "db upgrade"])
def test_postgresql_without_its_driver_names_the_extra(tmp_path, monkeypatch, capsys, command):
    """A plain ``pip install carbonfed`` has no psycopg: one line saying what to install, not
    SQLAlchemy's traceback (``None`` in sys.modules makes the import fail, as on such a
    machine)."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    done = main_in(tmp_path, monkeypatch, capsys, *command.split(), "--db",
                   "postgresql://u:pw@127.0.0.1:1/db")
    line = one_line_error(done)
    assert line == ('error: --db: PostgreSQL needs the psycopg driver, which is not installed: '
                    'pip install "carbonfed[postgres]"')
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_port_in_use_creates_nothing_and_prints_no_token(tmp_path, monkeypatch,
                                                                     capsys):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = main_in(tmp_path, monkeypatch, capsys, "serve", "--db", "fed.db", "--port", port)
    line = one_line_error(done)
    assert "Address already in use" in line and done.stdout == ""
    assert not (tmp_path / "fed.db").exists()


def test_serve_without_a_terminal_never_prints_a_generated_token(tmp_path, monkeypatch, capsys):
    done = main_in(tmp_path, monkeypatch, capsys, "serve", "--db", "fed.db", "--port",
                   str(free_port()))
    assert "CARBONFED_ADMIN_TOKEN" in one_line_error(done) and done.stdout == ""
    assert list(tmp_path.iterdir()) == []  # refused before the database was made


def test_serve_without_a_token_starts_on_a_database_that_stores_one_and_names_the_dashboard(
        tmp_path):
    """The refusal is only for a database with no stored admin token: one made by a start
    with the token serves without it. On start, serve prints the dashboard's address."""
    from api.db import Database
    from api.services import Services
    from api.settings import Settings

    db = Database(f"sqlite:///{tmp_path / 'fed.db'}")
    Services.build(db, Settings(db_url=db.url, admin_token=ADMIN)).start(
        may_generate_admin_token=False)
    db.dispose()
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "scenarios.cli", "serve", "--db", "fed.db", "--port", str(port)],
        cwd=tmp_path, env=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        wait_for(lambda: httpx.get(f"http://{HOST}:{port}/v1/health").status_code == 200,
                 "broker", [server])
    finally:
        kill(server)
    assert first.startswith(f"carbonfed broker on http://{HOST}:{port}")
    assert f"dashboard: http://{HOST}:{port}/dashboard" in first, first


@pytest.mark.parametrize(("args", "says"), [
    (["--broker", "not-a-url"], "--broker: not an http(s) URL with a host: 'not-a-url'"),
    (["--broker", "ftp://x"], "not an http(s) URL"),
    (["--broker", "http://127.0.0.1:1", "--duration-s", "-1"], "--duration-s: must be > 0"),
])
def test_agent_bad_arguments(tmp_path, monkeypatch, capsys, args, says):
    begun = time.monotonic()
    line = one_line_error(main_in(tmp_path, monkeypatch, capsys, "agent",
                                  str(agent_file(tmp_path)), *args))
    assert says in line and time.monotonic() - begun < 20


def test_agent_says_the_broker_is_unreachable_and_fails_at_its_duration(tmp_path, monkeypatch,
                                                                        capsys):
    """An agent that never reached its broker has not done its job: exit 1 and one line
    saying so once its time is up (it said each retry on the way)."""
    config = agent_file(tmp_path, backoff={"initial_s": 0.2, "max_s": 0.5,
                                           "give_up_after_s": 300})
    begun = time.monotonic()
    dead = f"http://{HOST}:{free_port()}"
    done = main_in(tmp_path, monkeypatch, capsys, "agent", str(config), "--broker", dead,
                   "--duration-s", "2")
    assert done.returncode == 1 and time.monotonic() - begun < 20
    lines = done.stdout.strip().splitlines()
    assert lines and all("broker unreachable (" in x and "retrying, next try in" in x
                         for x in lines), done.stdout
    assert done.stderr.splitlines() == [
        f"error: the broker at {dead} never answered (ConnectError: [Errno 111] Connection "
        "refused)"], done.stderr


def test_agent_config_slot_h_follows_the_scenarios_rule(tmp_path, monkeypatch, capsys):
    line = one_line_error(main_in(tmp_path, monkeypatch, capsys, "agent",
                                  str(agent_file(tmp_path, slot_h=0.7)), "--broker",
                                  f"http://{HOST}:1", "--duration-s", "1"))
    assert "slot_h" in line and "slot_h=0.7 does not divide an hour" in line


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("broker")
    env = {"CARBONFED_ADMIN_TOKEN": ADMIN, "CARBONFED_SLOT_H": "0.5"}
    with serving(tmp_path, env) as url:
        yield url, env


def test_admin_enrols_and_an_agent_with_the_wrong_slot_h_never_registers(tmp_path, broker):
    url, env = broker
    done = run("admin", "--broker", url, "enrol", "north", "--zone", "hydro", "--gpus",
               "V100=2", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    done = run("agent", str(agent_file(tmp_path)), "--broker", url, "--enrolment-token", token,
               "--duration-s", "10", cwd=tmp_path)
    line = one_line_error(done)
    assert "slot_h 1 differs from the broker's 0.5" in line
    listed = run("admin", "--broker", url, "list", cwd=tmp_path, env=env)
    assert listed.stdout.split()[:2] == ["north", "enrolled"]  # still unregistered
    # with the broker's slot length it registers and says so, one line per event
    done = run("agent", str(agent_file(tmp_path, slot_h=0.5, offer_interval_s=0.5)), "--broker",
               url, "--enrolment-token", token, "--duration-s", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[:2] == [
        "registered as site north", "offer sent; sending one every 0.5 s"]
    assert (tmp_path / "north.state.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("args", "says"), [
    (["enrol", "x", "--zone", "z", "--gpus", "V100"], "--gpus: expected TYPE=COUNT"),
    (["disable", "nobody"], "disable: HTTP 404: no site 'nobody'"),
    (["enrol", "x", "--zone", "z", "--gpus", "X100=1"], "HTTP 422: body.gpus.X100: unknown"),
])
def test_admin_errors_are_one_line(tmp_path, broker, args, says):
    url, env = broker
    assert says in one_line_error(run("admin", "--broker", url, *args, cwd=tmp_path, env=env))


def test_admin_needs_a_token_and_a_reachable_broker(tmp_path, monkeypatch, capsys):
    done = main_in(tmp_path, monkeypatch, capsys, "admin", "list")
    assert "CARBONFED_ADMIN_TOKEN" in one_line_error(done)
    monkeypatch.setenv("CARBONFED_ADMIN_TOKEN", ADMIN)
    done = subprocess.CompletedProcess([], main(
        ["admin", "--broker", f"http://{HOST}:{free_port()}", "list"]), "", "")
    done.stderr = capsys.readouterr().err
    assert "broker unreachable" in one_line_error(done)


@pytest.fixture(scope="module")
def south(broker, tmp_path_factory):
    """Site ``south`` enrolled and registered on the broker (jobs need an active home)."""
    url, env = broker
    done = run("admin", "--broker", url, "enrol", "south", "--zone", "coal", "--gpus",
               "V100=2,P100=4", cwd=tmp_path_factory.mktemp("south"), env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    r = httpx.post(f"{url}/v1/sites", headers={"Authorization": f"Bearer {token}"},
                   json={"id": "south", "zone": "coal", "gpus": {"V100": 2, "P100": 4},
                         "pue": 1.3, "egress_usd_per_gb": 0.02})
    assert r.status_code == 201, r.text
    return "south"


# Gavel's ResNet-50 (batch 64) on two P100s: the whole job's steps/s (not 2 x 2.6195 on one)
TWO_P100_RESNET50_STEPS_PER_S = 5.515986118186492


def test_submit_turns_hours_on_a_gpu_type_into_work_steps(tmp_path, broker, south):
    url, env = broker
    done = run("submit", "job-a", "--home", south, "--job-type", "resnet50", "--gpus", "2",
               "--hours", "1.5", "--on", "P100", "--deadline-h", "48", "--broker", url,
               cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    steps = 1.5 * 3600 * TWO_P100_RESNET50_STEPS_PER_S  # 29,786.3
    assert done.stdout.splitlines() == [
        f"job job-a queued: home south, resnet50 on 2 GPU(s), {steps:,.1f} steps = 1.5 h on "
        "2 x P100"]
    job = httpx.get(f"{url}/v1/jobs/job-a",
                    headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert job["work_steps"] == pytest.approx(steps, rel=1e-12)
    assert (job["gpus"], job["deadline_h"], job["status"]) == (2, 48.0, "queued")


def test_submit_count_sends_one_batch_and_json_is_the_brokers_answer(tmp_path, broker, south):
    url, env = broker
    done = run("submit", "job-b", "--count", "3", "--home", south, "--job-type", "resnet50",
               "--hours", "1", "--broker", url, "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["accepted"] == 3
    assert [j["id"] for j in answer["jobs"]] == ["job-b-1", "job-b-2", "job-b-3"]
    assert [j["work_steps"] for j in answer["jobs"]] == pytest.approx(
        [V100_STEPS_PER_S * 3600] * 3, rel=1e-12)


def test_submit_a_moldable_job(tmp_path, broker, south):
    """--min-gpus/--max-gpus send the range; the broker stores it beside the asked count."""
    url, env = broker
    done = run("submit", "job-m", "--home", south, "--job-type", "resnet50", "--gpus", "2",
               "--min-gpus", "1", "--max-gpus", "4", "--hours", "1", "--broker", url,
               "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)  # one job: the broker's answer for it
    assert (job["gpus"], job["min_gpus"], job["max_gpus"]) == (2, 1, 4)
    half = run("submit", "job-n", "--home", south, "--job-type", "resnet50", "--min-gpus", "1",
               "--hours", "1", "--broker", url, cwd=tmp_path, env=env)
    assert half.returncode == 2
    assert half.stderr.strip() == ("error: --min-gpus: give --min-gpus and --max-gpus "
                                   "together (moldable)")


def test_submit_a_preemptible_job(tmp_path, broker, south):
    """--preemptible with its checkpoint overhead reaches the broker; an overhead alone is a
    one-line error."""
    url, env = broker
    done = run("submit", "job-p", "--home", south, "--job-type", "resnet50", "--hours", "1",
               "--preemptible", "--checkpoint-overhead-h", "0.1", "--broker", url, "--json",
               cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["preemptible"] is True
    alone = run("submit", "job-q", "--home", south, "--job-type", "resnet50", "--hours", "1",
                "--checkpoint-overhead-h", "0.1", "--broker", url, cwd=tmp_path, env=env)
    assert alone.returncode == 2
    assert alone.stderr.strip() == "error: --checkpoint-overhead-h: 0.1: needs --preemptible"


@pytest.mark.parametrize(("args", "says"), [
    (["--home", "nowhere", "--job-type", "resnet50", "--hours", "1"],
     "error: submit: HTTP 422: body.home_site: no active site 'nowhere'"),
    (["--home", "south", "--job-type", "resnet50", "--hours", "1", "--on", "X1"],
     "error: --on: resnet50 does not run on X1"),
    (["--home", "south", "--job-type", "resnet50", "--hours", "1", "--work-steps", "5"],
     "error: --hours: give the work as --hours H (on --on GPU) or --work-steps N, one of them"),
])
def test_submit_errors_are_one_line(tmp_path, broker, south, args, says):
    url, env = broker
    line = one_line_error(run("submit", "job-c", *args, "--broker", url, cwd=tmp_path, env=env))
    assert line.startswith(says), line
