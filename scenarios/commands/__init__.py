"""Registry of the ``carbonfed`` sub-commands: name -> command object."""

from __future__ import annotations

from scenarios.commands.base import Command
from scenarios.commands.game import GameCommand
from scenarios.commands.run import RunCommand
from scenarios.commands.scenarios import ScenariosCommand

COMMANDS: dict[str, Command] = {
    "run": RunCommand(),
    "scenarios": ScenariosCommand(),
}
COMMANDS["game"] = GameCommand()
