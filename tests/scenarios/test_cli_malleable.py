"""``carbonfed run`` with preemptible and elastic jobs, read from a real subprocess as a user
pipes it: the report's pause row and ``pieces.csv``."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

# One V100 whose grid spikes in the second hour; the broker sees two hours ahead, so the spike
# is out of sight when the 2 h job starts (tests/broker/test_replanning.py works it by hand).
SPIKE = """\
name: spike
start: "2023-06-05T00:00:00Z"
period_h: 2
slot_h: 1
horizon_h: 2
drain_h: 6
carbon_price_usd_per_t: 100
policies: [milp, isolated]
zones:
  z:
    carbon_g_per_kwh: {kind: hourly, values: [100, 900, 100]}
    price_usd_per_mwh: {kind: constant, value: 50}
sites:
  - {id: a, zone: z, pue: 1.0, gpus: {V100: 1}}
workload:
  kind: list
  reference_gpu: V100
  jobs:
    - {id: j, home_site: a, job_type: resnet50, gpus: 1, reference_runtime_h: 2, submit_h: 0,
       preemptible: true, checkpoint_overhead_h: 0.1}
"""


def test_a_pause_shows_in_the_report_and_in_pieces_csv(tmp_path):
    """milp pauses the job over the spike (one pause, two pieces of 1 h of work each, the
    second after 0.2 h of overhead); isolated runs it through (one piece)."""
    scenario = tmp_path / "spike.yaml"
    scenario.write_text(SPIKE)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "scenarios.cli", "run", str(scenario),
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
