"""``--moldable`` and ``--preemptible``: how malleable every job of a run is (``run``,
``market``), set over the scenario for this run only (workers get it too)."""

from __future__ import annotations

import argparse

from scenarios.loader import LoadedScenario, with_overrides
from scenarios.schema import MoldableSpec, PreemptibleSpec


def add_job_model_arguments(parser: argparse.ArgumentParser) -> None:
    moldable, preemptible = MoldableSpec(), PreemptibleSpec()
    parser.add_argument("--moldable", action="store_true",
                        help="let the broker choose every job's GPU count (a range of "
                        f"{moldable.min_gpus} to {moldable.max_gpus}, holding the job's own; "
                        "the scenario's 'moldable' range if it has one)")
    parser.add_argument("--preemptible", action="store_true",
                        help="let every job be paused and resumed (checkpoint overhead "
                        f"{preemptible.checkpoint_overhead_h:g} h at each pause and resume; "
                        "the scenario's 'preemptible' setting if it has one)")


def job_model_scenario(loaded: LoadedScenario, args: argparse.Namespace) -> LoadedScenario:
    """The scenario with ``moldable``/``preemptible`` set where the flags ask and the file
    sets none."""
    s = loaded.scenario
    values: dict[str, object] = {}
    if args.moldable and s.moldable is None:
        values["moldable"] = MoldableSpec().model_dump()
    if args.preemptible and s.preemptible is None:
        values["preemptible"] = PreemptibleSpec().model_dump()
    return with_overrides(loaded, **values) if values else loaded
