"""What every scenario-file model shares: strict pydantic models and registry-name checks."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Default file of each data kind inside the data folder (``{zone}`` / ``{region}`` filled in).


def one_of(name: str, known: Iterable[str], what: str) -> str:
    """``name`` if it is in ``known`` (a registry), else a ValueError listing the known ones."""
    if name not in known:  # the CLI adds "(got 'name')"
        raise ValueError(f"unknown {what}; known: {', '.join(map(repr, known))}")
    return name
