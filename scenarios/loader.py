"""Loading a scenario: YAML -> validated ``Scenario`` (file I/O and pydantic's checks).

Every problem with the file becomes one ``InputError`` naming the file, the field path and what
is wrong (pydantic's checks first, then the cross-references pydantic cannot see, in
``scenarios.validation``). ``scenarios.build`` turns the result into the simulation's inputs.
"""

from __future__ import annotations

import json
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


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (PyYAML alone would keep the last silently)."""

    def __init__(self, key: object, first_line: int, second_line: int) -> None:
        self.key = key
        self.first_line = first_line  # 1-based, as an editor shows them
        self.second_line = second_line
        super().__init__(f"duplicate key {key!r} (line {first_line} and line {second_line})")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a repeated key.

    ``period_h: 12`` then ``period_h: 24`` is a mistake whichever value was meant; PyYAML's
    own loaders keep the last one without a word. Merge keys (``<<: *base``) may still
    override what they merge: only keys written in the mapping itself are compared.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:
                    continue  # an unhashable key: SafeLoader's own error says so below
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> object:
    """YAML text -> Python data, refusing duplicate keys; every YAML the project reads."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: safe


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    source: str  # what error messages call the file
    base_dir: Path  # relative paths in the file resolve against this
    data_dir: Path | None = None  # the real-data folder, when given
    resolved: ResolvedData | None = field(default=None, compare=False)
    text: str = field(default="", compare=False)  # the YAML as read (workers re-parse it)
    # top-level fields set over the text (field, value as JSON), e.g. by ``run --moldable``
    overrides: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.source, self.base_dir, self.data_dir)


def builtin_scenarios() -> dict[str, str]:
    """Name -> one-line description of each built-in scenario."""
    out = {}
    for entry in sorted(resources.files(LIBRARY).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = load_yaml(entry.read_text())
            description = data.get("description", "") if isinstance(data, dict) else ""
            out[entry.name.removesuffix(".yaml")] = str(description).strip()
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
        data = load_yaml(text)
    except DuplicateKeyError as error:
        raise InputError(source, f"line {error.second_line}",
                         f"duplicate key {error.key!r} (first at line {error.first_line}, "
                         f"again at line {error.second_line}): keep one") from None
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


def parse_scenario(text: str, source: str, base_dir: Path, data_dir: Path | None = None,
                   overrides: tuple[tuple[str, str], ...] = ()) -> LoadedScenario:
    """A scenario from its YAML text, with top-level ``overrides`` (field, JSON value) set over
    it, checked and its data files read."""
    scenario = validate_yaml(text, source, Scenario, "a scenario")
    if overrides:
        data = {**scenario.model_dump(), **{k: json.loads(v) for k, v in overrides}}
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError as error:
            raise InputError.from_validation(source, error, data) from None
    paths = DataPaths(source, base_dir, data_dir)
    check_names(scenario, source)
    resolved = resolve_data(scenario, paths)
    check_references(scenario, source, resolved)
    return LoadedScenario(scenario, source, base_dir, data_dir, resolved, text, overrides)


def with_overrides(loaded: LoadedScenario, **values: object) -> LoadedScenario:
    """The same scenario with top-level fields set (kept for workers, which re-parse the text)."""
    overrides = (*loaded.overrides, *((k, json.dumps(v)) for k, v in values.items()))
    return parse_scenario(loaded.text, loaded.source, loaded.base_dir, loaded.data_dir,
                          overrides)
