"""A small synthetic two-venue market for the app tests and ``benchmarks/app.py``.

Writes every dataset table (book, trades, ticker, events; SPEC section 2) for a pair of
instruments that track one fair price with venue basis noise, occasional dislocations wide
enough to be arbitrage episodes, a slowly drifting order-flow imbalance (so the imbalance rule
trades), a few invalid rows, one gap + resync and one disconnect. Fully vectorized, so a day of
100 ms rows takes seconds. Independent of ``qfreplay simulate`` so the app tests do not depend on
another module's data.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from qfreplay.schema import EVENTS_SCHEMA, FLAG_RESYNC, TICKER_SCHEMA, TRADES_SCHEMA
from qfreplay.store import write_partitioned

T0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z
MS = 1_000_000
PAIR = (("binance", "BTC-USDT"), ("coinbase", "BTC-USD"))


def _ou(rng: np.random.Generator, n: int, sd: float, keep: float) -> np.ndarray:
    """An AR(1) path with stationary deviation ``sd`` (vectorized through a linear filter on chunks)."""
    shocks = rng.normal(0.0, sd * np.sqrt(1 - keep**2), n)
    out = np.empty(n)
    # exact AR(1) with a blocked recurrence: x_t = keep^k x_{t-k} + sum keep^j e_{t-j}
    block = 512
    powers = keep ** np.arange(block)
    x = 0.0
    for lo in range(0, n, block):
        e = shocks[lo: lo + block]
        k = len(e)
        conv = np.convolve(e, powers[:k])[:k]
        out[lo: lo + k] = conv + x * keep ** np.arange(1, k + 1)
        x = out[lo + k - 1]
    return out


def _fixed_list(a: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(a).ravel()), a.shape[1])


def _book(rng, ts, mid, levels, tick, spread_ticks, latency_ms, tilt):
    n = len(ts)
    half = rng.integers(1, spread_ticks + 1, n) * tick / 2
    best_bid = np.round((mid - half) / tick) * tick
    best_ask = np.maximum(np.round((mid + half) / tick) * tick, best_bid + tick)
    gaps = rng.integers(1, 60, (n, levels)) * tick
    gaps[:, 0] = 0
    bid_px = best_bid[:, None] - np.cumsum(gaps, axis=1)
    ask_px = best_ask[:, None] + np.cumsum(rng.integers(1, 60, (n, levels)) * tick * (np.arange(levels) > 0), axis=1)
    depth = 1.0 + 0.15 * np.arange(levels)
    bid_sz = np.round(rng.exponential(0.4, (n, levels)) * depth * np.exp(tilt)[:, None], 4) + 0.0001
    ask_sz = np.round(rng.exponential(0.4, (n, levels)) * depth * np.exp(-tilt)[:, None], 4) + 0.0001
    # a few invalid rows: crossed or empty best level
    bad = np.flatnonzero(rng.random(n) < 0.002)
    ask_px[bad[::2], 0] = bid_px[bad[::2], 0]
    bid_px[bad[1::2], 0] = np.nan
    bid_sz[bad[1::2], 0] = 0.0
    ts_event = ts - np.round(rng.lognormal(np.log(latency_ms), 0.4, n) * MS).astype(np.int64)
    return ts_event, bid_px, bid_sz, ask_px, ask_sz


def write_market(root: str | Path, minutes: float = 10, seed: int = 7, t0: int = T0, step_ms: int = 100,
                 levels: int = 10, instruments: Sequence[tuple[str, str]] = PAIR, extras: bool = True) -> dict:
    """Write a synthetic market under ``root``; returns ``{"rows": per instrument, "t0", "t1"}``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    n = int(minutes * 60_000 // step_ms)
    grid = t0 + np.arange(n, dtype=np.int64) * step_ms * MS
    tilt = _ou(rng, n, 0.45, 0.995)  # shared order-flow pressure, which leads the price a little
    fair = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.1e-4, n) + 0.05e-4 * tilt))
    info = {"rows": {}, "t0": int(grid[0]), "t1": int(grid[-1])}
    for k, (venue, symbol) in enumerate(instruments):
        irng = np.random.default_rng(seed * 1000 + k)
        ts = grid + irng.integers(0, step_ms * MS // 2, n)
        basis = _ou(irng, n, 2.5e-4, 0.99)
        # dislocations: a jump of 25-45 bps on one venue decaying over a few seconds
        for at in irng.choice(n, max(2, n // 3000), replace=False):
            size = irng.uniform(25e-4, 45e-4) * irng.choice([-1, 1])
            span = np.arange(min(60, n - at))
            basis[at: at + len(span)] += size * np.exp(-span / 15)
        mid = fair * (1 + basis)
        ts_event, bpx, bsz, apx, asz = _book(irng, ts, mid, levels, 0.01, 3 if k == 0 else 40,
                                              25 if k == 0 else 60, tilt + _ou(irng, n, 0.2, 0.9))
        flags = np.zeros(n, np.uint8)
        flags[0] = FLAG_RESYNC
        keep = np.ones(n, bool)
        events = [(int(ts[0]) - 5 * MS, "connect", "subscribed")]
        if extras and n > 200:
            gap_at = int(n * 0.4)
            flags[gap_at] = FLAG_RESYNC
            events += [(int(ts[gap_at]) - 3 * MS, "gap", f"{symbol}: expected {gap_at}, got {gap_at + 3}"),
                       (int(ts[gap_at]) - 1 * MS, "resync", f"{symbol}: book rebuilt from snapshot")]
            down = int(n * 0.7)
            keep[down: down + 20] = False  # 2 s without rows while reconnecting
            flags[down + 20] = FLAG_RESYNC
            events += [(int(ts[down]), "disconnect", "connection closed (1006)"),
                       (int(ts[down + 19]), "connect", "reconnected after 1 attempt"),
                       (int(ts[down + 19]) + MS, "resync", f"{symbol}: book rebuilt from snapshot"),
                       (int(ts[int(n * 0.55)]), "malformed", "unexpected end of JSON")]
        idx = np.flatnonzero(keep)
        book = pa.Table.from_arrays(
            [pa.array(ts[idx]), pa.array(ts_event[idx]), pa.array(np.arange(1, n + 1, dtype=np.int64)[idx]),
             _fixed_list(bpx[idx]), _fixed_list(bsz[idx]), _fixed_list(apx[idx]), _fixed_list(asz[idx]),
             pa.array(flags[idx])],
            names=["ts_recv", "ts_event", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz", "flags"],
        )
        write_partitioned(root, "book", venue, symbol, book)
        info["rows"][f"{venue}:{symbol}"] = len(idx)
        if not extras:
            continue
        # trades: ~3 per second at the touch
        per_row = irng.poisson(0.3, len(idx))
        rows = np.repeat(idx, per_row)
        side = irng.choice(np.array([-1, 1], np.int8), len(rows))
        price = np.where(side > 0, apx[rows, 0], bpx[rows, 0])
        ok = np.isfinite(price)
        rows, side, price = rows[ok], side[ok], price[ok]
        size = np.round(irng.exponential(0.05, len(rows)), 5) + 1e-5
        t_tr = ts[rows] + irng.integers(0, step_ms * MS, len(rows))
        order = np.argsort(t_tr, kind="stable")
        t_tr, side, price, size = t_tr[order], side[order], price[order], size[order]
        trades = pa.Table.from_arrays(
            [pa.array(t_tr), pa.array(t_tr - 20 * MS), pa.array(np.arange(len(t_tr), dtype=np.int64) + 1_000_000),
             pa.array(price), pa.array(size), pa.array(side)], schema=TRADES_SCHEMA)
        write_partitioned(root, "trades", venue, symbol, trades)
        # ticker: once a second, 24 h window opened 1.2 % lower than the first price
        sec = idx[:: max(1, 1000 // step_ms)]
        last = (bpx[sec, 0] + apx[sec, 0]) / 2
        last = np.where(np.isfinite(last), last, mid[sec])
        open_ = mid[0] * 0.988
        high = np.maximum.accumulate(np.maximum(last, mid[0] * 1.004))
        low = np.minimum.accumulate(np.minimum(last, open_ * 0.995))
        vol_cum = np.cumsum(size)
        traded = np.searchsorted(t_tr, ts[sec], side="right")
        base_vol = 1_800.0 + k * 400
        volume = base_vol + np.concatenate([[0.0], vol_cum])[traded]
        ticker = pa.Table.from_arrays(
            [pa.array(ts[sec]), pa.array(ts[sec] - 20 * MS), pa.array(last), pa.array(np.full(len(sec), open_)),
             pa.array(high), pa.array(low), pa.array(volume), pa.array(volume * open_ * 1.003),
             pa.array((last / open_ - 1) * 100)], schema=TICKER_SCHEMA)
        write_partitioned(root, "ticker", venue, symbol, ticker)
        events.sort()
        ev = pa.Table.from_arrays([pa.array([e[0] for e in events], pa.int64()), pa.array([e[1] for e in events]),
                                   pa.array([e[2] for e in events])], schema=EVENTS_SCHEMA)
        write_partitioned(root, "events", venue, symbol, ev)
    return info


def market_config(data: Path, out: Path, **extra) -> dict:
    """A config for the pair of this market (both instruments backtested, one arbitrage pair)."""
    return {"data": str(data), "out": str(out), "instruments": ["binance:BTC-USDT", "coinbase:BTC-USD"],
            "arbitrage": {"pairs": [["binance:BTC-USDT", "coinbase:BTC-USD"]]}, **extra}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
