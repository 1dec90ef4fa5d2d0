"""``carbonfed scenarios``: list the built-in scenarios."""

from __future__ import annotations

import argparse

from scenarios.commands.base import Command
from scenarios.loader import builtin_scenarios


class ScenariosCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        scenarios = builtin_scenarios()
        width = max(map(len, scenarios))
        for name, description in scenarios.items():
            print(f"{name.ljust(width)}  {description}")
        return 0
