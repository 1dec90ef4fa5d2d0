"""What a CLI sub-command is: a name in the registry, its arguments, and a run method."""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod


class Command(ABC):
    """One ``carbonfed`` sub-command.

    ``run`` returns the process exit code; bad user input is raised as
    ``sites.errors.InputError`` and turned into one line plus exit code 2 by the CLI.
    """

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this command's options on its own sub-parser."""

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit code."""
