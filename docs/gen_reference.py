"""The reference pages, generated from the code at every ``mkdocs build`` (a hook in mkdocs.yml).

- ``reference/scenario.md``: every model of ``Scenario.model_json_schema()``, field by field;
  a field's meaning is its schema description or, while the schema has none, its entry in
  ``docs/reference/scenario_fields.yaml`` (``Model.field: text``);
- ``reference/settings.md``: every field of ``api.settings.Settings`` with its environment
  variable, its ``carbonfed serve`` flags (read from the real parser), default and description;
- ``reference/cli.md``: every ``carbonfed`` command and sub-command, from argparse;
- ``reference/rest-api.md`` and ``reference/openapi.json``: the app's own OpenAPI document.

``tests/docs/`` holds the generator to covering every field, setting and command.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FIELD_NOTES = DOCS / "reference" / "scenario_fields.yaml"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# argparse wraps help to the terminal's width; fixed here so every build writes the same page
HELP_COLUMNS = "100"


def cell(text: object) -> str:
    """Text for one Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: object) -> str:
    return f"`{text}`" if str(text) != "" else ""


# --- the scenario file ----------------------------------------------------------------------


def scenario_schema() -> dict[str, Any]:
    from scenarios.schema import Scenario

    schema: dict[str, Any] = Scenario.model_json_schema()
    return schema


