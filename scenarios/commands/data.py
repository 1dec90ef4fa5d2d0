"""``carbonfed data describe PATH``: what kind of data file it is and what is in it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scenarios.commands.base import Command
from scenarios.data_catalog import KINDS, Description, describe
from scenarios.outputs import json_safe


class DataCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        describe_parser = actions.add_parser(
            "describe", help="recognise a file's kind and summarise it",
            description=f"Kinds: {', '.join(KINDS)}.")
        describe_parser.add_argument("path", type=Path)
        describe_parser.add_argument("--start", help="first time kept (UTC timestamp; "
                                     "hours since the start for traces)")
        describe_parser.add_argument("--end", help="end of the period kept (exclusive)")
        describe_parser.add_argument("--column", help="summarise only this numeric column")
        describe_parser.add_argument("--json", action="store_true", help="machine-readable")

    def run(self, args: argparse.Namespace) -> int:
        result = describe(args.path, args.start, args.end, args.column)
        if args.json:
            print(json.dumps(json_safe(result.as_dict()), indent=2, default=str))
        else:
            _print(result)
        return 0


def _print(d: Description) -> None:
    console = Console(width=120)
    facts = Table(title=f"{d.path}", show_header=False)
    for label, value in (("kind", f"{d.kind} ({KINDS[d.kind].description})"), ("rows", d.rows),
                         ("first", d.first), ("last", d.last), ("resolution", d.resolution),
                         ("gaps", d.gaps), ("longest gap", d.longest_gap)):
        facts.add_row(label, "-" if value is None else str(value))
    console.print(facts)
    stats = Table(title="numeric columns")
    for name in ("column", "mean", "sd", "min", "max"):
        stats.add_column(name, justify="left" if name == "column" else "right")
    for name, s in d.columns.items():
        stats.add_row(name, *(f"{v:,.4g}" for v in (s.mean, s.sd, s.min, s.max)))
    console.print(stats)
