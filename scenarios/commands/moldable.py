"""``--moldable``: let the broker choose every job's GPU count (``run`` and ``market``)."""

from __future__ import annotations

import argparse

from scenarios.loader import LoadedScenario, with_overrides
from scenarios.schema import MoldableSpec


def add_moldable_argument(parser: argparse.ArgumentParser) -> None:
    default = MoldableSpec()
    parser.add_argument("--moldable", action="store_true",
                        help="let the broker choose every job's GPU count (a range of "
                        f"{default.min_gpus} to {default.max_gpus}, holding the job's own; the "
                        "scenario's 'moldable' range if it has one)")


def moldable_scenario(loaded: LoadedScenario, args: argparse.Namespace) -> LoadedScenario:
    """The scenario with ``moldable`` set when ``--moldable`` asks and the file has none."""
    if not args.moldable or loaded.scenario.moldable is not None:
        return loaded
    return with_overrides(loaded, moldable=MoldableSpec().model_dump())
