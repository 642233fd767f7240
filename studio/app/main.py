"""`studio`: the CLI's commands plus `demo`, `gui` and the bare command that opens the window.

This layer sits above studio.ui and studio.cli (import-linter), so it imports the GUI like any other
module, inside the handlers that need it: `studio --help` and the data commands never load Qt.
"""

from __future__ import annotations

from collections.abc import Sequence

from studio.cli import main as cli

COMMAND_MODULES = [*cli.COMMAND_MODULES, "studio.app.gui_commands"]


def main(argv: Sequence[str] | None = None) -> int:
    from studio.app.gui_commands import cmd_start

    return cli.main(argv, command_modules=COMMAND_MODULES, default_handler=cmd_start)
