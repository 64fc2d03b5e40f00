"""Buffer dataset rows per instrument and publish them as Parquet files by atomic rename."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa

from ..book.sync import BookRow
from ..instruments import Instrument
from ..schema import EVENTS_SCHEMA, TICKER_SCHEMA, TRADES_SCHEMA, book_schema
from ..store import write_partitioned
from ..venues.common import Ticker, Trade

NS_PER_HOUR = 3_600 * 1_000_000_000


class _BookBuffer:
    __slots__ = ("levels", "scalars", "px")

    def __init__(self, levels: int):
        self.levels = levels
        self.scalars: list[tuple[int, int, int, int]] = []
        self.px: list[np.ndarray] = []

    def append(self, row: BookRow) -> None:
        self.scalars.append((row.ts_recv, row.ts_event, row.seq, row.flags))
        self.px.append(np.concatenate((row.bid_px, row.bid_sz, row.ask_px, row.ask_sz)))

    def __len__(self) -> int:
        return len(self.scalars)

    def table(self) -> pa.Table:
        n, lv = len(self.scalars), self.levels
        sc = np.array(self.scalars, dtype=np.int64).reshape(n, 4)
        block = np.vstack(self.px).reshape(n, 4, lv)
        cols = [pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(block[:, k, :]).ravel()), lv) for k in range(4)]
        return pa.Table.from_arrays(
            [pa.array(sc[:, 0]), pa.array(sc[:, 1]), pa.array(sc[:, 2]), *cols, pa.array(sc[:, 3].astype(np.uint8))],
            schema=book_schema(lv),
        )


class DatasetWriter:
    """Rows of book / trades / ticker / events for many instruments, published on demand.

    :meth:`rotate` publishes when the UTC hour (and so the date) of ``ts_recv`` changes;
    :meth:`publish` writes everything buffered. Files never overwrite earlier ones.
    """

    def __init__(self, root: str | Path, levels: int, max_rows: int = 200_000):
        self.root = Path(root)
        self.levels = levels
        self.max_rows = max_rows
        self.books: dict[Instrument, _BookBuffer] = {}
        self.rows: dict[str, dict[Instrument, list]] = {"trades": defaultdict(list), "ticker": defaultdict(list), "events": defaultdict(list)}
        self.counts = defaultdict(int)
        self.files: list[Path] = []
        self._hour: Optional[int] = None
        self._buffered = 0

    # -- appending

    def _tick(self, ts: int) -> None:
        self._buffered += 1
        hour = ts // NS_PER_HOUR
        if self._hour is None:
            self._hour = hour
        elif hour != self._hour or self._buffered >= self.max_rows:
            self.publish()
            self._hour = hour

    def book_row(self, inst: Instrument, row: BookRow) -> None:
        self._tick(row.ts_recv)
        buf = self.books.get(inst)
        if buf is None:
            buf = self.books[inst] = _BookBuffer(self.levels)
        buf.append(row)
        self.counts["book"] += 1

    def trade(self, inst: Instrument, ts_recv: int, t: Trade) -> None:
        self._tick(ts_recv)
        self.rows["trades"][inst].append((ts_recv, t.ts_event, t.trade_id, t.price, t.size, t.side))
        self.counts["trades"] += 1

    def ticker(self, inst: Instrument, ts_recv: int, t: Ticker) -> None:
        self._tick(ts_recv)
        self.rows["ticker"][inst].append((ts_recv, t.ts_event, t.last, t.open, t.high, t.low, t.volume, t.quote_volume, t.change_pct))
        self.counts["ticker"] += 1

    def event(self, inst: Instrument, ts_recv: int, kind: str, detail: str) -> None:
        self._tick(ts_recv)
        self.rows["events"][inst].append((ts_recv, kind, detail))
        self.counts["events"] += 1

    # -- publishing

    def rotate(self, now_ns: Optional[int] = None) -> None:
        """Publish if the UTC hour changed since the buffered rows began (call it from a timer)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if self._hour is not None and now_ns // NS_PER_HOUR != self._hour and self._buffered:
            self.publish()
            self._hour = now_ns // NS_PER_HOUR

    def publish(self) -> list[Path]:
        """Write every buffered row to new Parquet files (atomic rename); returns the files."""
        written: list[Path] = []
        for inst, buf in self.books.items():
            if len(buf):
                written += write_partitioned(self.root, "book", inst.venue, inst.symbol, buf.table())
        self.books = {}
        schemas = {"trades": TRADES_SCHEMA, "ticker": TICKER_SCHEMA, "events": EVENTS_SCHEMA}
        for name, per_inst in self.rows.items():
            for inst, rows in per_inst.items():
                if rows:
                    cols = list(zip(*rows))
                    table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schemas[name])], schema=schemas[name])
                    written += write_partitioned(self.root, name, inst.venue, inst.symbol, table)
            self.rows[name] = defaultdict(list)
        self._buffered = 0
        self.files += written
        return written


