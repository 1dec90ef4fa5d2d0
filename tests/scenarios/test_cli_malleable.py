"""``carbonfed run examples/spike.yaml``, read from a real subprocess as a user pipes it: the
report's pause row and ``pieces.csv``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SPIKE = Path(__file__).parents[2] / "examples" / "spike.yaml"


def test_a_pause_shows_in_the_report_and_in_pieces_csv(tmp_path):
    """milp pauses the job over the spike (one pause, two pieces of 1 h of work each, the
    second after 0.2 h of overhead); isolated runs it through (one piece)."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(SPIKE),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pauses = next(line for line in done.stdout.splitlines() if line.startswith("│ pauses"))
    assert [c.strip() for c in pauses.split("│") if c.strip()] == ["pauses", "1", "0"]
    pieces = pd.read_csv(out / "pieces.csv")
    jobs = pd.read_csv(out / "jobs.csv").set_index("policy")
    milp = pieces[pieces["policy"] == "milp"]
    assert list(milp["from_h"]) == [0.0, 2.0]
    assert list(milp["overhead_h"].round(9)) == [0.0, 0.2]
    assert milp["steps"].sum() == pytest.approx(jobs.loc["milp", "work_steps"], rel=1e-12)
    assert (milp["steps"] / milp["steps"].sum()).round(9).tolist() == [0.5, 0.5]
    assert len(pieces[pieces["policy"] == "isolated"]) == 1
