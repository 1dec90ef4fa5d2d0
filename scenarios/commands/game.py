"""``carbonfed game FILE.json``: share a cost or profit among players with several rules."""

from __future__ import annotations

import argparse
import json
import math

from rich.console import Console
from rich.table import Table

from market.games import RULES, Game, GameReport, RuleSettings, compare_rules
from market.games.diagnostics import RuleOutcome
from scenarios.commands.base import Command
from sites.errors import InputError

ALL_RULES = "all"


class GameCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", help="game file: {players, kind: cost|profit, values}")
        parser.add_argument(
            "--rule",
            choices=[*RULES, ALL_RULES],
            default=ALL_RULES,
            help="sharing rule (default: all)",
        )
        parser.add_argument(
            "--weights",
            help="weights for 'proportional' as NAME=W,NAME=W (default: standalone values)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace) -> int:
        game = Game.from_json_file(args.file)
        weights = _parse_weights(args.weights, game, args.file) if args.weights else None
        rules = list(RULES) if args.rule == ALL_RULES else [args.rule]
        report = compare_rules(game, rules, RuleSettings(weights=weights))
        if args.rule != ALL_RULES and report.outcomes[0].not_applicable:
            # asked for this one rule and it has no answer: that is the user's game, not a crash
            field = "weights" if args.rule == "proportional" else "values"
            raise InputError(args.file, field, f"{args.rule}: {report.outcomes[0].not_applicable}")
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
        else:
            _print_tables(report)
        return 0


def _parse_weights(text: str, game: Game, source: str) -> tuple[float, ...]:
    given: dict[str, float] = {}
    for item in text.split(","):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or name not in game.players:
            raise InputError(source, "--weights", f"{item.strip()!r} is not NAME=W for a player")
        try:
            weight = float(number)
        except ValueError as error:
            raise InputError(source, "--weights", f"{name}: {number!r} is not a number") from error
        if not math.isfinite(weight) or weight < 0:
            raise InputError(source, "--weights", f"{name}: weight must be finite and >= 0")
        given[name] = weight
    missing = [p for p in game.players if p not in given]
    if missing:
        raise InputError(source, "--weights", f"no weight for {', '.join(missing)}")
    return tuple(given[p] for p in game.players)


def shares_of(outcome: RuleOutcome) -> tuple[float, ...]:
    assert outcome.allocation is not None  # only shown outcomes, which have one
    return tuple(outcome.allocation.shares)


def _number(value: float) -> str:
    return f"{value:,.4f}"


def _print_tables(report: GameReport) -> None:
    game = report.game
    console = Console(width=max(100, 16 * (len(report.outcomes) + 1)))
    shown = [o for o in report.outcomes if o.allocation is not None]
    what = "cost share" if game.kind.value == "cost" else "profit share"
    shares = Table(
        title=f"{what} per player ({game.kind.value} game, v(N) = {_number(game.grand_value)})"
    )
    shares.add_column("player")
    shares.add_column("standalone", justify="right")
    for outcome in shown:
        shares.add_column(outcome.rule, justify="right")
    standalone = game.standalone_values
    for i, player in enumerate(game.players):
        shares.add_row(
            player,
            _number(standalone[i]),
            *(_number(shares_of(o)[i]) for o in shown),
        )
    console.print(shares)

    checks = Table(title="diagnostics (excess > 0: that coalition would do better alone)")
    for column in ("rule", "efficient", "indiv. rational", "in core", "max excess", "coalition"):
        checks.add_column(column, justify="right" if column == "max excess" else "left")
    for outcome in report.outcomes:
        if outcome.diagnostics is None:
            checks.add_row(outcome.rule, "-", "-", "-", "-", "not applicable (see below)")
            continue
        d = outcome.diagnostics
        checks.add_row(
            outcome.rule,
            _yes_no(d.efficient),
            _yes_no(d.individually_rational),
            _yes_no(d.in_core),
            _number(d.max_excess),
            "+".join(d.max_excess_coalition),
        )
    console.print(checks)
    for outcome in report.outcomes:
        if outcome.not_applicable:
            console.print(f"{outcome.rule}: not applicable: {outcome.not_applicable}")
    state = "EMPTY" if report.core_empty else "non-empty"
    console.print(f"core: {state} (least-core epsilon = {_number(report.least_core_epsilon)})")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "NO"
