"""The ``carbonfed`` console script: parse arguments, dispatch to a registered command."""

from __future__ import annotations

import argparse
import os
import sys

from scenarios.commands import COMMANDS
from scenarios.commands.base import Command
from sites.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_BROKEN_PIPE = 1  # what rich's console does on a closed pipe, so every command agrees


def build_parser(chosen: str | None = None,
                 command: Command | None = None) -> argparse.ArgumentParser:
    """The parser: every sub-command by name and help; the options of ``chosen`` only (its
    ``command`` object declares them), so only the command being run gets imported."""
    parser = argparse.ArgumentParser(
        prog="carbonfed",
        description="Carbon-aware GPU federation broker and market simulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, ref in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=ref.help, description=ref.help)
        if name == chosen and command is not None:
            command.add_arguments(sub_parser)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (its first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = chosen_command(argv)
    command = COMMANDS[chosen].load() if chosen in COMMANDS else None
    parser = build_parser(chosen, command)
    args = parser.parse_args(argv)
    if command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    try:
        return command.run(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except BrokenPipeError:
        # The reader went away (`carbonfed scenarios | head -1`): stop quietly, as Unix tools
        # do, and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
