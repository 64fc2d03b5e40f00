"""CLI commands, one module each; this list is what ``qfreplay --help`` shows."""

from .backtest import backtest, query
from .exchange import exchange
from .live import live
from .normalize import normalize
from .record import record
from .report import report
from .simulate import simulate
from .sweep import sweep

COMMANDS = [backtest, query]
COMMANDS += [record, normalize, exchange]
COMMANDS += [sweep]
COMMANDS += [live]
COMMANDS += [simulate]
COMMANDS += [report]
