"""Benchmark: "Let's Wait Awhile" (Wiesner et al., Middleware 2021) reproduced with carbonfed.

The paper's two temporal-shifting scenarios on its own 2020 carbon-intensity data (Germany 15
min; Great Britain 30 min, 15 min from 2020-10-31 on; France 30 min:
``grid/lwa/{ger,gb,fr}_ci.csv`` in the data folder),
one data centre per region, run through carbonfed's own simulation loop
(``broker.simulation.run_simulation``) and baselines:

- baseline: every job runs as soon as it arrives (``isolated``; one site, so it stays home);
- non-interrupting: ``temporal``, the cleanest contiguous window before the deadline;
- interrupting: ``temporal-preemptive``, the cleanest whole slots before the deadline, paused
  in between (``broker.options.cheapest_schedule``), on the same (preemptible) jobs.

**Scenario I (nightly jobs).** Followed: ``simulate.py`` ``periodic_experiment`` (and
``strategy.py`` ``BidirectionalStrategy.run``) of github.com/dos-group/lets-wait-awhile at
6f58b9e. One 30-minute job a day at 1:00 UTC (365 jobs, 1 Jan to 30 Dec 2020); with a window
of +-w hours it is submitted at 1:00 - w and must finish by 1:30 + w, so its start is any slot
of [1:00 - w, 1:00 + w] as in the paper (2w / 0.5 h + 1 candidate starts); w = 0 ... 8 h.

**Scenario II (ad hoc ML jobs).** Followed: ``simulate.py`` ``ml_experiment`` and
``generate_batch_jobs`` (the generator), and ``strategy.py`` ``AdHocStrategy._forecast_steps``
(the deadlines), same commit. 3387 jobs over the 2020 workdays (a multinomial draw, equal
odds per workday), each arriving at a half hour in [9:00, 17:00), each day's times sorted,
lasting a half-hour multiple in [4 h, 90 h); numpy ``default_rng(0)`` drawn in the paper's
order, so these are the paper's jobs. The deadline is set from the job's finish if run now
(oft):
- ``next-workday``: Saturday: Monday 9:00; Sunday or after 17:00: the next day 9:00 (so a
  Friday evening finish is due Saturday 9:00, as the paper's code has it); before 9:00: 9:00;
  else oft (no slack);
- ``semi-weekly``: from Monday after 9:00 to Thursday 9:00: Thursday 9:00; otherwise the next
  Monday 9:00.

Capacity never binds (as in the paper, which has no capacity): one V100 per job. Forecasts are
perfect (the paper's no-error case). Emissions are carbonfed's metered kg; every job draws the
same power, so savings are the paper's "avoided emissions compared to no shifting" in %.

Known differences from the paper's simulator (why figures may differ a little):
- Germany runs in 15-minute slots (the data's resolution); the paper subsampled every series
  to :00 and :30 samples (``ci.index.minute % 30 == 0``). GB and France run in 30-minute
  slots, the paper's; GB's quarter hours from 2020-10-31 on are averaged into them here
  (carbonfed's time-weighted mean), where the paper keeps the :00 and :30 samples.
- The paper's Scenario II search window holds one slot more than the deadline (its slice
  ends at ``+ 1``), so its jobs may finish 30 min late and even its baseline picks the
  cleaner of two starts; here deadlines hold and the baseline runs on arrival.
- In Scenario I the paper skips 1 January's job once 1:00 - w falls before its data starts
  (w > 1 h) but still divides by 365, which adds about 1/365 of the emissions (0.3 pp) to
  its savings there; here the simulation starts a day earlier and runs that job.
- Germany's file misses two 15-minute samples on 2020-12-19: filled with the sample before
  (``fill: ffill, max_gap_h: 0.25``).

The paper's figures: its repository's ``evaluation.ipynb`` stores its results only as plot
images (no numeric output), and its text was not available here, so no paper figure is
printed ("not found"; ``PAPER_FIGURES`` is there to fill). Issue 20 reports that the authors'
code, run on this data, saves 2-5 pp more with interrupting than non-interrupting in Scenario
II. As a cross-check, the column "rules %" applies the paper's own rules (``strategy.py``)
to the same jobs, re-implemented here in numpy on the paper's half-hour samples with its
one-slot-late search window (``paper_rules_nightly``, ``paper_rules_adhoc``): where carbonfed
and those rules see the same signal (France, and GB before November: Scenario I) they agree
exactly.

    CARBONFED_DATA=../shared/data python bench/lwa.py            # the whole year
    CARBONFED_DATA=../shared/data python bench/lwa.py --quick    # January only
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from broker.federation import Federation
from broker.jobs import Job
from broker.planner import PlannerConfig
from broker.policy_registry import POLICIES
from broker.simulation import SimulationSetup, run_simulation
from scenarios.data_paths import DataPaths
from scenarios.signal_specs import LwaSignalSpec
from sites import DEFAULT_GPUS, AffinityMatrix, SiteSpec
from sites.timegrid import slot_index, slots_until

REPO = Path(__file__).resolve().parents[1]
YEAR = pd.Timestamp("2020-01-01T00:00:00Z")
# The simulation starts a day before the year, so a nightly job's window may open before it.
SIM_START = YEAR - pd.Timedelta(days=1)
OFFSET_H = 24.0  # hours from SIM_START to YEAR

# region: (label, slot hours: the data's resolution, gap fill)
REGIONS: dict[str, tuple[str, float, dict]] = {
    "ger": ("DE", 0.25, {"fill": "ffill", "max_gap_h": 0.25}),
    "gb": ("GB", 0.5, {}),
    "fr": ("FR", 0.5, {}),
}
SITE, GPU, JOB_TYPE = "dc", "V100", "lwa"
# One step per second on one V100: a job of h hours is h x 3600 steps.
AFFINITY = AffinityMatrix.from_nested({JOB_TYPE: {GPU: 1.0}})

NIGHTLY_HOUR = 1.0  # 1:00 UTC, the paper's "daily at 1am"
NIGHTLY_DURATION_H = 0.5
NIGHTLY_JOBS = 365  # range(0, 1440 * 365, 1440) in the paper: 1 Jan to 30 Dec
FULL_WINDOWS_H = tuple(w / 2 for w in range(17))  # +-0 ... +-8 h in half hours, as the paper
QUICK_WINDOWS_H = (0.0, 2.0, 4.0, 8.0)

ML_JOBS = 3387
ML_SEED = 0
ML_MIN_H, ML_MAX_H = 4.0, 90.0  # durations: half hours in [min, max)
WORKDAY_START_H, WORKDAY_END_H = 9.0, 17.0  # arrivals: half hours in [start, end)
QUICK_UNTIL = pd.Timestamp("2020-02-01T00:00:00Z")  # --quick: January's arrivals

POLICY_LABELS = {"isolated": "baseline", "temporal": "non-interrupting",
                 "temporal-preemptive": "interrupting"}

# (scenario, region, case) -> (non-interrupting %, interrupting %, where from). Empty: the
# paper's figures are plots only (see the module docstring); printed as "not found".
PAPER_FIGURES: dict[tuple[str, str, str], tuple[float | None, float | None, str]] = {}


@dataclass(frozen=True)
class Arrival:
    """A job as the paper's generator gives it: hours after 2020-01-01 00:00 UTC."""

    arrival_h: float
    duration_h: float
    deadline_h: float | None = None


