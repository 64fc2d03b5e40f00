"""Property tests: the numba engine equals the plain-Python reading of SPEC 4 and 5 (tests/reference.py)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference as R
from factories import T0, book_table, write_book
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from qfreplay.engine.run import InstrumentRun
from qfreplay.engine.strategy import load_strategy
from qfreplay.instruments import Instrument
from qfreplay.store import NS_PER_DAY, BookArrays, book_arrays, load_book

from .helpers import A, B

REL = 1e-9
ABS = 1e-12
EXAMPLES = int(os.environ.get("QFREPLAY_EXAMPLES", "60"))  # raise it for a long hunt
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SIGNAL_COLUMNS = ("ts_recv", "seq", "mid", "spread_bps", "bid_vol", "ask_vol", "imbalance", "micro_price",
                  "ofi", "signal", "confidence", "valid")
FILL_COLUMNS = ("ts_order", "ts_fill", "qty", "price", "fee", "position", "cash")
EQUITY_COLUMNS = ("ts_recv", "seq", "position", "cash", "equity")
RT_COLUMNS = ("ts_open", "ts_close", "side", "qty", "entry_px", "exit_px", "fees", "pnl")
ARB_COLUMNS = ("buy_venue", "buy_symbol", "sell_venue", "sell_symbol", "ts_start", "ts_end", "duration_ms", "points",
               "max_net_bps", "mean_net_bps", "max_size_top", "max_profit_walk")
SUMMARY_KEYS = ("rows", "invalid_rows", "total_pnl", "realized_pnl", "fees", "fills", "round_trips", "win_rate",
                "avg_pnl_per_round_trip", "max_drawdown", "sharpe")


# ------------------------------------------------------------------------------- generators


def random_rows(rng: np.random.Generator, n: int, width: int, t0: int, step_ms: float, equal_share: float,
                invalid_share: float, resync_share: float, hole_share: float, mid_walk: np.ndarray) -> pa.Table:
    """A random book: equal timestamps, invalid rows of every kind, RESYNC flags, holes and short books."""
    gaps = rng.integers(1, max(2, int(step_ms * 2e6)), n)
    gaps[rng.random(n) < equal_share] = 0
    ts = t0 + np.cumsum(gaps).astype(np.int64)
    tick = 0.01
    half = rng.integers(1, 4, n) * tick / 2
    steps = np.arange(width) * tick
    bid_px = (mid_walk - half)[:, None] - steps[None, :]
    ask_px = (mid_walk + half)[:, None] + steps[None, :]
    bid_sz = rng.exponential(1.0, (n, width)).round(3) + 0.001
    ask_sz = rng.exponential(1.0, (n, width)).round(3) + 0.001
    for i in np.flatnonzero(rng.random(n) < hole_share):
        side_px, side_sz = (bid_px, bid_sz) if rng.random() < 0.5 else (ask_px, ask_sz)
        k = int(rng.integers(1, width)) if width > 1 else 0
        if k == 0:
            continue
        kind = rng.integers(0, 3)
        if kind == 0:  # book shorter than N: every level from k on missing
            side_px[i, k:] = np.nan
            side_sz[i, k:] = 0.0
        elif kind == 1:  # one level with no size
            side_sz[i, k] = 0.0
        else:  # one level with no price
            side_px[i, k] = np.nan
    for i in np.flatnonzero(rng.random(n) < invalid_share):
        kind = rng.integers(0, 5)
        if kind == 0:
            bid_px[i, 0] = np.nan
        elif kind == 1:
            ask_sz[i, 0] = 0.0
        elif kind == 2:
            ask_px[i, 0] = bid_px[i, 0]  # locked
        elif kind == 3:
            bid_sz[i, 0] = np.nan
        else:
            ask_px[i, 0] = bid_px[i, 0] - tick  # crossed
    flags = (rng.random(n) < resync_share).astype(np.uint8)
    flags[rng.random(n) < 0.02] |= 2  # other bits do not mean RESYNC
    return book_table(ts, bid_px, bid_sz, ask_px, ask_sz, flags=flags)


@st.composite
def scenarios(draw):
    """Two instruments of one asset, a config and the books."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_a = draw(st.integers(1, 220))
    n_b = draw(st.integers(1, 220))
    width_a = draw(st.integers(1, 6))
    width_b = draw(st.sampled_from([width_a, draw(st.integers(1, 6))]))
    step_ms = draw(st.sampled_from([20.0, 300.0, 1500.0]))
    span = int(max(n_a, n_b) * step_ms * 1e6)
    # sometimes the rows straddle UTC midnight, so the backtest runs them as two day chunks
    t0 = T0 - (int(rng.integers(0, span)) if draw(st.booleans()) else 0)
    equal_share = draw(st.sampled_from([0.0, 0.1, 0.4]))
    invalid_share = draw(st.sampled_from([0.0, 0.05, 0.3]))
    resync_share = draw(st.sampled_from([0.0, 0.05]))
    hole_share = draw(st.sampled_from([0.0, 0.1]))
    mid_a = 100 + np.cumsum(rng.choice([-1, 0, 0, 1], n_a)) * 0.01
    mid_b = 100 + np.cumsum(rng.choice([-1, 0, 0, 1], n_b)) * 0.01 + rng.integers(-3, 4) * 0.01
    books = {
        A: random_rows(rng, n_a, width_a, t0, step_ms, equal_share, invalid_share, resync_share, hole_share, mid_a),
        B: random_rows(rng, n_b, width_b, t0 + int(rng.integers(0, 3e9)), step_ms, equal_share, invalid_share,
                       resync_share, hole_share, mid_b),
    }
    max_hold = draw(st.one_of(st.none(), st.sampled_from([50.0, 700.0, 2500.5, 20000.0])))
    cfg = {
        "instruments": draw(st.sampled_from([[A, B], [A]])),
        "features": {"levels": draw(st.integers(1, 8))},
        "signal": {
            "imbalance_threshold": draw(st.sampled_from([0.0, 0.15, 0.4])),
            "max_spread_bps": draw(st.sampled_from([1.0, 2.0, 10.0])),
            "confidence_base": draw(st.sampled_from([0.3, 0.6])),
            "confidence_slope": draw(st.sampled_from([0.0, 2.0])),
            "confidence_cap": draw(st.sampled_from([0.7, 0.95, 1.0])),
        },
        "execution": {
            "min_confidence": draw(st.sampled_from([0.0, 0.6, 0.8])),
            "position_size": draw(st.sampled_from([0.01, 0.7, 4.0])),
            "slippage_bps": draw(st.sampled_from([0.0, 5.0])),
            "fee_bps": draw(st.sampled_from([0.0, 10.0])),
            "fill_model": draw(st.sampled_from(["fixed", "book"])),
            "latency_ms": draw(st.sampled_from([0.0, 0.5, 100.0, 750.0, 3000.0])),
            "cooldown_ms": draw(st.sampled_from([0.0, 100.0, 1000.0])),
            "max_hold_ms": max_hold,
            "flatten_on_neutral": draw(st.booleans()),
        },
        "arbitrage": {
            "pairs": [[A, B]],
            "fee_bps": {"binance": draw(st.sampled_from([0.0, 1.0])), "coinbase": draw(st.sampled_from([0.0, 2.0]))},
            "slippage_bps": draw(st.sampled_from([0.0, 0.5])),
            "max_staleness_ms": draw(st.sampled_from([100.0, 1000.0, 5000.0])),
        },
    }
    return books, cfg