def scenario_models(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every object model of the schema by name, the top-level ``Scenario`` first."""
    return {"Scenario": schema, **dict(sorted(schema.get("$defs", {}).items()))}


def field_notes() -> dict[str, str]:
    notes: dict[str, str] = yaml.safe_load(FIELD_NOTES.read_text()) or {}
    return notes


def field_meaning(model: str, name: str, prop: dict[str, Any], notes: dict[str, str]) -> str:
    """The schema's description of a field, else its note; '' when it has neither."""
    return str(prop.get("description") or notes.get(f"{model}.{name}", ""))


def type_of(prop: dict[str, Any]) -> str:
    """A JSON-schema type in a few words, models linked to their section."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in prop:
        return code(json.dumps(prop["const"]))
    if "enum" in prop:
        return " \\| ".join(code(json.dumps(v)) for v in prop["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in prop:
            return " or ".join(type_of(p) for p in prop[key])
    kind = prop.get("type")
    if kind == "array":
        if "prefixItems" in prop:
            return "[" + ", ".join(type_of(p) for p in prop["prefixItems"]) + "]"
        return f"list of {type_of(prop.get('items', {}))}"
    if kind == "object":
        values = prop.get("additionalProperties")
        return f"map of name -> {type_of(values)}" if isinstance(values, dict) else "object"
    if kind is None:
        return "any"
    if prop.get("format"):
        return f"{kind} ({prop['format']})"
    return str(kind)


CONSTRAINTS = (("minimum", ">= {}"), ("exclusiveMinimum", "> {}"), ("maximum", "<= {}"),
               ("exclusiveMaximum", "< {}"), ("minLength", "at least {} characters"),
               ("minItems", "at least {} items"), ("minProperties", "at least {} entries"),
               ("pattern", "matches {}"))


def constraints_of(prop: dict[str, Any]) -> str:
    found = [text.format(code(prop[key])) for key, text in CONSTRAINTS if key in prop]
    for nested in (prop.get("additionalProperties"), *prop.get("anyOf", [])):
        if isinstance(nested, dict):
            found += [text.format(code(nested[key])) for key, text in CONSTRAINTS
                      if key in nested]
    return ", ".join(found)


def default_of(name: str, model: dict[str, Any]) -> str:
    prop = model["properties"][name]
    if name in model.get("required", []):
        return "required"
    if "default" not in prop:
        return ""
    return code(json.dumps(prop["default"]))


def scenario_reference() -> str:
    schema = scenario_schema()
    notes = field_notes()
    example = (ROOT / "examples" / "every-field.yaml").read_text()
    lines = [
        "# Scenario file",
        "",
        "Generated from `Scenario.model_json_schema()` (`scenarios/schema.py` and the models it",
        "uses) at every build of this site. Every model forbids unknown fields; units are in",
        "the field names. How to write one: [Scenario files](../researchers/scenarios.md).",
        "",
    ]
    for name, model in scenario_models(schema).items():
        lines += [f"## {name}", ""]
        if model.get("description") and name != "Scenario":
            lines += [" ".join(model["description"].split()), ""]
        lines += ["| field | type | default | constraints | meaning |",
                  "|---|---|---|---|---|"]
        for field, prop in model.get("properties", {}).items():
            lines.append("| " + " | ".join(cell(part) for part in (
                code(field), type_of(prop), default_of(field, model), constraints_of(prop),
                field_meaning(name, field, prop, notes))) + " |")
        lines.append("")
    lines += ["## Example: every field", "",
              "`examples/every-field.yaml` sets every field; a test runs it.", "",
              "```yaml", example.rstrip(), "```", ""]
    return "\n".join(lines)


# --- broker settings ------------------------------------------------------------------------


def serve_flags() -> dict[str, list[str]]:
    """Each setting's flags, read from the real ``carbonfed serve`` parser."""
    parser = command_parser("serve")
    return {action.dest: list(action.option_strings) for action in parser._actions
            if action.option_strings}


def settings_reference() -> str:
    from api.settings import ENV_PREFIX, Settings

    flags = serve_flags()
    lines = [
        "# Broker settings",
        "",
        "Generated from `api.settings.Settings` and the `carbonfed serve` parser at every",
        "build of this site. Every setting is an environment variable and a flag of",
        "`carbonfed serve`; a flag wins over the environment. `carbonfed serve --help` lists",
        "the same. Where they matter: [Run a broker](../operators/broker.md).",
        "",
        "| setting | environment variable | flags | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = "none" if field.default is None else field.default
        lines.append("| " + " | ".join(cell(part) for part in (
            code(name), code(ENV_PREFIX + name.upper()),
            ", ".join(code(flag) for flag in flags.get(name, [])),
            code(default), field.description or "")) + " |")
    return "\n".join(lines) + "\n"


# --- the command line -----------------------------------------------------------------------


def command_parser(name: str) -> argparse.ArgumentParser:
    """The sub-parser of ``carbonfed NAME`` with its options (as ``carbonfed NAME --help``)."""
    from scenarios.cli import build_parser
    from scenarios.commands import COMMANDS

    parser = build_parser(name, COMMANDS[name].load())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = sub.choices[name]
    return chosen


def sub_commands(parser: argparse.ArgumentParser,
                 path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(carbonfed a b, parser)`` for a parser and each of its nested sub-commands."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from sub_commands(child, f"{path} {name}")


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    from scenarios.commands import COMMANDS

    found: dict[str, argparse.ArgumentParser] = {}
    for name in COMMANDS:
        found.update(sub_commands(command_parser(name), f"carbonfed {name}"))
    return found


def option_row(action: argparse.Action) -> str:
    names = ", ".join(code(n) for n in action.option_strings) or code(action.dest)
    default = action.default
    shown = "" if default in (None, argparse.SUPPRESS) or action.option_strings == [] else (
        code(default))
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        shown = ""
    return "| " + " | ".join(cell(p) for p in (names, shown, action.help or "")) + " |"


def cli_reference() -> str:
    from scenarios.cli import build_parser

    os.environ["COLUMNS"] = HELP_COLUMNS
    top = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from the `carbonfed` argparse parsers (`scenarios/cli.py` and",
        "`scenarios/commands/`) at every build of this site: each command's usage and",
        "options, as `carbonfed COMMAND --help` prints them.",
        "",
        "```text", top.format_help().rstrip(), "```", "",
    ]
    for path, parser in cli_commands().items():
        actions = [a for a in parser._actions
                   if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]
        lines += [f"## {path}", ""]
        if parser.description:
            lines += [" ".join(parser.description.split()), ""]
        lines += ["```text", parser.format_usage().strip(), "```", ""]
        if actions:
            lines += ["| option | default | meaning |", "|---|---|---|"]
            lines += [option_row(a) for a in actions]
            lines.append("")
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            lines += ["Sub-commands: " + ", ".join(
                f"[`{n}`](#{(path + ' ' + n).replace(' ', '-')})" for n in action.choices), ""]
    return "\n".join(lines)


# --- the REST API ---------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    from api.app import create_app
    from api.settings import Settings

    # model_construct: the defaults, not this machine's CARBONFED_* environment
    spec: dict[str, Any] = create_app(Settings.model_construct()).openapi()
    return spec


def rest_reference(spec: dict[str, Any]) -> str:
    lines = [
        "# REST API",
        "",
        f"`{spec['info']['title']}` {spec['info']['version']}, generated from the app's own",
        "OpenAPI document at every build of this site: [openapi.json](openapi.json) (OpenAPI",
        f"{spec['openapi']}). A running broker also serves it at `/openapi.json` and as",
        "Swagger UI at `/docs`, with the UI's files served by the broker itself (offline).",
        "Who may call what, and the errors: [Security and limits](../operators/security.md).",
        "",
        "| method | path | what | body | answers |",
        "|---|---|---|---|---|",
    ]
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            what = op.get("summary") or op.get("operationId", "")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body_ref = body.get("schema", {}).get("$ref", "")
            lines.append("| " + " | ".join(cell(p) for p in (
                method.upper(), code(path), what,
                code(body_ref.rsplit("/", 1)[-1]) if body_ref else "",
                ", ".join(sorted(op.get("responses", {}))))) + " |")
    lines += ["", "## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        props = schema.get("properties", {})
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [" ".join(schema["description"].split()), ""]
        if props:
            lines += ["| field | type | required |", "|---|---|---|"]
            lines += ["| " + " | ".join(cell(p) for p in (
                code(field), type_of(prop).replace("](#", "](#"),
                "yes" if field in schema.get("required", []) else "")) + " |"
                for field, prop in props.items()]
        lines.append("")
    return "\n".join(lines)


# --- real runs, for the pages that show their output -----------------------------------------

TINY_MARKER = "<!-- carbonfed run tiny -->"
# command -> (its plots -> where they go in the site)
RUNS: dict[tuple[str, ...], dict[str, str]] = {
    ("run", "tiny"): {"policies.png": "images/tiny-policies.png",
                      "milp_load_vs_carbon.png": "images/tiny-milp-load-vs-carbon.png"},
    ("market", "default"): {"gains_by_scheme.png": "images/default-gains-by-scheme.png",
                            "abatement_curve.png": "images/default-abatement-curve.png"},
}


def run_carbonfed(argv: tuple[str, ...], plots: dict[str, str]) -> tuple[str, dict[str, bytes]]:
    """``carbonfed ARGV --out DIR`` in-process: what it prints and its plots (site paths)."""
    from scenarios.cli import main

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main([*argv, "--out", folder])
        if code != 0:
            raise RuntimeError(f"carbonfed {' '.join(argv)} exited {code}")
        images = {target: (Path(folder) / name).read_bytes() for name, target in plots.items()}
    return out.getvalue(), images


def tiny_report(printed: str) -> str:
    """``carbonfed run tiny``'s report, without the timing and the list of files written."""
    return printed.split("\nwall time", 1)[0].rstrip()


# --- the mkdocs hook ------------------------------------------------------------------------

_TINY: dict[str, str] = {}


def pages() -> dict[str, Callable[[], str]]:
    """Every generated file (path under docs/) and what writes it."""
    spec_cache: dict[str, dict[str, Any]] = {}

    def spec() -> dict[str, Any]:
        if "spec" not in spec_cache:
            spec_cache["spec"] = openapi()
        return spec_cache["spec"]

    return {
        "reference/scenario.md": scenario_reference,
        "reference/settings.md": settings_reference,
        "reference/cli.md": cli_reference,
        "reference/rest-api.md": lambda: rest_reference(spec()),
        "reference/openapi.json": lambda: json.dumps(spec(), indent=1, sort_keys=True) + "\n",
    }


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the build (nothing is written into docs/)."""
    from mkdocs.structure.files import File

    for path, write in pages().items():
        files.append(File.generated(config, path, content=write()))
    for argv, plots in RUNS.items():
        printed, images = run_carbonfed(argv, plots)
        if argv == ("run", "tiny"):
            _TINY["report"] = tiny_report(printed)
        for path, data in images.items():
            files.append(File.generated(config, path, content=data))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: the real run's report where a page asks for it."""
    if TINY_MARKER in markdown:
        markdown = markdown.replace(TINY_MARKER, f"```text\n{_TINY['report']}\n```")
    return markdown
