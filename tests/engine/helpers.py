"""Hand-made books and one-call engine runs for the engine tests."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa

from factories import T0, book_table, write_book
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import BacktestResult, run_backtest

MS = 1_000_000
NAN = math.nan
A = "binance:BTC-USDT"
B = "coinbase:BTC-USD"


def book(rows: list[tuple], levels: Optional[int] = None, t0: int = T0) -> pa.Table:
    """A book table from ``(ms after t0, bids, asks[, flags])`` rows; bids/asks are lists of (px, sz).

    Short sides are padded with missing levels (NaN, 0) up to ``levels`` (default: the widest side).
    """
    width = levels or max(max(len(r[1]), len(r[2])) for r in rows)

    def side(levels_: list[tuple]) -> tuple[list, list]:
        px = [p for p, _ in levels_] + [NAN] * (width - len(levels_))
        sz = [s for _, s in levels_] + [0.0] * (width - len(levels_))
        return px, sz

    ts, bpx, bsz, apx, asz, flags = [], [], [], [], [], []
    for r in rows:
        ts.append(t0 + int(round(r[0] * MS)))
        p, s = side(r[1])
        bpx.append(p)
        bsz.append(s)
        p, s = side(r[2])
        apx.append(p)
        asz.append(s)
        flags.append(r[3] if len(r) > 3 else 0)
    return book_table(ts, bpx, bsz, apx, asz, flags=flags)


def run(root: Path, books: dict[str, pa.Table], **cfg: Any) -> BacktestResult:
    """Write ``books`` (``venue:SYMBOL`` -> table) under ``root`` and backtest them in memory.

    ``cfg`` holds config sections; instruments default to the books' keys and there are no
    arbitrage pairs unless given.
    """
    for name, table in books.items():
        venue, symbol = name.split(":")
        write_book(root, venue, symbol, table)
    data = {"data": str(root), "instruments": list(books), "arbitrage": {"pairs": []}}
    for key, value in cfg.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return run_backtest(load_config_dict(data), write=False, collect=True)


def rows_of(table: pa.Table, venue: Optional[str] = None) -> list[dict]:
    """Rows of a result table as dicts, optionally of one venue only."""
    rows = table.to_pylist()
    return [r for r in rows if venue is None or r.get("venue") == venue]


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def approx_list(values: list, expected: list, rel: float = 1e-12, abs_: float = 1e-12) -> bool:
    """Element-wise closeness with NaN equal to NaN."""
    if len(values) != len(expected):
        return False
    for v, e in zip(values, expected):
        if isinstance(e, float) and math.isnan(e):
            if not (isinstance(v, float) and math.isnan(v)):
                return False
        elif not math.isclose(v, e, rel_tol=rel, abs_tol=abs_):
            return False
    return True


def assert_close_list(values: list, expected: list, rel: float = 1e-12, abs_: float = 1e-12) -> None:
    assert approx_list(values, expected, rel, abs_), f"{values} != {expected}"


def np_array(values: list) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# Rows that give the built-in rule a clear signal (with a wide ``max_spread_bps``): imbalance ±0.5,
# confidence 0.95; ``flat`` has imbalance 0; ``crossed`` is invalid.
WIDE = {"max_spread_bps": 1000.0}
PLAIN = {"position_size": 1.0, "slippage_bps": 0.0, "fee_bps": 0.0}


def buy(ms: float, bid: float, ask: float) -> tuple:
    return (ms, [(bid, 3.0)], [(ask, 1.0)])


def sell(ms: float, bid: float, ask: float) -> tuple:
    return (ms, [(bid, 1.0)], [(ask, 3.0)])


def flat(ms: float, bid: float, ask: float) -> tuple:
    return (ms, [(bid, 1.0)], [(ask, 1.0)])


def crossed(ms: float) -> tuple:
    return (ms, [(101.0, 1.0)], [(100.0, 1.0)])


def since(ts: list[int], t0: int = T0) -> list[float]:
    """ns timestamps as ms after ``t0``."""
    return [(t - t0) / MS for t in ts]