def data_dir() -> Path:
    return Path(os.environ.get("CARBONFED_DATA", REPO.parent / "shared" / "data"))


def carbon_slots(region: str, slot_h: float, n_slots: int, data: Path) -> np.ndarray:
    """The region's carbon intensity in ``n_slots`` slots from ``SIM_START``: carbonfed's own
    reader (``kind: lwa``); slots past the file's end repeat its last slot. No decision reads
    them: every deadline falls before the data ends (``build_setup`` checks)."""
    _, _, fill = REGIONS[region]
    spec = LwaSignalSpec(kind="lwa", region=region, **fill)
    signal = spec.build(DataPaths("bench/lwa.py", REPO, data), "carbon_g_per_kwh", False)
    available = slot_index(data_end_h(region, data), slot_h)
    covered = signal.slots(SIM_START, min(n_slots, available), slot_h, np.random.default_rng(0))
    if n_slots <= len(covered):
        return covered
    return np.concatenate([covered, np.full(n_slots - len(covered), covered[-1])])


def data_end_h(region: str, data: Path) -> float:
    """Hours from ``SIM_START`` to the end of the region's last sample."""
    times = pd.read_csv(data / "grid" / "lwa" / f"{region}_ci.csv", usecols=[0]).iloc[:, 0]
    last = pd.Timestamp(times.iloc[-1]).tz_localize("UTC")
    step = last - pd.Timestamp(times.iloc[-2]).tz_localize("UTC")
    return (last + step - SIM_START) / pd.Timedelta(hours=1)


