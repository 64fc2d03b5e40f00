"""Per-instrument and per-pair engine runs whose state carries across chunks and live rows.

``backtest`` feeds them one instrument-day at a time, ``live`` one book row at a time; the
kernels and their state are the same, so both give the same results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa

from ..config import Config
from ..instruments import Instrument
from ..schema import ARBITRAGE_SCHEMA, EQUITY_SCHEMA, FILLS_SCHEMA, ROUND_TRIPS_SCHEMA, SIGNALS_SCHEMA
from ..store import BookArrays
from . import kernels as K
from .specialize import execution_kernel_for
from .strategy import Strategy
from .user import runtime_error

HIT_HORIZONS = {"1s": 1_000_000_000, "5s": 5_000_000_000, "30s": 30_000_000_000}
SHARPE_ANNUALIZATION = math.sqrt(525_600)


def _ms_to_ns(ms: Optional[float]) -> int:
    return -1 if ms is None else int(round(float(ms) * 1_000_000))


@dataclass
class ChunkResult:
    """What one chunk of one instrument produced, as numpy columns."""

    instrument: Instrument
    ts_recv: np.ndarray
    seq: np.ndarray
    feats: np.ndarray
    valid: np.ndarray
    signal: np.ndarray
    confidence: np.ndarray
    position: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    fill_ts: np.ndarray
    fill_vals: np.ndarray
    rt_ts: np.ndarray
    rt_side: np.ndarray
    rt_vals: np.ndarray

    def _key(self, n: int) -> list[pa.Array]:
        return [pa.array([self.instrument.venue] * n, pa.string()), pa.array([self.instrument.symbol] * n, pa.string())]

    def signals_table(self) -> pa.Table:
        n = len(self.ts_recv)
        cols = self._key(n) + [pa.array(self.ts_recv), pa.array(self.seq)]
        cols += [pa.array(self.feats[:, k]) for k in range(K.N_FEATURES)]
        cols += [pa.array(self.signal), pa.array(self.confidence), pa.array(self.valid)]
        return pa.Table.from_arrays(cols, schema=SIGNALS_SCHEMA)

    def equity_table(self) -> pa.Table:
        n = len(self.ts_recv)
        cols = self._key(n) + [pa.array(self.ts_recv), pa.array(self.seq), pa.array(self.position),
                               pa.array(self.cash), pa.array(self.equity)]
        return pa.Table.from_arrays(cols, schema=EQUITY_SCHEMA)

    def fills_table(self) -> pa.Table:
        n = len(self.fill_ts)
        cols = self._key(n) + [pa.array(self.fill_ts[:, 0]), pa.array(self.fill_ts[:, 1])]
        cols += [pa.array(self.fill_vals[:, k]) for k in range(5)]
        return pa.Table.from_arrays(cols, schema=FILLS_SCHEMA)

    def round_trips_table(self) -> pa.Table:
        n = len(self.rt_ts)
        cols = self._key(n) + [pa.array(self.rt_ts[:, 0]), pa.array(self.rt_ts[:, 1]), pa.array(self.rt_side)]
        cols += [pa.array(self.rt_vals[:, k]) for k in range(5)]
        return pa.Table.from_arrays(cols, schema=ROUND_TRIPS_SCHEMA)

    def tables(self) -> dict[str, pa.Table]:
        return {
            "signals": self.signals_table(),
            "equity": self.equity_table(),
            "fills": self.fills_table(),
            "round_trips": self.round_trips_table(),
        }


def execution_params(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Execution config as the kernel's (float params, int ns params)."""
    ex = cfg.execution
    xp = np.zeros(K.XP_SIZE_, dtype=np.float64)
    xp[K.XP_MIN_CONF] = ex.min_confidence
    xp[K.XP_SIZE] = ex.position_size
    xp[K.XP_SLIP] = ex.slippage_bps
    xp[K.XP_FEE] = ex.fee_bps
    xp[K.XP_BOOK_FILL] = 1.0 if ex.fill_model == "book" else 0.0
    xp[K.XP_FLATTEN] = 1.0 if ex.flatten_on_neutral else 0.0
    xi = np.array([_ms_to_ns(ex.latency_ms), _ms_to_ns(ex.cooldown_ms), _ms_to_ns(ex.max_hold_ms)], dtype=np.int64)
    return xp, xi


