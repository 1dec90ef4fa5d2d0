"""Registry of the ``carbonfed`` sub-commands: name -> where the command lives and what it does.

A command's module is imported only when that command is run (or its options are asked for):
between them the modules pull in Pyomo, SciPy, Dask, Bokeh, uvicorn and SQLAlchemy, and
``carbonfed --help`` or ``carbonfed scenarios`` should not wait for all of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from scenarios.commands.base import Command


@dataclass(frozen=True)
class CommandRef:
    """A sub-command: its one-line help and the class (``module:Class``) that implements it."""

    help: str
    target: str

    def load(self) -> Command:
        module, name = self.target.split(":")
        command: Command = getattr(importlib.import_module(module), name)()
        return command


COMMANDS: dict[str, CommandRef] = {
    "run": CommandRef(
        "run a federation scenario (a built-in name or a YAML file) and report the savings",
        "scenarios.commands.run:RunCommand"),
    "scenarios": CommandRef(
        "list the built-in scenarios with a one-line description each",
        "scenarios.commands.scenarios:ScenariosCommand"),
    "game": CommandRef(
        "Allocate a cooperative game's cost or profit (Shapley, nucleolus, least core, ...).",
        "scenarios.commands.game:GameCommand"),
    "serve": CommandRef(
        "start the live broker's REST API (SQLite file by default, PostgreSQL by URL)",
        "scenarios.commands.serve:ServeCommand"),
    "agent": CommandRef(
        "run a site agent: register with a live broker, send offers, run the jobs it assigns",
        "scenarios.commands.agent:AgentCommand"),
    "data": CommandRef(
        "inspect real-data files (carbon, prices, affinity, traces, fleets, GPU power)",
        "scenarios.commands.data:DataCommand"),
    "market": CommandRef(
        "who gains by federating, how to share it, and what carbon policies do",
        "scenarios.commands.market:MarketCommand"),
    "sweep": CommandRef(
        "run a grid of scenario overrides x carbon prices x policies x seeds",
        "scenarios.commands.sweep:SweepCommand"),
    "admin": CommandRef(
        "enrol and manage sites of a running broker (needs the admin token)",
        "scenarios.commands.admin:AdminCommand"),
    "submit": CommandRef(
        "submit jobs to a running broker, their work as hours on a GPU type (admin token)",
        "scenarios.commands.submit:SubmitCommand"),
    "db": CommandRef(
        "database schema: carbonfed db upgrade --db URL (serve also does this on start)",
        "scenarios.commands.admin:DbCommand"),
}
