"""Small hand-made and random datasets for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from qfreplay.schema import book_schema
from qfreplay.store import write_partitioned

T0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z


def book_table(ts, bid_px, bid_sz, ask_px, ask_sz, seq=None, flags=None, ts_event=None) -> pa.Table:
    """A book table from per-row level lists (2-D arrays of equal width N)."""
    bid_px, bid_sz, ask_px, ask_sz = (np.asarray(a, dtype=np.float64) for a in (bid_px, bid_sz, ask_px, ask_sz))
    n, levels = bid_px.shape
    ts = np.asarray(ts, dtype=np.int64)
    seq = np.arange(1, n + 1, dtype=np.int64) if seq is None else np.asarray(seq, np.int64)
    flags = np.zeros(n, np.uint8) if flags is None else np.asarray(flags, np.uint8)
    ts_event = ts - 1_000_000 if ts_event is None else np.asarray(ts_event, np.int64)
    lvl = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), levels)  # noqa: E731
    return pa.Table.from_arrays(
        [pa.array(ts), pa.array(ts_event), pa.array(seq), lvl(bid_px), lvl(bid_sz), lvl(ask_px), lvl(ask_sz), pa.array(flags)],
        schema=book_schema(levels),
    )


def random_book(rng: np.random.Generator, n: int, levels: int = 5, t0: int = T0, step_ms: float = 100.0,
                mid0: float = 100.0, invalid_share: float = 0.02, resync_share: float = 0.01, tick: float = 0.01) -> pa.Table:
    """A random walk book with occasional invalid rows (missing/crossed level 0) and RESYNC flags."""
    ts = t0 + np.cumsum(rng.integers(1, int(step_ms * 2e6), n)).astype(np.int64)
    mid = mid0 + np.cumsum(rng.choice([-1, 0, 0, 1], n)) * tick
    half = rng.integers(1, 4, n) * tick / 2
    steps = np.arange(levels) * tick
    bid_px = (mid - half)[:, None] - steps[None, :]
    ask_px = (mid + half)[:, None] + steps[None, :]
    bid_sz = rng.exponential(1.0, (n, levels)).round(4) + 0.0001
    ask_sz = rng.exponential(1.0, (n, levels)).round(4) + 0.0001
    bad = rng.random(n) < invalid_share
    for i in np.flatnonzero(bad):
        kind = rng.integers(0, 3)
        if kind == 0:
            bid_px[i, 0] = np.nan
            bid_sz[i, 0] = 0
        elif kind == 1:
            ask_sz[i, 0] = 0
        else:
            ask_px[i, 0] = bid_px[i, 0]
    if levels > 2:
        missing_tail = rng.random(n) < 0.05
        bid_px[missing_tail, -1] = np.nan
        bid_sz[missing_tail, -1] = 0
    flags = (rng.random(n) < resync_share).astype(np.uint8)
    return book_table(ts, bid_px, bid_sz, ask_px, ask_sz, flags=flags)


def write_book(root: Path, venue: str, symbol: str, table: pa.Table) -> None:
    write_partitioned(root, "book", venue, symbol, table)