class FeatureRun:
    """Features of one instrument with the OFI state carried between chunks."""

    def __init__(self, levels: int):
        self.levels = int(levels)
        self.state = np.zeros(K.FEATURE_STATE_SIZE, dtype=np.float64)

    def step(self, book: BookArrays) -> tuple[np.ndarray, np.ndarray]:
        n = len(book)
        feats = np.empty((n, K.N_FEATURES), dtype=np.float64)
        valid = np.empty(n, dtype=np.bool_)
        K.features_kernel(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz, book.flags, self.levels, self.state, feats, valid)
        return feats, valid


class HitRate:
    """Hit rates for the SPEC horizons, decided as later rows arrive; the undecided tail is carried."""

    def __init__(self) -> None:
        self.ts = np.zeros(0, np.int64)
        self.mid = np.zeros(0, np.float64)
        self.signal = np.zeros(0, np.int8)
        self.start = {h: 0 for h in HIT_HORIZONS}
        self.counts = {h: np.zeros(2, np.int64) for h in HIT_HORIZONS}

    def step(self, ts: np.ndarray, mid: np.ndarray, signal: np.ndarray) -> None:
        if len(ts) == 0:
            return
        if len(self.ts):
            ts, mid, signal = (np.concatenate(p) for p in ((self.ts, ts), (self.mid, mid), (self.signal, signal)))
        for name, h in HIT_HORIZONS.items():
            self.start[name] = K.hit_rate_kernel(ts, mid, signal, self.start[name], h, False, self.counts[name])
        cut = min(self.start.values())
        # keep from the first undecided signal on (those before it are decided for every horizon)
        self.ts, self.mid, self.signal = ts[cut:].copy(), mid[cut:].copy(), signal[cut:].copy()
        for name in self.start:
            self.start[name] -= cut

    def result(self) -> dict[str, Optional[float]]:
        out = {}
        for name, h in HIT_HORIZONS.items():
            counts = self.counts[name].copy()
            if len(self.ts):
                K.hit_rate_kernel(self.ts, self.mid, self.signal, self.start[name], h, True, counts)
            out[name] = float(counts[1] / counts[0]) if counts[0] > 0 else math.nan
        return out


