"""The one error type for bad user input (scenario files, game files, traces, requests).

It lives in ``sites``, the bottom layer of the project, so that every package that reads user
input (sites, broker, market, scenarios, api) raises the same type; ``optimization`` reads
none. ``from_validation`` turns pydantic's first complaint into one such line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class InputError(ValueError):
    """Input a user gave us is wrong: says where (source and field path) and what is wrong.

    The CLI prints ``str(error)`` as a single line and exits with code 2, no traceback.
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return f"{where}: {self.problem}"

    @classmethod
    def from_validation(cls, source: str, error: ValidationError, data: object) -> InputError:
        """pydantic's first complaint about ``data`` as one line naming the field path."""
        errors = error.errors()
        first = errors[0]
        problem = _problem(first)
        if first["type"] == "missing":
            # A typo shows as a missing field plus an unknown one beside it: name both.
            parent = first["loc"][:-1]
            unknown = [str(e["loc"][-1]) for e in errors
                       if e["type"] == "extra_forbidden" and e["loc"][:-1] == parent]
            if unknown:
                problem += f" (found unknown field {unknown[0]!r}: a typo?)"
        return cls(source, field_path(first["loc"], data), problem)


@contextmanager
def named_as_given(names: Mapping[str, tuple[str, str]]) -> Iterator[None]:
    """Re-raise a domain ``InputError`` about field F as ``names[F]`` = (source, field).

    Domain code names its own fields (``cap_t``, ``markup``); only the edge knows what the
    user typed to set them (``--cap-t``, or ``carbon_cap_t`` in a scenario file), so the edge
    wraps the domain call in this and the message names that.
    """
    try:
        yield
    except InputError as error:
        if error.field not in names:
            raise
        source, field = names[error.field]
        raise InputError(source, field, error.problem) from None


def field_path(loc: tuple[int | str, ...], data: object = None) -> str:
    """('sites', 0, 'gpus', 'V100') -> 'sites[0].gpus.V100'.

    Given the validated ``data``, the tags pydantic inserts for members of a tagged union
    (``('workload', 'list', 'jobs', 0)``, where ``list`` is the value of ``workload.kind``) are
    left out, so the path names fields as they are written in the file: ``workload.jobs[0]``.
    """
    out = ""
    node = data
    for part in loc:
        if (isinstance(part, str) and isinstance(node, dict) and part not in node
                and node.get("kind") == part):
            continue  # a tagged-union member's tag, not a field of the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def _problem(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("missing", "extra_forbidden"):
        return "missing field" if error["type"] == "missing" else "unknown field"
    value = error.get("input")
    if not isinstance(value, dict | list):
        return f"{message} (got {value!r})"
    return message
