"""The ``alliance`` command line (SPEC §5).

Each command lives in its own module and is imported only when it runs, so ``alliance --help``
stays fast and the engine commands never import Django. Exit codes: 0 success, 1 bad input or a
failed computation (with a message that says what to fix), 2 usage errors (click's own).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from alliance._version import __version__

# name -> "module:attribute". Adding a command: write alliance/cli/<name>.py with a click
# command and add one line here.
COMMANDS: dict[str, str] = {
    "instruments": "alliance.cli.instruments:instruments",
    "score": "alliance.cli.score:score",
    "change": "alliance.cli.change:change",
    "fhir": "alliance.cli.fhir:fhir",
    "simulate": "alliance.cli.simulate:simulate",
    "calibrate": "alliance.cli.calibrate:calibrate",
    "ruptures": "alliance.cli.relationship:ruptures",
    "dropout": "alliance.cli.relationship:dropout",
    "serve": "alliance.cli.web:serve",
    "demo": "alliance.cli.web:demo",
    "manage": "alliance.cli.web:manage",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # not built yet in this checkout
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alliance")
def cli() -> None:
    """Alliance: measurement-based care centred on the therapeutic relationship."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="alliance")
