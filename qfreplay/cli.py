"""The ``qfreplay`` command: a thin click group over library functions.

Each command parses its options, calls one library function and prints. Heavy imports (numba,
panel, dask) happen inside the commands so that ``qfreplay --help`` stays fast. Every
:class:`~qfreplay.errors.QfreplayError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import QfreplayError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # one clear line for every user error, never a traceback
        try:
            return super().invoke(ctx)
        except QfreplayError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="qfreplay")
def cli() -> None:
    """Record, replay and live-run crypto market microstructure strategies.

    \b
    Typical use:
      qfreplay backtest --config configs/demo.yaml      # replay the bundled sample data
      qfreplay report results/demo                      # look at it in the browser
      qfreplay exchange & qfreplay record --config configs/local.yaml   # record offline
    """


def _register() -> None:
    """Attach the commands; each lives beside the library code it drives."""
    from .commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="qfreplay")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
