"""The one error type for bad user input (scenario files, game files, traces, requests)."""

from __future__ import annotations


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
