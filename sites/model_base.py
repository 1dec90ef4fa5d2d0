"""What every input model of the project shares, written once: strict pydantic models, and
fields that name an entry of a registry.

Registries are plain dicts of name -> class or function (policies, solve methods, carbon
policy kinds, valuations, calibrations ...). A field that must name one is typed
``Annotated[str, *name_of(registry, what)]``: checked against the registry itself (``one_of``,
the one check, whose message lists the known names) and described by the registry's names in
the JSON schema, so no ``Literal`` copies a registry by hand and a new entry is accepted
everywhere at once. The command line offers ``choices(registry)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema


class Strict(BaseModel):
    """An input model: unknown fields are errors, and so are infinities and NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FrozenStrict(Strict):
    """A strict input model that is also immutable (scenario files: a spec builds its domain
    object, and nothing changes it after)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def one_of(name: str, known: Iterable[str], what: str) -> str:
    """``name`` if it is in ``known`` (a registry), else a ValueError listing the known ones."""
    known = tuple(known)
    if name not in known:  # the CLI adds "(got 'name')"
        raise ValueError(f"unknown {what}; known: {', '.join(map(repr, known))}")
    return name


def choices(registry: Iterable[str]) -> tuple[str, ...]:
    """A registry's names, in its order: an argparse option's ``choices``."""
    return tuple(registry)


def name_of(registry: Collection[str], what: str) -> tuple[AfterValidator, WithJsonSchema]:
    """The metadata of a string field that names an entry of ``registry``:
    ``Annotated[str, *name_of(POLICIES, "policy")]``."""
    return (AfterValidator(lambda name: one_of(name, registry, what)),
            WithJsonSchema({"type": "string", "enum": list(registry)}))