def _write(root: Path, books: dict[str, pa.Table]) -> None:
    for name, table in books.items():
        venue, symbol = name.split(":")
        write_book(root, venue, symbol, table)


# ------------------------------------------------------------------------------- comparisons


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)
    return a == b


def assert_records(actual: list[dict], expected: list[dict], columns: tuple[str, ...], what: str) -> None:
    assert len(actual) == len(expected), f"{what}: {len(actual)} rows, reference {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        for c in columns:
            assert _same(a[c], e[c]), f"{what} row {i} column {c}: engine {a[c]!r}, reference {e[c]!r}\n{a}\n{e}"


def assert_summary(actual: dict, expected: dict, what: str) -> None:
    for k in SUMMARY_KEYS:
        assert _same(actual[k], expected[k]), f"{what} {k}: engine {actual[k]!r}, reference {expected[k]!r}"
    for h in ("1s", "5s", "30s"):
        assert _same(actual["hit_rate"][h], expected["hit_rate"][h]), \
            f"{what} hit_rate {h}: engine {actual['hit_rate'][h]!r}, reference {expected['hit_rate'][h]!r}"


def _of(table: pa.Table, venue: str) -> list[dict]:
    return [r for r in table.to_pylist() if r["venue"] == venue]


def _arb_key(e: dict) -> tuple:
    return (e["ts_start"], e["buy_venue"])