class InstrumentRun:
    """Features, signals, execution and summary state of one instrument."""

    def __init__(self, instrument: Instrument, cfg: Config, strategy: Strategy):
        self.instrument = instrument
        self.features = FeatureRun(cfg.features.levels)
        self.strategy = strategy
        self.sstate = strategy.new_state()
        self._execute = execution_kernel_for(strategy.fn)
        self.xp, self.xi = execution_params(cfg)
        self.ist = np.zeros(K.INT_STATE_SIZE, dtype=np.int64)
        self.fst = np.zeros(K.FLOAT_STATE_SIZE, dtype=np.float64)
        self.hits = HitRate()
        self.first_ts: Optional[int] = None
        self.last_ts: Optional[int] = None

    def step(self, book: BookArrays, feats: np.ndarray | None = None, valid: np.ndarray | None = None) -> ChunkResult:
        """Run one chunk of rows (in (ts_recv, seq) order, after every earlier chunk)."""
        n = len(book)
        if feats is None:
            feats, valid = self.features.step(book)
        signal = np.empty(n, np.int8)
        conf = np.empty(n, np.float64)
        pos = np.empty(n, np.float64)
        cash = np.empty(n, np.float64)
        equity = np.empty(n, np.float64)
        cap = 2 * n + 1
        f_ts = np.empty((cap, 2), np.int64)
        f_vals = np.empty((cap, 5), np.float64)
        rt_ts = np.empty((cap, 2), np.int64)
        rt_side = np.empty(cap, np.int8)
        rt_vals = np.empty((cap, 5), np.float64)
        f0, r0 = int(self.ist[K.IS_FILLS]), int(self.ist[K.IS_ROUND_TRIPS])
        # the kernel appends at its running counters; offset the buffers so each chunk starts at 0
        self.ist[K.IS_FILLS] = 0
        self.ist[K.IS_ROUND_TRIPS] = 0
        try:
            self._execute(
                self.strategy.params, self.sstate, book.ts_recv, feats, valid,
                book.bid_px, book.bid_sz, book.ask_px, book.ask_sz, self.xp, self.xi, self.ist, self.fst,
                signal, conf, pos, cash, equity, f_ts, f_vals, rt_ts, rt_side, rt_vals,
            )
        except Exception as exc:  # noqa: BLE001 - only strategy code can raise inside the kernel
            raise runtime_error(self.strategy, exc, f" on {self.instrument}") from None
        nf, nr = int(self.ist[K.IS_FILLS]), int(self.ist[K.IS_ROUND_TRIPS])
        self.ist[K.IS_FILLS] = f0 + nf
        self.ist[K.IS_ROUND_TRIPS] = r0 + nr
        if n:
            if self.first_ts is None:
                self.first_ts = int(book.ts_recv[0])
            self.last_ts = int(book.ts_recv[-1])
        self.hits.step(book.ts_recv, feats[:, K.F_MID], signal)
        return ChunkResult(
            self.instrument, book.ts_recv, book.seq, feats, valid, signal, conf, pos, cash, equity,
            f_ts[:nf], f_vals[:nf], rt_ts[:nr], rt_side[:nr], rt_vals[:nr],
        )

    def fill_now(self, ts: int, qty: float, book: BookArrays) -> ChunkResult:
        """Book a fill of ``qty`` against the one row of ``book`` at ``ts`` (live mode's manual fill).

        Priced and accounted exactly like the strategy's fills (fill model, slippage, fee, round
        trips); equity is re-marked at the row's mid. Returns a chunk with no rows, only the fill
        and the round trip it may close.
        """
        f_ts, f_vals = np.empty((1, 2), np.int64), np.empty((1, 5), np.float64)
        rt_ts, rt_side, rt_vals = np.empty((1, 2), np.int64), np.empty(1, np.int8), np.empty((1, 5), np.float64)
        f0, r0 = int(self.ist[K.IS_FILLS]), int(self.ist[K.IS_ROUND_TRIPS])
        self.ist[K.IS_FILLS] = 0
        self.ist[K.IS_ROUND_TRIPS] = 0
        q = float(qty)
        price = K.fill_price(q, book.bid_px, book.bid_sz, book.ask_px, book.ask_sz, 0,
                             self.xp[K.XP_BOOK_FILL] != 0.0, self.xp[K.XP_SLIP] / 1e4)
        K._apply_fill(q, price, self.xp[K.XP_FEE], int(ts), int(ts), self.ist, self.fst, f_ts, f_vals, rt_ts, rt_side, rt_vals)
        nf, nr = int(self.ist[K.IS_FILLS]), int(self.ist[K.IS_ROUND_TRIPS])
        self.ist[K.IS_FILLS] = f0 + nf
        self.ist[K.IS_ROUND_TRIPS] = r0 + nr
        self.fst[K.FS_EQUITY] = self.fst[K.FS_CASH] + self.fst[K.FS_POSITION] * (book.bid_px[0, 0] + book.ask_px[0, 0]) / 2.0
        none_i, none_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return ChunkResult(
            self.instrument, none_i, none_i, np.zeros((0, K.N_FEATURES)), np.zeros(0, np.bool_), np.zeros(0, np.int8),
            none_f, none_f, none_f, none_f, f_ts[:nf], f_vals[:nf], rt_ts[:nr], rt_side[:nr], rt_vals[:nr],
        )

    @property
    def rows(self) -> int:
        return int(self.ist[K.IS_ROWS])

    def summary(self) -> dict:
        """The per-instrument summary of SPEC section 4 (does not disturb the carried state)."""
        ist, fst = self.ist, self.fst.copy()
        if ist[K.IS_HAS_MINUTE]:
            K.close_minute(fst)
        n_changes = fst[K.FS_W_N]
        sharpe = math.nan
        if n_changes >= 2:
            sd = math.sqrt(fst[K.FS_W_M2] / (n_changes - 1))
            if sd > 0:
                sharpe = fst[K.FS_W_MEAN] / sd * SHARPE_ANNUALIZATION
        rts = int(ist[K.IS_ROUND_TRIPS])
        realized = float(fst[K.FS_REALIZED])
        return {
            "rows": int(ist[K.IS_ROWS]),
            "invalid_rows": int(ist[K.IS_INVALID]),
            "total_pnl": float(fst[K.FS_EQUITY]),
            "realized_pnl": realized,
            "fees": float(fst[K.FS_FEES]),
            "fills": int(ist[K.IS_FILLS]),
            "round_trips": rts,
            "win_rate": float(ist[K.IS_WINS]) / rts if rts else math.nan,
            "avg_pnl_per_round_trip": realized / rts if rts else math.nan,
            "max_drawdown": float(fst[K.FS_MAX_DD]),
            "sharpe": float(sharpe),
            "hit_rate": self.hits.result(),
        }


