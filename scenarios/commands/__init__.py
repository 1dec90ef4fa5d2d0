"""Registry of the ``carbonfed`` sub-commands: name -> command object."""

from __future__ import annotations

from scenarios.commands.admin import AdminCommand, DbCommand
from scenarios.commands.agent import AgentCommand
from scenarios.commands.base import Command
from scenarios.commands.data import DataCommand
from scenarios.commands.game import GameCommand
from scenarios.commands.market import MarketCommand
from scenarios.commands.run import RunCommand
from scenarios.commands.scenarios import ScenariosCommand
from scenarios.commands.serve import ServeCommand
from scenarios.commands.sweep import SweepCommand

COMMANDS: dict[str, Command] = {
    "run": RunCommand(),
    "scenarios": ScenariosCommand(),
}
COMMANDS["game"] = GameCommand()
COMMANDS["serve"] = ServeCommand()
COMMANDS["agent"] = AgentCommand()
COMMANDS["data"] = DataCommand()
COMMANDS["market"] = MarketCommand()
COMMANDS["sweep"] = SweepCommand()
COMMANDS["admin"] = AdminCommand()
COMMANDS["db"] = DbCommand()
