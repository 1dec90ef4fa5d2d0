"""Every ``--json`` output of the CLI is JSON, read as a user pipes it: a real ``carbonfed``
process, its stdout (file descriptor 1, where C++ libraries write too) through a pipe, parsed
whole with ``json.loads``.

The ``--json`` flags: ``game``, ``market``, ``data describe``, ``admin`` (every action) and
``submit`` (``grep -rn json scenarios/commands``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.processes import ADMIN, serving
from tests.realdata import DATA_DIR, needs_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def carbonfed_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    """``carbonfed ARGS`` in a subprocess: exit 0, and stdout is one JSON document."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", *args], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"not JSON ({error}): {done.stdout[:300]!r}") from None


def test_game_json(tmp_path):
    got = carbonfed_json("game", str(EXAMPLES / "game.json"), "--json", cwd=tmp_path)
    assert got["players"] == ["montreal", "frankfurt", "phoenix"]
    assert got["allocations"]["shapley"] == pytest.approx(
        {"montreal": 9.0, "frankfurt": 16.5, "phoenix": 12.5})


def test_game_json_with_verbose_keeps_the_log_on_stderr(tmp_path):
    """--verbose logs HiGHS's banner (debug) to stderr; stdout stays JSON."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARBONFED_")}
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "--verbose", "game",
                           str(EXAMPLES / "game.json"), "--json"], cwd=tmp_path, env=base,
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout)["players"] == ["montreal", "frankfurt", "phoenix"]
    assert "optimization.solver DEBUG Running HiGHS" in done.stderr


@pytest.mark.parametrize("extra", [
    [],
    ["--carbon-prices", "0,100"],
    ["--policy", "cap", "--cap-t", "0.01"],
    ["--out", "market-out"],  # the "wrote ..." lines are not printed with --json
])
def test_market_json(tmp_path, extra):
    got = carbonfed_json("market", "tiny", "--json", *extra, cwd=tmp_path)
    assert got["scenario"] == "tiny" and got["sites"] == ["north", "south"]
    if extra[:1] == ["--out"]:
        assert (tmp_path / "market-out" / "report.html").is_file()


def test_data_describe_json_without_the_data_folder(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("Datetime (UTC),Price (USD/MWh)\n2023-01-01 00:00:00,10\n"
                    "2023-01-01 01:00:00,30\n")
    got = carbonfed_json("data", "describe", str(path), "--json", cwd=tmp_path)
    assert (got["kind"], got["rows"]) == ("price", 2)
    assert got["columns"]["price_usd_per_mwh"]["mean"] == 20.0


@needs_data
@pytest.mark.parametrize("path", [
    "grid/carbon/DE-LU_2023_hourly.csv", "grid/prices/DE-LU_2023_hourly.csv",
    "grid/lwa/ger_ci.csv", "gpu/gavel_throughputs.json", "gpu/gpus_tdp.csv",
    "jobs/gavel_philly/0e4a51.trace", "jobs/alibaba_v2023/openb_node_list_gpu_node.csv",
    "jobs/pai_v2020_machine_spec.csv", "energy/zeus_power_v100.csv",
    "network/aws_transfer_cost_usd_per_gb.csv",
])
def test_data_describe_json_of_each_kind(tmp_path, path):
    assert DATA_DIR is not None
    got = carbonfed_json("data", "describe", str(DATA_DIR / path), "--json", cwd=tmp_path)
    assert got["kind"] and "rows" in got


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("json-broker")
    env = {"CARBONFED_ADMIN_TOKEN": ADMIN}
    with serving(tmp_path, env) as url:
        yield url, env


def test_admin_and_submit_json(tmp_path, broker):
    """Each admin action and submit, in an order that makes each one valid."""
    url, env = broker

    def admin(*args: str) -> Any:
        return carbonfed_json("admin", "--broker", url, "--json", *args, cwd=tmp_path, env=env)

    enrolled = admin("enrol", "west", "--zone", "hydro", "--gpus", "V100=2")
    assert enrolled["site"]["status"] == "enrolled" and enrolled["enrolment_token"]
    r = httpx.post(f"{url}/v1/sites",
                   headers={"Authorization": f"Bearer {enrolled['enrolment_token']}"},
                   json={"id": "west", "zone": "hydro", "gpus": {"V100": 2}, "pue": 1.2,
                         "egress_usd_per_gb": 0.02})
    assert r.status_code == 201, r.text
    assert [s["id"] for s in admin("list")] == ["west"]
    submitted = carbonfed_json("submit", "j1", "--home", "west", "--job-type", "resnet50",
                               "--hours", "2", "--broker", url, "--json", cwd=tmp_path, env=env)
    assert submitted["id"] == "j1" and submitted["status"] == "queued"
    for action in ("rotate-token", "reset-sequence", "disable", "enable", "deregister"):
        got = admin(action, "west")
        assert isinstance(got, dict), (action, got)