# ------------------------------------------------------------------------------------ tests


@PROPERTY
@given(scenarios())
def test_backtest_equals_reference(scenario):
    # Arrange
    books, cfg_dict = scenario
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), books)
        cfg = load_config_dict({"data": tmp, **cfg_dict})
        # Act
        result = run_backtest(cfg, write=False, collect=True)
    expected = R.reference_backtest(cfg, {name: book_arrays(t) for name, t in books.items()})

    # Assert
    for name, ref in expected["instruments"].items():
        venue = name.split(":")[0]
        assert_records(_of(result.tables["signals"], venue), ref.signals, SIGNAL_COLUMNS, f"{name} signals")
        assert_records(_of(result.tables["equity"], venue), ref.equity, EQUITY_COLUMNS, f"{name} equity")
        assert_records(_of(result.tables["fills"], venue), ref.fills, FILL_COLUMNS, f"{name} fills")
        assert_records(_of(result.tables["round_trips"], venue), ref.round_trips, RT_COLUMNS, f"{name} round_trips")
        assert_summary(result.summary["instruments"][name], ref.summary, name)
    assert set(result.summary["instruments"]) == set(expected["instruments"])
    episodes = sorted(result.tables["arbitrage"].to_pylist(), key=_arb_key)
    assert_records(episodes, sorted(expected["arbitrage"], key=_arb_key), ARB_COLUMNS, "arbitrage")
    arb, ref_arb = result.summary["arbitrage"], expected["summary"]["arbitrage"]
    assert arb["episodes"] == ref_arb["episodes"]
    assert math.isclose(arb["total_duration_ms"], ref_arb["total_duration_ms"], rel_tol=REL, abs_tol=ABS)
    assert_records(arb["top"], ref_arb["top"], ARB_COLUMNS, "arbitrage top")


def _instrument_run(cfg, book: BookArrays, splits: list[int]):
    """Run ``book`` through one InstrumentRun in chunks cut at ``splits``; returns (tables, summary)."""
    run = InstrumentRun(Instrument.parse(A), cfg, load_strategy(cfg.signal))
    bounds = [0, *splits, len(book)]
    parts: dict[str, list[pa.Table]] = {}
    for lo, hi in zip(bounds, bounds[1:]):
        for name, table in run.step(book.slice(lo, hi)).tables().items():
            parts.setdefault(name, []).append(table)
    return {name: pa.concat_tables(ts) for name, ts in parts.items()}, run.summary()


