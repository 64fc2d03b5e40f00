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
    """One instrument's book rows: blocks of (scalars (n, 4) int64, levels (n, 4, N) float64)
    in arrival order; single rows are gathered and joined into a block when needed."""

    __slots__ = ("levels", "blocks", "single", "n")

    def __init__(self, levels: int):
        self.levels = levels
        self.blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self.single: list[BookRow] = []
        self.n = 0

    def append(self, row: BookRow) -> None:
        self.single.append(row)
        self.n += 1

    def extend(self, scalars: np.ndarray, levels: np.ndarray) -> None:
        self._join_single()
        self.blocks.append((scalars, levels))
        self.n += len(scalars)

    def _join_single(self) -> None:
        if self.single:
            rows, self.single = self.single, []
            scalars = np.array([r[:4] for r in rows], dtype=np.int64).reshape(len(rows), 4)
            levels = np.array([r[4:] for r in rows], dtype=np.float64).reshape(len(rows), 4, self.levels)
            self.blocks.append((scalars, levels))

    def __len__(self) -> int:
        return self.n

    def table(self) -> pa.Table:
        self._join_single()
        lv = self.levels
        sc = np.concatenate([b[0] for b in self.blocks])
        block = np.concatenate([b[1] for b in self.blocks])
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

    def _book_buffer(self, inst: Instrument) -> _BookBuffer:
        buf = self.books.get(inst)
        if buf is None:
            buf = self.books[inst] = _BookBuffer(self.levels)
        return buf

    def book_row(self, inst: Instrument, row: BookRow) -> None:
        self._tick(row.ts_recv)
        self._book_buffer(inst).append(row)
        self.counts["book"] += 1

    def book_rows(self, inst: Instrument, scalars: np.ndarray, levels: np.ndarray) -> None:
        """Many book rows at once (see :data:`qfreplay.book.sync.RowsSink`); files split as if
        they had come one by one through :meth:`book_row`."""
        n = len(scalars)
        hours = scalars[:, 0] // NS_PER_HOUR
        start = 0
        while start < n:
            if self._hour is None:
                self._hour = int(hours[start])
            # the rows that go to the current files: same hour, and max_rows not reached
            stop = start + max(0, min(n - start, self.max_rows - self._buffered - 1))
            other = np.flatnonzero(hours[start:stop] != self._hour)
            if len(other):
                stop = start + int(other[0])
            if stop == start:  # this row starts new files
                self._tick(int(scalars[start, 0]))
                stop = start + 1
            else:
                self._buffered += stop - start
            self._book_buffer(inst).extend(scalars[start:stop], levels[start:stop])
            start = stop
        self.counts["book"] += n

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


