"""Option helpers shared by the commands."""

from __future__ import annotations

import click

from ..config import Config, load_config


def config_option(required: bool = False):
    """``--config F``: the YAML config file (SPEC section 7)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        required=required,
        help="YAML config file (see README: Config keys). Unknown keys are errors.",
    )


def read_config(path: str | None) -> Config:
    """Load the config file, or the defaults when no file is given."""
    return load_config(path)
