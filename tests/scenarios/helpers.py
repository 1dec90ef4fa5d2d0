"""Small hand-checkable federations and scenarios shared by the sites/broker/scenarios tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.jobs import Job
from broker.planner import PlannerConfig
from broker.policy_registry import POLICIES
from broker.simulation import SimulationResult, SimulationSetup, run_simulation
from scenarios.build import ScenarioRun, build_run
from scenarios.loader import parse_scenario
from sites import DEFAULT_GPUS, AffinityMatrix, ListSignal, SiteSpec

# Toy affinity (steps/s per GPU): "toy" runs twice as fast on V100 as on K80; "v100only" has no
# K80 entry, so it does not run there (missing entries are 0).
TOY_AFFINITY = AffinityMatrix.from_nested({
    "toy": {"V100": 2.0, "K80": 1.0},
    "v100only": {"V100": 1.0},
})

START = pd.Timestamp("2023-06-05T00:00:00Z")


def steps_for(hours: float, gpus: int, steps_per_s: float) -> float:
    """Work that takes ``hours`` on ``gpus`` GPUs doing ``steps_per_s`` each."""
    return hours * gpus * steps_per_s * 3600.0


def toy_federation(
    sites: Mapping[str, Mapping[str, int]],
    pue: Mapping[str, float] | None = None,
    egress_usd_per_gb: float = 0.0,
    affinity: AffinityMatrix = TOY_AFFINITY,
) -> Federation:
    """Sites named by id with their GPUs; every site is in a zone of its own name."""
    pue = pue or {}
    specs = tuple(
        SiteSpec(site_id, site_id, dict(gpus), pue.get(site_id, 1.0), egress_usd_per_gb)
        for site_id, gpus in sites.items()
    )
    return Federation(specs, DEFAULT_GPUS, affinity)


def signal_array(per_site: Sequence[Sequence[float]], n_slots: int) -> np.ndarray:
    """One row per site: the given hourly values, the last one repeating (``ListSignal``)."""
    rng = np.random.default_rng(0)
    return np.vstack([ListSignal(tuple(v)).hourly(START, n_slots, rng) for v in per_site])


def make_setup(
    federation: Federation,
    jobs: Sequence[Job],
    carbon: Sequence[Sequence[float]],
    price: Sequence[Sequence[float]] | None = None,
    period_slots: int = 6,
    drain_slots: int = 12,
    horizon_slots: int = 12,
    n_slots: int = 64,
) -> SimulationSetup:
    """Hourly slots; ``carbon`` and ``price`` give each site's hourly values (last one repeats)."""
    if price is None:
        price = [[50.0]] * len(federation.sites)
    return SimulationSetup(
        federation=federation,
        jobs=tuple(jobs),
        carbon_g_per_kwh=signal_array(carbon, n_slots),
        price_usd_per_mwh=signal_array(price, n_slots),
        slot_h=1.0,
        period_slots=period_slots,
        drain_slots=drain_slots,
        horizon_slots=horizon_slots,
    )


def simulate(
    setup: SimulationSetup, policy: str, config: PlannerConfig | None = None
) -> SimulationResult:
    config = config or PlannerConfig()
    return run_simulation(setup, POLICIES[policy](setup.federation, config), policy)


def by_job(result: SimulationResult) -> dict[str, dict]:
    """The per-job frame as ``{job_id: row}``."""
    return {row["job_id"]: row for row in result.jobs.to_dict("records")}


# A small valid scenario: two sites, a job list. Bad-input tests change one thing each.
BASE_SCENARIO = """\
name: base
description: two sites, three jobs
start: "2023-06-05T00:00:00Z"
period_h: 6
slot_h: 1
horizon_h: 6
drain_h: 12
seed: 7
carbon_price_usd_per_t: 50
policies: [milp, isolated, greedy-carbon, greedy-price, temporal]
zones:
  clean:
    carbon_g_per_kwh: {kind: constant, value: 50}
    price_usd_per_mwh: {kind: constant, value: 60}
  dirty:
    carbon_g_per_kwh: {kind: hourly, values: [400, 400, 600, 600, 600, 600]}
    price_usd_per_mwh: {kind: constant, value: 30}
sites:
  - {id: north, zone: clean, pue: 1.1, gpus: {V100: 2}}
  - {id: south, zone: dirty, pue: 1.3, gpus: {K80: 2, P100: 1}}
workload:
  kind: list
  reference_gpu: V100
  jobs:
    - {id: a, home_site: south, job_type: resnet50, gpus: 1, reference_runtime_h: 1, submit_h: 0}
    - {id: b, home_site: south, job_type: lm, gpus: 1, reference_runtime_h: 2, submit_h: 1,
       deadline_h: 9}
    - {id: c, home_site: north, job_type: transformer, gpus: 2, reference_runtime_h: 1, submit_h: 2}
"""

# A small synthetic-workload scenario (a day of arrivals on two sites).
SYNTHETIC_SCENARIO = """\
name: synth
period_h: 24
slot_h: 1
horizon_h: 8
drain_h: 24
seed: {seed}
carbon_price_usd_per_t: 100
policies: {policies}
zones:
  clean:
    carbon_g_per_kwh: {{kind: synthetic, mean: 80, amplitude: 10, noise_sd: 0.1}}
    price_usd_per_mwh: {{kind: synthetic, mean: 60, amplitude: 20, noise_sd: 0.1, floor: -50}}
  dirty:
    carbon_g_per_kwh: {{kind: synthetic, mean: 500, amplitude: 80, solar_dip: 150, noise_sd: 0.1}}
    price_usd_per_mwh: {{kind: synthetic, mean: 40, amplitude: 20, noise_sd: 0.1, floor: -50}}
sites:
  - {{id: north, zone: clean, pue: 1.1, gpus: {{V100: 4, A100: 2}}}}
  - {{id: south, zone: dirty, pue: 1.4, gpus: {{K80: 6, P100: 4}}}}
workload:
  kind: synthetic
  jobs_per_hour: 3
  gpu_counts: [1, 2, 4]
  gpu_count_weights: [0.7, 0.2, 0.1]
  median_runtime_h: 1.5
  max_runtime_h: 8
  deadline_fraction: 0.3
"""

ALL_POLICIES = f"[{', '.join(POLICIES)}]"


def synthetic_text(seed: int = 3, policies: str = ALL_POLICIES) -> str:
    return SYNTHETIC_SCENARIO.format(seed=seed, policies=policies)


def build_from_text(text: str, base_dir: Path | None = None) -> ScenarioRun:
    return build_run(parse_scenario(text, "test.yaml", base_dir or Path.cwd()))


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``carbonfed ARGV`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from scenarios.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
