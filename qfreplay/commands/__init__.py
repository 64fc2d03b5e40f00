"""CLI commands, one module each; this list is what ``qfreplay --help`` shows."""

from .backtest import backtest, query

COMMANDS = [backtest, query]
