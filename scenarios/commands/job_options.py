"""``--moldable``, ``--preemptible`` and ``--elastic``: how malleable every job of a run is
(``run``, ``market``), set over the scenario for this run only (workers get it too)."""

from __future__ import annotations

import argparse

from scenarios.loader import LoadedScenario, with_overrides
from scenarios.schema import ElasticSpec, MoldableSpec, PreemptibleSpec


def add_job_model_arguments(parser: argparse.ArgumentParser) -> None:
    moldable, preemptible, elastic = MoldableSpec(), PreemptibleSpec(), ElasticSpec()
    parser.add_argument("--moldable", action="store_true",
                        help="let the broker choose every job's GPU count (a range of "
                        f"{moldable.min_gpus} to {moldable.max_gpus}, holding the job's own; "
                        "the scenario's 'moldable' range if it has one)")
    parser.add_argument("--preemptible", action="store_true",
                        help="let every job be paused and resumed, at home or elsewhere "
                        f"(checkpoint overhead {preemptible.checkpoint_overhead_h:g} h at each "
                        f"pause and resume, {preemptible.checkpoint_gb:g} GB shipped when it "
                        "moves; the scenario's 'preemptible' setting if it has one)")
    parser.add_argument("--elastic", action="store_true",
                        help="let every job change its GPU count while it runs (implies "
                        f"--moldable; {elastic.resize_overhead_h:g} h at each resize; the "
                        "scenario's 'elastic' setting if it has one)")


def job_model_scenario(loaded: LoadedScenario, args: argparse.Namespace) -> LoadedScenario:
    """The scenario with ``moldable``/``preemptible``/``elastic`` set where the flags ask and
    the file sets none (``--elastic`` needs GPU ranges: it sets ``moldable`` too)."""
    s = loaded.scenario
    values: dict[str, object] = {}
    if (args.moldable or args.elastic) and s.moldable is None:
        values["moldable"] = MoldableSpec().model_dump()
    if args.elastic and s.elastic is None:
        values["elastic"] = ElasticSpec().model_dump()
    if args.preemptible and s.preemptible is None:
        values["preemptible"] = PreemptibleSpec().model_dump()
    return with_overrides(loaded, **values) if values else loaded