# --- the paper's jobs -----------------------------------------------------------------------

def nightly_arrivals(window_h: float, days: int = NIGHTLY_JOBS) -> list[Arrival]:
    """Scenario I: a 30-minute job each day at 1:00, startable in [1:00 - w, 1:00 + w]."""
    return [Arrival(d * 24.0 + NIGHTLY_HOUR - window_h, NIGHTLY_DURATION_H,
                    d * 24.0 + NIGHTLY_HOUR + window_h + NIGHTLY_DURATION_H)
            for d in range(days)]


def ml_arrivals(n: int = ML_JOBS, seed: int = ML_SEED) -> list[Arrival]:
    """Scenario II's jobs, drawn in the paper's order from ``default_rng(seed)``: jobs per
    workday (multinomial, equal odds), then each calendar day's arrival times (a draw for
    every day, empty ones too, as the paper's loop does), then all durations."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-01", "2020-12-31", freq="D")
    workdays = [d for d in days if d.weekday() < 5]
    per_workday = dict(zip(workdays, rng.multinomial(n, [1 / len(workdays)] * len(workdays)),
                           strict=True))
    half_hours = np.arange(WORKDAY_START_H, WORKDAY_END_H, 0.5)
    arrivals_h = []
    for day_number, day in enumerate(days):
        times = np.sort(rng.choice(half_hours, size=int(per_workday.get(day, 0))))
        arrivals_h += [day_number * 24.0 + float(t) for t in times]
    durations = rng.choice(np.arange(ML_MIN_H, ML_MAX_H, 0.5), size=n)
    return [Arrival(a, float(d)) for a, d in zip(arrivals_h, durations, strict=True)]


def _at_nine(t: pd.Timestamp, days: int) -> pd.Timestamp:
    return t.normalize() + pd.Timedelta(days=days, hours=9)


def next_workday(oft: pd.Timestamp) -> pd.Timestamp:
    """Due the next workday at 9:00, or at the original finish if that is within 9-17 on a
    weekday (the paper's rule, with its Friday-evening quirk: due Saturday 9:00)."""
    weekday, hour = oft.weekday(), oft.hour + oft.minute / 60
    if weekday == 5:
        return _at_nine(oft, 2)
    if weekday == 6 or hour > 17:
        return _at_nine(oft, 1)
    if hour < 9:
        return _at_nine(oft, 0)
    return oft


def semi_weekly(oft: pd.Timestamp) -> pd.Timestamp:
    """Due Thursday 9:00 for finishes from Monday after 9:00 to Thursday 9:00, else Monday
    9:00 (the paper's rule)."""
    weekday, hour = oft.weekday(), oft.hour + oft.minute / 60
    to_thursday = (weekday == 0 and hour > 9) or weekday in (1, 2) or (weekday == 3 and hour <= 9)
    return _at_nine(oft, (3 - weekday) % 7 if to_thursday else (7 - weekday) % 7)


DEADLINE_RULES: dict[str, Callable[[pd.Timestamp], pd.Timestamp]] = {
    "next-workday": next_workday,
    "semi-weekly": semi_weekly,
}


def with_deadlines(arrivals: Sequence[Arrival], rule: str) -> list[Arrival]:
    due = DEADLINE_RULES[rule]
    out = []
    for a in arrivals:
        oft = YEAR + pd.Timedelta(hours=a.arrival_h + a.duration_h)
        out.append(Arrival(a.arrival_h, a.duration_h, (due(oft) - YEAR) / pd.Timedelta(hours=1)))
    return out


# --- carbonfed runs --------------------------------------------------------------------------

def build_setup(region: str, arrivals: Sequence[Arrival], data: Path,
                preemptible: bool = True) -> SimulationSetup:
    """One site at the region with a V100 per job (capacity never binds), the jobs as
    carbonfed jobs (preemptible, no checkpoint overhead, as the paper), perfect forecasts."""
    _, slot_h, _ = REGIONS[region]
    jobs = tuple(
        Job(f"j{i}", SITE, JOB_TYPE, 1, a.duration_h * 3600.0, OFFSET_H + a.arrival_h,
            deadline_h=None if a.deadline_h is None else OFFSET_H + a.deadline_h,
            preemptible=preemptible)
        for i, a in enumerate(arrivals))
    federation = Federation((SiteSpec(SITE, SITE, {GPU: len(jobs)}, 1.0, 0.0),), DEFAULT_GPUS,
                            AFFINITY)
    windows_h = [(j.deadline_h if j.deadline_h is not None else j.submit_h) - j.submit_h
                 for j in jobs]
    horizon_slots = slots_until(max(windows_h) + slot_h, slot_h) + 1
    last_h = max((j.deadline_h if j.deadline_h is not None else j.submit_h + j.work_steps / 3600)
                 for j in jobs)
    end_h = data_end_h(region, data)
    if last_h > end_h:
        raise ValueError(f"{region}: a job is due at {last_h} h, after the data ends ({end_h} h)")
    period_slots = slots_until(max(j.submit_h for j in jobs) + max(windows_h), slot_h) + 1
    drain_slots = slots_until(max(j.work_steps / 3600 for j in jobs), slot_h) + 2
    n_slots = period_slots + drain_slots + horizon_slots + drain_slots + 4
    carbon = carbon_slots(region, slot_h, n_slots, data)[None, :]
    return SimulationSetup(
        federation=federation, jobs=jobs, carbon_g_per_kwh=carbon,
        price_usd_per_mwh=np.zeros_like(carbon), slot_h=slot_h, period_slots=period_slots,
        drain_slots=drain_slots, horizon_slots=horizon_slots)


def emissions_kg(setup: SimulationSetup, policy: str) -> float:
    """The jobs' metered emissions under ``policy``; every job must run and meet its deadline."""
    result = run_simulation(setup, POLICIES[policy](setup.federation, PlannerConfig()), policy)
    jobs = result.jobs
    if len(jobs) != len(setup.jobs) or bool(jobs["deadline_missed"].any()):
        raise RuntimeError(f"{policy}: {len(setup.jobs) - len(jobs)} jobs not run, "
                           f"{int(jobs['deadline_missed'].sum())} late")
    return float(jobs["carbon_kg"].sum())


@dataclass(frozen=True)
class Row:
    scenario: str
    region: str
    case: str  # the window (I) or the deadline rule (II)
    baseline_kg: float
    plain_kg: float
    interrupting_kg: float
    seconds: float
    rules_plain_pct: float  # the same case by the paper's rules (``paper_rules_*``)
    rules_interrupting_pct: float

    def saved(self, kg: float) -> float:
        return _pct(kg, self.baseline_kg)


def _pct(kg: float, baseline: float) -> float:
    return 100.0 * (1.0 - kg / baseline)


def scenario_one(region: str, windows_h: Sequence[float], days: int, data: Path) -> list[Row]:
    baseline = emissions_kg(build_setup(region, nightly_arrivals(0.0, days), data), "isolated")
    ci = paper_signal(region, data)
    rules_baseline = paper_rules_nightly(ci, 0.0, days)
    rows = []
    for w in windows_h:
        clock = time.perf_counter()
        setup = build_setup(region, nightly_arrivals(w, days), data)
        plain = emissions_kg(setup, "temporal")
        interrupting = emissions_kg(setup, "temporal-preemptive")
        seconds = time.perf_counter() - clock
        # one half-hour job in half-hour samples: the paper's two strategies coincide
        rules = _pct(paper_rules_nightly(ci, w, days), rules_baseline)
        rows.append(Row("I nightly", region, f"+-{w:g} h", baseline, plain, interrupting,
                        seconds, rules, rules))
    return rows


def scenario_two(region: str, arrivals: Sequence[Arrival], data: Path) -> list[Row]:
    now = [Arrival(a.arrival_h, a.duration_h) for a in arrivals]
    baseline = emissions_kg(build_setup(region, now, data), "isolated")
    ci = paper_signal(region, data)
    rules_baseline = paper_rules_adhoc(ci, now, interrupting=False)
    rows = []
    for rule in DEADLINE_RULES:
        clock = time.perf_counter()
        due = with_deadlines(arrivals, rule)
        setup = build_setup(region, due, data)
        plain = emissions_kg(setup, "temporal")
        interrupting = emissions_kg(setup, "temporal-preemptive")
        seconds = time.perf_counter() - clock
        rows.append(Row("II ad hoc ML", region, rule, baseline, plain, interrupting, seconds,
                        _pct(paper_rules_adhoc(ci, due, False), rules_baseline),
                        _pct(paper_rules_adhoc(ci, due, True), rules_baseline)))
    return rows


def paper_cell(row: Row) -> str:
    figure = PAPER_FIGURES.get((row.scenario, row.region, row.case))
    if figure is None:
        return "not found"
    plain, interrupting, source = figure
    return f"{plain} / {interrupting} ({source})"


# --- the paper's own rules, re-implemented on its signal (a cross-check, not its figures) ---

def paper_signal(region: str, data: Path) -> np.ndarray:
    """The paper simulator's signal: the file's :00 and :30 samples (``simulate.py``
    ``_load_dataset`` and its ``minute % 30 == 0`` filter), one a half hour, from
    ``SIM_START`` (a day before the paper's, so 1 January's nightly job runs here too);
    Germany's two missing quarter hours repeat the sample before."""
    series = pd.read_csv(data / "grid" / "lwa" / f"{region}_ci.csv", index_col=0,
                         parse_dates=True)["Carbon Intensity"]
    series = series[series.index >= SIM_START.tz_localize(None)]
    series = series[series.index.minute % 30 == 0]
    full = pd.date_range(series.index[0], series.index[-1], freq="30min")
    return series.reindex(full, method="ffill").to_numpy()


def paper_rules_nightly(ci: np.ndarray, window_h: float, days: int) -> float:
    """Scenario I by ``BidirectionalStrategy.run``: each job starts at the cleanest of the
    half hours 1:00 - w ... 1:00 + w. The mean intensity of the chosen half hours."""
    steps = round(window_h * 2)
    first = round((OFFSET_H + NIGHTLY_HOUR) * 2) - steps
    return float(np.mean([ci[first + d * 48:first + d * 48 + 2 * steps + 1].min()
                          for d in range(days)]))


def paper_rules_adhoc(ci: np.ndarray, arrivals: Sequence[Arrival], interrupting: bool) -> float:
    """Scenario II by ``AdHocStrategy.run``: each job searches the half hours from its arrival
    to its deadline plus one (the paper's slice ends one past it; a job without a deadline
    searches its own run plus one); interrupting takes its d cleanest half hours, else the
    cleanest d in a row. The summed intensity of the half hours run (one unit of power)."""
    total = 0.0
    for a in arrivals:
        start, d = round((OFFSET_H + a.arrival_h) * 2), round(a.duration_h * 2)
        end_h = a.deadline_h if a.deadline_h is not None else a.arrival_h + a.duration_h
        window = ci[start:round((OFFSET_H + end_h) * 2) + 1]
        if interrupting:
            total += float(np.sort(window)[:d].sum())
        else:
            sums = np.convolve(window, np.ones(d), mode="valid")
            total += float(sums.min())
    return total


def print_rows(rows: Sequence[Row]) -> None:
    head = (f"{'scenario':<13} {'region':<6} {'case':<13} {'baseline kg':>11} "
            f"{'non-int. kg':>11} {'int. kg':>9} {'non-int. %':>10} {'int. %':>7} "
            f"{'s':>6} {'rules %':>13}  paper (non-int. / int. %)")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r.scenario:<13} {REGIONS[r.region][0]:<6} {r.case:<13} {r.baseline_kg:>11.3f} "
              f"{r.plain_kg:>11.3f} {r.interrupting_kg:>9.3f} {r.saved(r.plain_kg):>10.2f} "
              f"{r.saved(r.interrupting_kg):>7.2f} {r.seconds:>6.1f} "
              f"{r.rules_plain_pct:>6.2f}/{r.rules_interrupting_pct:>6.2f}  {paper_cell(r)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="January only (nightly: 31 days, 4 windows; ML: January's jobs)")
    parser.add_argument("--regions", default=",".join(REGIONS),
                        help="comma-separated, of " + ", ".join(REGIONS))
    parser.add_argument("--scenarios", default="1,2", help="1, 2 or 1,2")
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    unknown = sorted(set(regions) - set(REGIONS))
    if unknown:
        parser.error(f"--regions: unknown {', '.join(unknown)} (known: {', '.join(REGIONS)})")
    scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    if not scenarios <= {"1", "2"}:
        parser.error("--scenarios: give 1, 2 or 1,2")
    data = data_dir()
    if not (data / "grid" / "lwa").is_dir():
        parser.error(f"no grid/lwa folder in the data folder {data} (set CARBONFED_DATA)")

    days = 31 if args.quick else NIGHTLY_JOBS
    windows = QUICK_WINDOWS_H if args.quick else FULL_WINDOWS_H
    ml = ml_arrivals()
    if args.quick:
        cut_h = (QUICK_UNTIL - YEAR) / pd.Timedelta(hours=1)
        ml = [a for a in ml if a.arrival_h < cut_h]
    started, cpu = time.perf_counter(), time.process_time()
    rows: list[Row] = []
    for region in regions:
        if "1" in scenarios:
            rows += scenario_one(region, windows, days, data)
        if "2" in scenarios:
            rows += scenario_two(region, ml, data)
    print(f"Let's Wait Awhile with carbonfed ({'quick: January' if args.quick else '2020'}; "
          f"{days} nightly jobs, {len(ml)} ML jobs; savings in % of the baseline's kg)")
    print_rows(rows)
    print("rules %: the same jobs by the paper's own rules (non-int./int.), re-implemented "
          "here on its half-hour samples with its one-slot-late window (paper_rules_*)")
    print(f"\nrun time: {time.perf_counter() - started:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("paper figures: not found as numbers (evaluation.ipynb keeps its results as plot "
          "images only); issue 20: the authors' code saves 2-5 pp more when interrupting "
          "(Scenario II).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
