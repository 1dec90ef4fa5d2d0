"""The ``carbonfed`` console script: parse arguments, dispatch to a registered command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from scenarios.commands import COMMANDS
from scenarios.commands.base import Command
from sites.errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_BROKEN_PIPE = 1  # what rich's console does on a closed pipe, so every command agrees
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: what a shell reports for a process Ctrl-C stopped
# The project's loggers: --verbose shows their debug records (HiGHS's banner among them:
# optimization.solver) without the debug chatter of every library underneath.
PROJECT_LOGGERS = ("optimization", "broker", "market", "sites", "api", "scenarios", "carbonfed")


def build_parser(chosen: str | None = None,
                 command: Command | None = None) -> argparse.ArgumentParser:
    """The parser: every sub-command by name and help; the options of ``chosen`` only (its
    ``command`` object declares them), so only the command being run gets imported."""
    parser = argparse.ArgumentParser(
        prog="carbonfed",
        description="Carbon-aware GPU federation broker and market simulator.",
    )
    parser.add_argument("-v", "--verbose", dest="debug_log", action="store_true",
                        help="log the project's debug records to stderr (HiGHS's banner "
                        "and solver messages among them); "
                        "give it before the command: carbonfed --verbose run tiny")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, ref in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=ref.help, description=ref.help)
        if name == chosen and command is not None:
            command.add_arguments(sub_parser)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (its first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def verbose_logging() -> None:
    """Debug records of the project's loggers to stderr (stdout stays the command's output)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.set_name("carbonfed --verbose")
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        if all(h.get_name() != handler.get_name() for h in logger.handlers):  # main run twice
            logger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C: one line, no traceback, and the exit code a shell expects. Whatever the
        # command was doing (a solve, a Dask cluster, a server) is left to its context managers.
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(argv: list[str]) -> int:
    if "-v" in argv[:1] or "--verbose" in argv[:1]:
        # before the command's module is imported: the solver wrapper logs HiGHS's banner
        # when it is first imported
        verbose_logging()
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
