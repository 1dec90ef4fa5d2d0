"""The ``carbonfed`` console script: parse arguments, dispatch to a registered command."""

from __future__ import annotations

import argparse
import os
import sys

from scenarios.commands import COMMANDS
from sites.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_BROKEN_PIPE = 1  # what rich's console does on a closed pipe, so every command agrees


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonfed",
        description="Carbon-aware GPU federation broker and market simulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT_ERROR
    try:
        return COMMANDS[args.command].run(args)
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
