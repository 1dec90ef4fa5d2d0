"""Loading a scenario: YAML -> validated ``Scenario`` (file I/O and pydantic's checks).

Every problem with the file becomes one ``InputError`` naming the file, the field path and what
is wrong (pydantic's checks first, then the cross-references pydantic cannot see, in
``scenarios.validation``). ``scenarios.build`` turns the result into the simulation's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scenarios.data_paths import DataPaths
from scenarios.resolve import resolve_data
from scenarios.schema import Scenario
from scenarios.validation import ResolvedData, check_names, check_references
from sites import InputError

LIBRARY = "scenarios.library"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    source: str  # what error messages call the file
    base_dir: Path  # relative paths in the file resolve against this
    data_dir: Path | None = None  # the real-data folder, when given
    resolved: ResolvedData | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)  # the YAML as read (workers re-parse it)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.source, self.base_dir, self.data_dir)


def builtin_scenarios() -> dict[str, str]:
    """Name -> one-line description of each built-in scenario."""
    out = {}
    for entry in sorted(resources.files(LIBRARY).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text())
            out[entry.name.removesuffix(".yaml")] = str(data.get("description", "")).strip()
    return out


def load_scenario(name_or_path: str, data_dir: Path | None = None) -> LoadedScenario:
    """A built-in scenario by name, or a YAML file by path; ``data_dir``: the data folder."""
    path = Path(name_or_path)
    builtin = resources.files(LIBRARY) / f"{name_or_path}.yaml"
    if path.suffix in (".yaml", ".yml") or path.is_file() or (
            path.is_dir() and not builtin.is_file()):
        if path.is_dir():
            raise InputError(str(path), "", "is a directory, not a scenario file")
        if not path.is_file():
            raise InputError(str(path), "", "no such scenario file")
        return parse_scenario(path.read_text(), str(path), path.parent, data_dir)
    if not builtin.is_file():
        known = ", ".join(builtin_scenarios())
        raise InputError(name_or_path, "", f"no such file or built-in scenario (built-in: {known})")
    return parse_scenario(builtin.read_text(), f"built-in:{name_or_path}", Path.cwd(), data_dir)


def validate_yaml(text: str, source: str, model: type[M], what: str) -> M:
    """Parse YAML and validate it as ``model``; any problem is one ``InputError`` line.

    ``what`` names the document in the "must be a mapping" message ("a scenario").
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InputError(source, where, f"YAML does not parse: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(source, "", f"{what} must be a YAML mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InputError.from_validation(source, error, data) from None


def parse_scenario(text: str, source: str, base_dir: Path,
                   data_dir: Path | None = None) -> LoadedScenario:
    scenario = validate_yaml(text, source, Scenario, "a scenario")
    paths = DataPaths(source, base_dir, data_dir)
    check_names(scenario, source)
    resolved = resolve_data(scenario, paths)
    check_references(scenario, source, resolved)
    return LoadedScenario(scenario, source, base_dir, data_dir, resolved, text)