def _identical(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def assert_identical_tables(actual: pa.Table, expected: pa.Table, what: str) -> None:
    """Same schema and bit-for-bit the same values (NaN equal to NaN)."""
    assert actual.schema == expected.schema, what
    a, e = actual.to_pylist(), expected.to_pylist()
    assert len(a) == len(e), what
    for i, (ra, re) in enumerate(zip(a, e)):
        assert _identical(ra, re), f"{what} row {i}: {ra} != {re}"


@PROPERTY
@given(scenarios(), st.data())
def test_chunked_run_equals_one_pass(scenario, data):
    # Arrange
    books, cfg_dict = scenario
    cfg = load_config_dict({"data": ".", **cfg_dict})
    book = book_arrays(books[A])
    n = len(book)
    if data.draw(st.booleans()):
        splits = list(range(1, n))  # one row at a time, as live does
    else:
        splits = sorted(data.draw(st.sets(st.integers(0, n), max_size=6)))

    # Act
    one_tables, one_summary = _instrument_run(cfg, book, [])
    tables, summary = _instrument_run(cfg, book, splits)

    # Assert
    for name in one_tables:
        assert_identical_tables(tables[name], one_tables[name], name)
    assert _identical(summary, one_summary)


@PROPERTY
@given(scenarios())
def test_equity_is_cash_plus_marked_position_and_pnl_splits_into_realized_and_unrealized(scenario):
    # Arrange
    books, cfg_dict = scenario
    cfg = load_config_dict({"data": ".", **cfg_dict})
    book = book_arrays(books[A])

    # Act
    tables, summary = _instrument_run(cfg, book, [])

    # Assert: equity = cash + position × mid on every valid row (the very same float operations)
    signals = tables["signals"].to_pylist()
    equity = tables["equity"].to_pylist()
    for s, e in zip(signals, equity):
        if s["valid"]:
            assert e["equity"] == e["cash"] + e["position"] * s["mid"]
    # total = realized + unrealized, unrealized = position × (mid − average entry) − the opening fees of the
    # open position not yet charged to a round trip, at the mid of the last valid row (nothing fills on
    # invalid rows and their equity carries, so a trailing invalid row changes nothing). Exact in real
    # arithmetic: cash = −Σ q·price − Σ fee; every fee is split pro rata into round-trip shares and the
    # open position's unamortized share, so Σ fee = Σ round-trip fees + unamortized; and under average
    # cost −Σ q·price + position·mid = Σ closed·(exit − entry)·side + position·(mid − entry). In float64 it
    # holds to rounding, relative to the traded notional.
    fills = tables["fills"].to_pylist()
    book_of_fills = R.Account(cfg.execution.fee_bps)
    for f in fills:  # the engine's own fills, booked again at average cost
        book_of_fills.fill(f["ts_order"], f["ts_fill"], f["qty"], f["price"])
    mids = [s["mid"] for s in signals if s["valid"]]
    if mids:
        assert book_of_fills.position == (fills[-1]["position"] if fills else 0.0)
        unrealized = book_of_fills.unrealized(mids[-1])
        notional = sum(abs(f["qty"]) * f["price"] for f in fills) + 1.0
        assert math.isclose(summary["total_pnl"], summary["realized_pnl"] + unrealized, rel_tol=0,
                            abs_tol=1e-12 * notional)
    else:
        assert summary["total_pnl"] == summary["realized_pnl"] == 0.0


@settings(max_examples=max(EXAMPLES // 3, 10), deadline=None)
@given(scenarios())
def test_multi_day_backtest_equals_one_chunk(scenario):
    # Arrange: rows from before until after 00:00 UTC, so the backtest reads two date partitions
    books, cfg_dict = scenario
    table = books[A]
    ts = table.column("ts_recv").to_numpy()
    distinct = np.unique(ts)
    shift = T0 - int(distinct[len(distinct) // 2])  # a middle timestamp lands on midnight
    table = table.set_column(0, "ts_recv", pa.array(ts + shift))
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), {A: table})
        cfg = load_config_dict({"data": tmp, **cfg_dict, "instruments": [A], "arbitrage": {"pairs": []}})
        book = load_book(tmp, Instrument.parse(A))
        # Act
        result = run_backtest(cfg, write=False, collect=True)
    one_tables, one_summary = _instrument_run(cfg, book, [])

    # Assert
    days = np.unique(book.ts_recv // NS_PER_DAY)
    assert len(days) == (2 if len(distinct) > 1 else 1)
    for name in ("signals", "equity", "fills", "round_trips"):
        assert_identical_tables(result.tables[name], one_tables[name], name)
    assert _identical(result.summary["instruments"][A], one_summary)