class ArbitrageRun:
    """Episodes of one instrument pair (SPEC 5), fed with each side's valid rows as they come."""

    DIRECTIONS = 2

    def __init__(self, a: Instrument, b: Instrument, cfg: Config, levels: int):
        self.a, self.b = a, b
        arb = cfg.arbitrage
        self.fees = np.array(
            [(arb.fee_of(a.venue) + arb.slippage_bps) / 1e4, (arb.fee_of(b.venue) + arb.slippage_bps) / 1e4]
        )
        self.stale = _ms_to_ns(arb.max_staleness_ms)
        self.levels = int(levels)
        self.books = np.full((2, 4, self.levels), np.nan)
        self.ai = np.zeros(K.ARB_INT_STATE_SIZE, np.int64)
        self.af = np.zeros(K.ARB_FLOAT_STATE_SIZE, np.float64)

    def _widen(self, width: int) -> None:
        """Grow the carried books to ``width`` levels (new levels missing), so no stored level is ever cut."""
        if width > self.levels:
            books = np.full((2, 4, width), np.nan)
            books[:, :, : self.levels] = self.books
            self.books, self.levels = books, width

    def _pad(self, arr: np.ndarray, fill: float) -> np.ndarray:
        n, w = arr.shape
        if w == self.levels:
            return arr
        out = np.full((n, self.levels), fill)
        out[:, :w] = arr
        return out

    def step(self, rows_a: Optional[BookArrays], rows_b: Optional[BookArrays], final: bool = False) -> pa.Table:
        """Feed valid rows of A and B (either may be None/empty); returns the episodes that closed."""
        parts = [(r, s) for r, s in ((rows_a, 0), (rows_b, 1)) if r is not None and len(r)]
        if parts:
            self._widen(max(r.levels for r, _ in parts))
            ts = np.concatenate([r.ts_recv for r, _ in parts])
            side = np.concatenate([np.full(len(r), s, np.int64) for r, s in parts])
            order = np.argsort(ts, kind="stable")
            ts, side = ts[order], side[order]
            lv = [np.concatenate([self._pad(getattr(r, c), np.nan if c.endswith("px") else 0.0) for r, _ in parts])[order]
                  for c in ("bid_px", "bid_sz", "ask_px", "ask_sz")]
        else:
            ts = np.zeros(0, np.int64)
            side = np.zeros(0, np.int64)
            lv = [np.zeros((0, self.levels)) for _ in range(4)]
        cap = len(ts) + 4
        ep_ts = np.empty((cap, 2), np.int64)
        ep_vals = np.empty((cap, 5), np.float64)
        ep_dir = np.empty(cap, np.int64)
        n = K.arbitrage_kernel(ts, side, *lv, self.fees, self.stale, final, self.books, self.ai, self.af, ep_ts, ep_vals, ep_dir)
        return self._episodes(ep_ts[:n], ep_vals[:n], ep_dir[:n])

    def _episodes(self, ep_ts: np.ndarray, ep_vals: np.ndarray, ep_dir: np.ndarray) -> pa.Table:
        buy = [self.a if d == 0 else self.b for d in ep_dir]
        sell = [self.b if d == 0 else self.a for d in ep_dir]
        return pa.Table.from_arrays(
            [
                pa.array([i.venue for i in buy], pa.string()),
                pa.array([i.symbol for i in buy], pa.string()),
                pa.array([i.venue for i in sell], pa.string()),
                pa.array([i.symbol for i in sell], pa.string()),
                pa.array(ep_ts[:, 0]),
                pa.array(ep_ts[:, 1]),
                pa.array((ep_ts[:, 1] - ep_ts[:, 0]) / 1e6),
                pa.array(ep_vals[:, 0].astype(np.int64)),
                pa.array(ep_vals[:, 1]),
                pa.array(ep_vals[:, 2]),
                pa.array(ep_vals[:, 3]),
                pa.array(ep_vals[:, 4]),
            ],
            schema=ARBITRAGE_SCHEMA,
        )


def valid_rows(book: BookArrays, valid: np.ndarray) -> BookArrays:
    """The rows of ``book`` where ``valid`` is True."""
    if valid.all():
        return book
    idx = np.flatnonzero(valid)
    return BookArrays(*(a[idx] for a in book))
