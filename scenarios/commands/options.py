"""Option parsing shared by the commands: names from a registry, numbers, executors.

Each helper turns a bad value into one ``InputError`` line naming the option.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Collection

from sites import InputError


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workers N`` / ``--scheduler ADDR`` (``scenarios.scaleout.open_executor``)."""
    parser.add_argument("--workers", type=int, metavar="N",
                        help="run on a local Dask cluster of N worker processes")
    parser.add_argument("--scheduler", metavar="ADDR",
                        help="run on a running Dask cluster (tcp://host:8786)")


def option_choice(name: str, known: Collection[str], option: str) -> str:
    """``name`` if a command-line ``option`` may take it (``known``: a registry), else an
    ``InputError`` naming the option (a scenario field is checked by
    ``sites.model_base.one_of`` instead, with pydantic's field path)."""
    if name not in known:
        raise InputError(option, name, f"not one of {', '.join(known)}")
    return name


def names(text: str, known: Collection[str], option: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(option, text, "names nothing")
    for name in names:
        option_choice(name, known, option)
    return names


def number(text: str, option: str, minimum: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(option, text, "not a number") from None
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise InputError(option, text, f"must be a finite number >= {minimum}")
    return value


def numbers(text: str, option: str) -> tuple[float, ...]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(option, text, "names no price")
    return tuple(number(t, option, minimum=0.0) for t in items)


def positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(option, text, "not a whole number") from None
    if value < 2:  # a variance needs two samples
        raise InputError(option, text, "must be at least 2")
    return value
