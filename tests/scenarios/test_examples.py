"""The files in examples/ work as their comments say."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml

from scenarios.cli import main
from scenarios.schema import Scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


def test_every_field_example_sets_every_scenario_field():
    written = yaml.safe_load((EXAMPLES / "every-field.yaml").read_text())
    assert set(Scenario.model_fields) - {"affinity_file", "gpu_power_file"} <= set(written)


def test_every_field_example_runs(tmp_path):
    code, out = run_cli("run", str(EXAMPLES / "every-field.yaml"), "--policies",
                        "milp,isolated", "--out", str(tmp_path))
    assert code == 0 and "Savings of milp against isolated" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["policies"]["milp"]["idle_energy_kwh"] > 0  # V100 and L4 idle power


def test_game_example_gives_the_hand_computed_shapley_value():
    """Orders of (montreal, frankfurt, phoenix) and montreal's marginal costs: first 12 (two
    orders), after frankfurt 27 - 20 = 7, after phoenix 24 - 15 = 9, last 38 - 31 = 7 (two):
    (24 + 7 + 9 + 14) / 6 = 9; likewise frankfurt 16.5 and phoenix 12.5."""
    code, out = run_cli("game", str(EXAMPLES / "game.json"), "--json")
    assert code == 0
    shapley = json.loads(out)["allocations"]["shapley"]
    assert shapley == pytest.approx({"montreal": 9.0, "frankfurt": 16.5, "phoenix": 12.5})


def test_the_live_quickstart_runs_end_to_end(tmp_path):
    """examples/live-quickstart.sh: a real broker and two real agents on 127.0.0.1, three jobs
    submitted with curl, all completed; the summary and the ledger come back as JSON."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(["bash", str(EXAMPLES / "live-quickstart.sh")], capture_output=True,
                          text=True, timeout=240, check=False,
                          env={**__import__("os").environ, "PORT": str(port),
                               "WORK": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    summary = json.loads(lines[lines.index("summary:") + 1])
    ledger = json.loads(lines[lines.index("ledger:") + 1])
    assert summary["jobs"] == {"completed": 3}
    assert sum(ledger["balances_usd"].values()) == pytest.approx(0.0, abs=1e-12)
    for row in ledger["rows"]:
        assert row["payer"] == "south" and row["payee"] == "north"


def test_the_docs_scenario_example_runs_as_written(tmp_path):
    """The YAML block of the docs' "Scenario files" page (it was the README's), saved beside the
    CSV it reads, runs through the CLI with every policy it lists (the page says so)."""
    page = (EXAMPLES.parent / "docs" / "researchers" / "scenarios.md").read_text()
    section = page.split("# Scenario files", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my.yaml").write_text(block)
    (tmp_path / "grid-b-carbon.csv").write_text((EXAMPLES / "grid-b-carbon.csv").read_text())
    code, out = run_cli("run", str(tmp_path / "my.yaml"))
    assert code == 0
    policies = yaml.safe_load(block)["policies"]
    header = next(line for line in out.splitlines() if "metric" in line)
    assert all(p in header for p in policies)
