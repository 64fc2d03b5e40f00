"""``qfreplay live``: book rows, one at a time as they are recorded, through the backtest's own engine runs.

Data flow: venues → book → recorder (writes the dataset) → ``on_book_row`` → :class:`LiveEngine`
(the :class:`~qfreplay.engine.run.InstrumentRun` and :class:`~qfreplay.engine.run.ArbitrageRun`
objects the backtest uses, their state carried from row to row) → :class:`~qfreplay.live_results.LiveResults`
(the results folder, readable while the session runs) → the dashboard.

Ordering, which is what makes a backtest over the recording reproduce the session exactly:

- Each instrument's rows arrive in (ts_recv, seq) order (one book, one connection at a time), so a
  row goes through its instrument run the moment it arrives: signal, fill and equity of that row
  are out within microseconds.
- Rows of *different* instruments may arrive out of ts_recv order (a row is emitted at the end of
  its cadence interval; a Binance book comes back from a REST snapshot). Arbitrage merges a pair's
  valid rows by ts_recv, so it holds them in a reorder window and feeds them, sorted, once the
  clock is ``reorder_ms`` plus the row cadence past them (the clock as read at the previous
  commit, so that a stalled event loop cannot outrun the rows it held up): the merge the backtest
  makes, cut at UTC days like the backtest's day loop. A row older than the window when it
  arrives is counted in ``late_rows`` (it would make arbitrage differ from a backtest;
  ``max_row_lag_ms`` in ``live.json`` shows how close a session came).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol

import numpy as np
import pyarrow as pa

from ..book.sync import BookRow
from ..config import Config, ConfigError
from ..errors import DataError
from ..instruments import Instrument
from ..schema import TABLES, table_schema
from ..store import NS_PER_DAY, BookArrays, book_arrays, date_of, iter_book_days, partition_dates, read_partition
from .backtest import arbitrage_summary, sort_episodes
from .run import ArbitrageRun, ChunkResult, FeatureRun, InstrumentRun, execution_params
from .strategy import Strategy, load_strategy

#: Arbitrage holds valid rows this long before feeding them (see the module docstring).
DEFAULT_REORDER_MS = 2_000
#: Results (part files, summary.json) are refreshed this often.
DEFAULT_REFRESH_S = 1.0
#: Arbitrage takes the rows the reorder window released this often (small batches, short pauses).
COMMIT_S = 0.1
#: Rows of latency kept for the p50 / p99 in ``live.json``.
LATENCY_WINDOW = 65_536
#: Sort key of episodes closed by the final step (after every UTC day, as in the backtest).
_FINAL_DAY = "9999-12-31"

# Where a result table's rows belong in the backtest's day loop: the UTC day of this column.
DAY_COLUMN = {"signals": "ts_recv", "equity": "ts_recv", "fills": "ts_fill", "round_trips": "ts_close"}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def one_row(row: BookRow) -> BookArrays:
    """A recorder row as a one-row :class:`BookArrays` (views of its level arrays, no copies).

    Read-only like the Arrow-backed arrays a backtest loads, so that live and backtest share one
    compiled specialization of each kernel.
    """
    lv = lambda a: _readonly(np.ascontiguousarray(a, dtype=np.float64).reshape(1, -1))  # noqa: E731
    return BookArrays(
        _readonly(np.array([row.ts_recv], np.int64)), _readonly(np.array([row.ts_event], np.int64)),
        _readonly(np.array([row.seq], np.int64)), _readonly(np.array([row.flags], np.uint8)),
        lv(row.bid_px), lv(row.bid_sz), lv(row.ask_px), lv(row.ask_sz),
    )


def _stack(books: list[BookArrays]) -> Optional[BookArrays]:
    if not books:
        return None
    if len(books) == 1:
        return books[0]
    return BookArrays(*(np.concatenate(cols) for cols in zip(*books)))


_CHUNK_FIELDS = [f.name for f in fields(ChunkResult) if f.name != "instrument"]


def concat_chunks(chunks: list[ChunkResult]) -> ChunkResult:
    """Chunks of one instrument, in order, as one chunk."""
    if len(chunks) == 1:
        return chunks[0]
    return ChunkResult(chunks[0].instrument, *(np.concatenate([getattr(c, f) for c in chunks]) for f in _CHUNK_FIELDS))


def split_by_day(table: pa.Table, column: str) -> list[tuple[str, pa.Table]]:
    """``(YYYY-MM-DD, rows)`` of ``table`` by the UTC day of ``column`` (rows keep their order)."""
    if table.num_rows == 0:
        return []
    days = table.column(column).to_numpy() // NS_PER_DAY
    if days[0] == days[-1] and (len(days) < 3 or (days == days[0]).all()):
        return [(date_of(int(days[0]) * NS_PER_DAY), table)]
    return [(date_of(int(d) * NS_PER_DAY), table.filter(pa.array(days == d))) for d in np.unique(days)]


def chunk_tables(taken: list[tuple[int, list[ChunkResult]]]) -> list[tuple[str, str, int, pa.Table]]:
    """``(table, UTC day, instrument index, rows)`` of chunks handed over by :meth:`LiveEngine.take_chunks`."""
    out = []
    for idx, chunks in taken:
        for name, table in concat_chunks(chunks).tables().items():
            for day, part in split_by_day(table, DAY_COLUMN[name]):
                out.append((name, day, idx, part))
    return out


# ----------------------------------------------------------------------------- arbitrage window


class ArbitrageWindow:
    """Valid rows of the pair instruments, held until the clock passes them, then fed in ts order."""

    def __init__(self, cfg: Config, pairs: list[tuple[Instrument, Instrument]]):
        self.cfg = cfg
        self.pairs = pairs
        self.instruments = list(dict.fromkeys(i for p in pairs for i in p))
        self.held: dict[Instrument, list[tuple[int, int, int, BookArrays]]] = {i: [] for i in self.instruments}
        self.fed_to: Optional[int] = None  # every row with ts_recv ≤ fed_to has been fed
        self.arbs: Optional[list[ArbitrageRun]] = None
        self.parts: list[tuple[tuple[str, int, int], pa.Table]] = []
        self.late = 0
        self._count = 0
        self._unsorted: set[Instrument] = set()
        self._sorted: Optional[pa.Table] = None

    def add(self, inst: Instrument, ts: int, seq: int, book: BookArrays) -> None:
        """A valid row of a pair instrument."""
        if self.fed_to is not None and ts <= self.fed_to:
            self.late += 1
            return
        self._count += 1
        rows = self.held[inst]
        if rows and (ts, seq) < rows[-1][:2]:
            self._unsorted.add(inst)
        rows.append((ts, seq, self._count, book))

    def _make_arbs(self) -> list[ArbitrageRun]:
        # the runs widen their books to the deepest rows fed, as in the backtest
        return [ArbitrageRun(a, b, self.cfg, 1) for a, b in self.pairs]

    def commit(self, watermark: Optional[int]) -> int:
        """Feed every held row with ts_recv ≤ ``watermark`` (all with None); returns episodes closed."""
        taken: dict[Instrument, list[tuple[int, int, int, BookArrays]]] = {}
        for inst, rows in self.held.items():
            if not rows:
                continue
            if inst in self._unsorted:  # (ts_recv, seq) as the backtest reads them
                rows.sort(key=lambda r: (r[0], r[1], r[2]))
                self._unsorted.discard(inst)
            k = len(rows) if watermark is None else bisect.bisect_right(rows, watermark, key=lambda r: r[0])
            if k:
                taken[inst] = rows[:k]
                del rows[:k]
        if watermark is not None and (self.fed_to is None or watermark > self.fed_to):
            self.fed_to = watermark
        if not taken:
            return 0
        if self.arbs is None:
            self.arbs = self._make_arbs()
        new = 0
        first = min(rows[0][0] for rows in taken.values()) // NS_PER_DAY
        last = max(rows[-1][0] for rows in taken.values()) // NS_PER_DAY
        for day_index in range(first, last + 1):  # the backtest's day loop: episodes closed per UTC day
            lo, hi = day_index * NS_PER_DAY, (day_index + 1) * NS_PER_DAY
            books = {}
            for inst, rows in taken.items():
                a = bisect.bisect_left(rows, lo, key=lambda r: r[0])
                b = bisect.bisect_left(rows, hi, key=lambda r: r[0])
                if b > a:
                    books[inst] = _stack([r[3] for r in rows[a:b]])
            if not books:
                continue
            day = date_of(lo)
            for k, arb in enumerate(self.arbs):
                eps = arb.step(books.get(arb.a), books.get(arb.b))
                if eps.num_rows:
                    self.parts.append(((day, k, len(self.parts)), eps))
                    new += eps.num_rows
        if new:
            self._sorted = None
        return new

    def finish(self) -> int:
        """Feed everything held, then close the open episodes (the backtest's final step)."""
        new = self.commit(None)
        if self.arbs is None:
            self.arbs = self._make_arbs()
        for k, arb in enumerate(self.arbs or []):
            eps = arb.step(None, None, final=True)
            if eps.num_rows:
                self.parts.append(((_FINAL_DAY, k, len(self.parts)), eps))
                new += eps.num_rows
        if new:
            self._sorted = None
        return new

    def episodes(self) -> pa.Table:
        """Every closed episode in the backtest's order."""
        if self._sorted is None:
            self._sorted = sort_episodes([t for _, t in sorted(self.parts, key=lambda p: p[0])])
        return self._sorted

    @property
    def held_rows(self) -> int:
        return sum(len(r) for r in self.held.values())


# ----------------------------------------------------------------------------- engine


@dataclass
class Intervention:
    """A manual fill or a parameter change made during the session (a backtest cannot know of it)."""

    ts: int
    kind: str  # 'manual_fill' | 'set_params'
    detail: dict


class LiveEngine:
    """The backtest's engine runs fed one book row at a time; results are drained in batches.

    Not thread-safe: call it from one thread (the session's event loop).
    """

    def __init__(self, cfg: Config, strategy: Optional[Strategy] = None, reorder_ms: float = DEFAULT_REORDER_MS,
                 clock: Optional[Callable[[], int]] = None):
        self.cfg = cfg
        self.instruments = cfg.instrument_list
        self.pairs = cfg.pair_list
        self.strategy = strategy if strategy is not None else load_strategy(cfg.signal)
        self.runs = {inst: InstrumentRun(inst, cfg, self.strategy) for inst in self.instruments}
        self.index = {inst: k for k, inst in enumerate(self.instruments)}
        needed = list(self.instruments) + [i for p in self.pairs for i in p]
        self.needed = list(dict.fromkeys(needed))
        self.pair_features = {i: FeatureRun(cfg.features.levels) for i in self.needed if i not in self.runs}
        self.window = ArbitrageWindow(cfg, self.pairs)
        self.in_pairs = set(self.window.instruments)
        self.start, self.end = cfg.start_ns, cfg.end_ns
        self.reorder_ns = int(round(float(reorder_ms) * 1_000_000))
        self.clock = clock
        self._chunks: dict[Instrument, list[ChunkResult]] = {i: [] for i in self.instruments}
        self.last_book: dict[Instrument, BookArrays] = {}  # latest valid row: where a manual fill executes
        self._last_key: dict[Instrument, tuple[int, int]] = {}
        self.rows_seen: dict[Instrument, int] = {i: 0 for i in self.needed}
        self.out_of_order = 0
        self.skipped = 0  # rows outside [start, end) or of instruments not configured
        self.latency = np.zeros(LATENCY_WINDOW, np.int64)  # arrival (ts_recv) -> output, ns
        self.engine_ns = np.zeros(LATENCY_WINDOW, np.int64)  # on_book_row call -> output, ns
        self.measured = 0
        self.max_lag_ns = 0  # the most a row was late (emitted after its ts_recv), ns
        self.interventions: list[Intervention] = []

    # -- rows

    def on_book_row(self, inst: Instrument, row: BookRow) -> Optional[ChunkResult]:
        """Process one emitted book row now; returns the instrument's results for it (None if not run)."""
        t_call = time.time_ns() if self.clock is not None else 0
        ts = int(row.ts_recv)
        if (self.start is not None and ts < self.start) or (self.end is not None and ts >= self.end) or inst not in self.rows_seen:
            self.skipped += 1
            return None
        book = one_row(row)
        key = (ts, int(row.seq))
        last = self._last_key.get(inst)
        if last is not None and key < last:
            self.out_of_order += 1
        self._last_key[inst] = key
        self.rows_seen[inst] += 1
        run = self.runs.get(inst)
        chunk = None
        if run is not None:
            chunk = run.step(book)
            self._chunks[inst].append(chunk)
            valid = bool(chunk.valid[0])
        else:
            _, v = self.pair_features[inst].step(book)
            valid = bool(v[0])
        if valid:
            self.last_book[inst] = book
        if valid and inst in self.in_pairs:
            self.window.add(inst, ts, key[1], book)
        if self.clock is not None:
            done = time.time_ns()
            k = self.measured % LATENCY_WINDOW
            self.latency[k] = done - ts
            self.engine_ns[k] = done - t_call
            self.measured += 1
            if t_call - ts > self.max_lag_ns:
                self.max_lag_ns = t_call - ts
        return chunk

    def commit(self, now_ns: Optional[int] = None) -> int:
        """Feed arbitrage the rows the reorder window has released by ``now_ns``; returns new episodes."""
        now = now_ns if now_ns is not None else (self.clock() if self.clock is not None else None)
        if now is None:
            return 0
        return self.window.commit(now - self.reorder_ns)

    def take_chunks(self) -> list[tuple[int, list[ChunkResult]]]:
        """Hand over the per-row results produced since the last call (cheap: no copies).

        Turn them into tables with :func:`chunk_tables`, in any thread: they are never changed.
        """
        taken = []
        for inst, chunks in self._chunks.items():
            if chunks:
                self._chunks[inst] = []
                taken.append((self.index[inst], chunks))
        return taken

    def drain(self) -> list[tuple[str, str, int, pa.Table]]:
        """Result rows produced since the last drain: ``(table, UTC day, instrument index, rows)``."""
        return chunk_tables(self.take_chunks())

    def finish(self) -> dict:
        """No more rows: feed arbitrage everything held, close open episodes; returns the summary."""
        self.window.finish()
        return self.summary()

    # -- summary

    def summary(self) -> dict:
        """The SPEC 6 summary of everything so far (what a backtest over the same rows reports)."""
        firsts = [r.first_ts for r in self.runs.values() if r.first_ts is not None]
        lasts = [r.last_ts for r in self.runs.values() if r.last_ts is not None]
        return {
            "instruments": {str(i): r.summary() for i, r in self.runs.items()},
            "arbitrage": arbitrage_summary(self.window.episodes()),
            "config": self.cfg.to_dict(),
            "data": {"start": min(firsts) if firsts else 0, "end": max(lasts) if lasts else 0,
                     "rows": sum(r.rows for r in self.runs.values())},
        }

    def status(self) -> dict:
        """Counters and latency of the session so far (``live.json``)."""
        n = min(self.measured, LATENCY_WINDOW)
        lat = {}
        if n:
            for name, arr in (("arrival_to_output_ms", self.latency[:n]), ("engine_ms", self.engine_ns[:n])):
                p50, p99 = np.percentile(arr, [50, 99]) / 1e6
                lat[name] = {"p50": float(p50), "p99": float(p99), "max": float(arr.max() / 1e6), "rows": int(n)}
        return {
            "rows": {str(i): n for i, n in self.rows_seen.items()},
            "late_rows": int(self.window.late),
            "out_of_order_rows": int(self.out_of_order),
            "skipped_rows": int(self.skipped),
            "arbitrage_held_rows": int(self.window.held_rows),
            "reorder_ms": self.reorder_ns / 1e6,
            "max_row_lag_ms": self.max_lag_ns / 1e6,
            "latency": lat,
            "interventions": [{"ts": i.ts, "kind": i.kind, **i.detail} for i in self.interventions],
        }

    # -- interventions (the dashboard)

    def _instrument(self, instrument: str | Instrument) -> Instrument:
        inst = instrument if isinstance(instrument, Instrument) else Instrument.parse(instrument)
        if inst not in self.runs:
            raise ConfigError(f"instrument {inst} is not run by this session; instruments: {', '.join(map(str, self.runs))}")
        return inst

    def manual_fill(self, instrument: str | Instrument, qty: float, ts: Optional[int] = None) -> dict:
        """Execute ``qty`` (signed, base units) at ``instrument``'s latest valid book and record the fill."""
        inst = self._instrument(instrument)
        q = float(qty)
        if not math.isfinite(q) or q == 0.0:
            raise ConfigError(f"manual fill quantity must be a non-zero number (got {qty!r})")
        book = self.last_book.get(inst)
        if book is None:
            raise DataError(f"no valid book of {inst} yet: nothing to fill against")
        run = self.runs[inst]
        now = int(ts if ts is not None else (self.clock() if self.clock is not None else book.ts_recv[0]))
        now = max(now, int(book.ts_recv[0]))
        chunk = run.fill_now(now, q, book)
        self._chunks[inst].append(chunk)
        fill = chunk.fills_table().to_pylist()[0]
        self.interventions.append(Intervention(now, "manual_fill", {"instrument": str(inst), "qty": q, "price": fill["price"]}))
        return fill

    def set_params(self, **params: Any) -> dict:
        """Change signal / execution / features parameters from the next row on; returns what was applied.

        Keys are ``section.key`` or a bare key of ``signal``, ``execution`` or ``features``.
        """
        data = self.cfg.to_dict()
        sections = ("signal", "execution", "features")
        dotted = {}
        for key, value in params.items():
            if "." in key:
                section = key.split(".", 1)[0]
            else:
                section = next((s for s in sections if key in data[s]), None)
                key = f"{section}.{key}" if section else key
            if section not in sections or key in ("signal.strategy", "signal.params"):
                raise ConfigError(f"live parameter {key!r} cannot be changed; allowed: keys of {', '.join(sections)} "
                                  "(not signal.strategy / signal.params)")
            dotted[key] = value
        cfg = self.cfg.with_overrides(dotted)
        strategy = load_strategy(cfg.signal) if cfg.signal != self.cfg.signal else self.strategy
        xp, xi = execution_params(cfg)
        for run in self.runs.values():
            run.strategy = strategy
            run.xp, run.xi = xp, xi
            run.features.levels = cfg.features.levels
        for fr in self.pair_features.values():
            fr.levels = cfg.features.levels
        self.cfg, self.strategy = cfg, strategy
        now = self.clock() if self.clock is not None else 0
        self.interventions.append(Intervention(int(now), "set_params", {"params": dotted}))
        return dotted

    # -- warm-up

    def warm_up(self, levels: int) -> None:
        """Compile (or load from cache) every kernel on throwaway state, so the first live row is fast.

        The rows lean to the bid, so that the built-in rule signals and trades and the hit-rate tail
        is carried (its kernel then sees concatenated arrays, as in a session).
        """
        n = 4
        mid = 100.0 + np.arange(n) * 0.01
        steps = np.arange(levels) * 0.01
        bp = np.ascontiguousarray(mid[:, None] - 0.005 - steps)
        ap = np.ascontiguousarray(mid[:, None] + 0.005 + steps)
        bs = np.full((n, levels), 3.0)
        as_ = np.full((n, levels), 1.0)
        ts = 1_000_000_000 + np.arange(n, dtype=np.int64) * 1_000_000
        book = BookArrays(ts, ts, np.arange(n, dtype=np.int64), np.zeros(n, np.uint8), bp, bs, ap, as_)
        inst = self.instruments[0] if self.instruments else Instrument("binance", "BTC-USDT")
        run = InstrumentRun(inst, self.cfg, self.strategy)
        rows = [one_row(BookRow(*(int(a[i]) for a in book[:4]), *(a[i] for a in book[4:]))) for i in range(n)]
        for row in rows:
            run.step(row)
        run.fill_now(int(ts[-1]), 0.01, rows[-1])
        run.summary()
        if self.pairs:
            a, b = self.pairs[0]
            arb = ArbitrageRun(a, b, self.cfg, levels)
            arb.step(_stack(rows[:2]), _stack(rows[2:]))
            arb.step(None, None, final=True)


# ----------------------------------------------------------------------------- sources


RowCallback = Callable[[Instrument, BookRow], None]
EventCallback = Callable[[Instrument, int, str, str], None]


class Source(Protocol):
    """Where a live session's book rows come from."""

    data_dir: Path
    levels: int
    wall_clock: bool  # rows' ts_recv come from this machine's clock now (latency is measured)

    def now(self) -> int:
        """The clock rows' ts_recv come from (drives the arbitrage reorder window)."""

    async def run(self, on_book_row: RowCallback, on_event: EventCallback, stop: asyncio.Event) -> None:
        """Deliver rows until ``stop`` is set (or the source ends); flush everything before returning."""


class ReplaySource:
    """Book rows of a recorded dataset, delivered in ts_recv order as a live session would get them.

    ``speed`` 0 delivers as fast as the engine takes them; 1 in real time, 10 ten times faster.
    The clock is the replayed time. Useful for paper-trading a recording with the dashboard and for
    checking the live path against ``backtest`` on the same rows.
    """

    def __init__(self, root: str | Path, instruments: Iterable[Instrument], start: Optional[int] = None,
                 end: Optional[int] = None, speed: float = 0.0, batch: int = 256):
        self.data_dir = Path(root)
        self.instruments = list(instruments)
        self.start, self.end = start, end
        self.speed = float(speed)
        self.batch = batch
        self.levels = 20
        self.wall_clock = False
        self._now = 0
        for inst in self.instruments:
            for _, book in iter_book_days(self.data_dir, inst, start, end):
                self.levels = book.levels
                break

    def now(self) -> int:
        return self._now

    def rows(self) -> Iterable[tuple[Instrument, BookRow]]:
        """Every row of every instrument, merged in (ts_recv, instrument order, seq) order, one UTC day in memory."""
        dates = sorted({d for i in self.instruments
                        for d in partition_dates(self.data_dir, "book", i.venue, i.symbol, self.start, self.end)})
        for day in dates:
            parts = []
            for inst in self.instruments:
                t = read_partition(self.data_dir, "book", inst.venue, inst.symbol, day, self.start, self.end)
                if t.num_rows:
                    parts.append((inst, book_arrays(t)))
            if not parts:
                continue
            ts = np.concatenate([b.ts_recv for _, b in parts])
            who = np.concatenate([np.full(len(b), k) for k, (_, b) in enumerate(parts)])
            pos = np.concatenate([np.arange(len(b)) for _, b in parts])
            for k in np.lexsort((pos, who, ts)):
                inst, b = parts[who[k]]
                i = pos[k]
                yield inst, BookRow(int(b.ts_recv[i]), int(b.ts_event[i]), int(b.seq[i]), int(b.flags[i]),
                                    b.bid_px[i], b.bid_sz[i], b.ask_px[i], b.ask_sz[i])

    async def run(self, on_book_row: RowCallback, on_event: EventCallback, stop: asyncio.Event) -> None:
        t0_wall, t0_data = time.monotonic(), None
        for n, (inst, row) in enumerate(self.rows()):
            if stop.is_set():
                return
            if self.speed > 0:
                if t0_data is None:
                    t0_data = row.ts_recv
                wait = (row.ts_recv - t0_data) / 1e9 / self.speed - (time.monotonic() - t0_wall)
                if wait > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        return
                    except asyncio.TimeoutError:
                        pass
            elif n % self.batch == 0:
                await asyncio.sleep(0)
            self._now = row.ts_recv
            on_book_row(inst, row)


class RecorderSource:
    """The recorder (:class:`qfreplay.capture.recorder.Recorder`): connects to the venues, keeps the
    books, journals every frame and writes the dataset; every row it writes comes here too."""

    def __init__(self, cfg: Config, data_dir: str | Path, instruments: Iterable[Instrument], **recorder_options: Any):
        self.cfg = cfg
        self.data_dir = Path(data_dir)
        self.instruments = list(instruments)
        self.levels = cfg.record.levels
        self.wall_clock = True
        self.options = recorder_options
        self.recorder = None
        self.clock: Callable[[], int] = recorder_options.get("clock", time.time_ns)

    def now(self) -> int:
        return self.clock()

    def status(self) -> list:
        return self.recorder.status() if self.recorder is not None else []

    def unpublished(self, table: str, inst: Instrument) -> Optional[pa.Table]:
        """Rows of ``table`` the recorder holds for ``inst`` but has not written yet (it publishes hourly)."""
        writer = self.recorder.writer if self.recorder is not None else None
        if writer is None:
            return None
        buffered = getattr(writer, "buffered", None)
        if buffered is not None:
            return buffered(table, inst)
        if table == "book":
            buf = writer.books.get(inst)
            return buf.table() if buf is not None and len(buf) else None
        rows = writer.rows.get(table, {}).get(inst)
        if not rows:
            return None
        schema = table_schema(table)
        return pa.Table.from_arrays([pa.array(list(col), type=f.type) for col, f in zip(zip(*rows), schema)], schema=schema)

    async def run(self, on_book_row: RowCallback, on_event: EventCallback, stop: asyncio.Event) -> None:
        from ..capture.recorder import Recorder

        self.recorder = recorder = Recorder(self.cfg, self.instruments, self.data_dir, on_book_row=on_book_row,
                                            on_event=on_event, **self.options)

        async def stop_when_asked() -> None:
            await stop.wait()
            recorder.stop()

        watcher = asyncio.create_task(stop_when_asked())
        try:
            await recorder.run()  # on stop it emits the pending rows and publishes the dataset files
        finally:
            watcher.cancel()


# ----------------------------------------------------------------------------- session


@dataclass
class LiveResult:
    """What a finished session wrote."""

    results_dir: Path
    data_dir: Path
    summary: dict
    status: dict = field(default_factory=dict)


class LiveSession:
    """A running ``qfreplay live``: source → :class:`LiveEngine` → results folder.

    It is also the ``live`` object the dashboard drives (:mod:`qfreplay.app.live`: ``results_dir``,
    ``data_dir``, ``manual_fill``, ``set_params``, ``unpublished``, ``now_ns``, plus ``status``);
    those calls are safe from any thread (they run on the session's event loop).
    """

    def __init__(self, cfg: Config, data_dir: Optional[str | Path] = None, out_dir: Optional[str | Path] = None,
                 source: Optional[Source] = None, reorder_ms: float = DEFAULT_REORDER_MS,
                 refresh_s: float = DEFAULT_REFRESH_S, strategy: Optional[Strategy] = None):
        data = str(data_dir) if data_dir is not None else cfg.data
        out = str(out_dir) if out_dir is not None else cfg.out
        self.cfg = cfg.replace(data=data, out=out)
        self.data_dir, self.results_dir = Path(data), Path(out)
        if self.results_dir.resolve() == self.data_dir.resolve() or self.results_dir.resolve() in self.data_dir.resolve().parents:
            raise ConfigError(f"the dataset folder {data!r} must not lie inside the results folder {out!r} (which is replaced at the end)")
        needed = list(dict.fromkeys(self.cfg.instrument_list + [i for p in self.cfg.pair_list for i in p]))
        self.source = source if source is not None else RecorderSource(self.cfg, self.data_dir, needed)
        # a recorded row is emitted up to one cadence interval after its ts_recv: hold rows that much longer
        held_ms = float(reorder_ms) + (self.cfg.record.interval_ms if self.source.wall_clock else 0)
        self.engine = LiveEngine(self.cfg, strategy, held_ms, clock=self.source.now if self.source.wall_clock else None)
        self._clock = self.source.now
        self.refresh_s = float(refresh_s)
        self.results = None
        self.state = "new"
        self.started_ns: Optional[int] = None
        self.finished_summary: Optional[dict] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._stop: Optional[asyncio.Event] = None
        self._stop_requested = False
        self._prev_now: Optional[int] = None
        self._writing: Optional[asyncio.Task] = None
        self._write_error: Optional[BaseException] = None
        self.events: list[tuple[str, int, str, str]] = []
        self.on_flush: Optional[Callable[[dict], None]] = None  # tests and the CLI: after every refresh

    # -- the dashboard's Protocol

    def manual_fill(self, instrument: str, qty: float) -> dict:
        """A simulated execution of ``qty`` at ``instrument``'s current book, recorded as a fill."""
        return self._call(self.engine.manual_fill, instrument, qty)

    def set_params(self, **params: Any) -> dict:
        """Change signal / execution parameters from the next row on (see :meth:`LiveEngine.set_params`)."""
        return self._call(lambda: self.engine.set_params(**params))

    def now_ns(self) -> int:
        """The session's market clock: the wall clock when recording, the replayed time with a replay."""
        return int(self.source.now())

    def unpublished(self, table: str, instrument: str) -> Optional[pa.Table]:
        """Rows the recorder holds for ``instrument`` but has not written to ``data_dir`` yet (SPEC 2 schema)."""
        fetch = getattr(self.source, "unpublished", None)
        if fetch is None:
            return None
        if table not in TABLES:
            raise DataError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        inst = Instrument.parse(instrument)
        return self._call(fetch, table, inst)

    def status(self) -> dict:
        return {"state": self.state, "started": self.started_ns, "data_dir": str(self.data_dir),
                "results_dir": str(self.results_dir), **self.engine.status()}

    def _call(self, fn: Callable, *args: Any) -> Any:
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return fn(*args)

        async def call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)

    # -- running

    def stop(self) -> None:
        """Ask the session to finish (safe from any thread and from signal handlers)."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    def _on_event(self, inst: Instrument, ts: int, kind: str, detail: str) -> None:
        self.events.append((str(inst), ts, kind, detail))
        del self.events[:-1000]

    async def run(self, duration: Optional[float] = None) -> LiveResult:
        """Run until ``duration`` seconds pass, :meth:`stop` is called or the source ends; write the results."""
        from ..live_results import LiveResults

        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        self.engine.warm_up(self.source.levels)
        self.results = results = LiveResults(self.results_dir, self.engine.summary(), self.refresh_s)
        self.started_ns = time.time_ns()
        self.state = "running"
        source_task = asyncio.create_task(self.source.run(self.engine.on_book_row, self._on_event, self._stop))
        deadline = None if duration is None else time.monotonic() + float(duration)
        error: Optional[BaseException] = None
        last_refresh = time.monotonic()
        try:
            while not source_task.done() and not self._stop.is_set():
                wait = COMMIT_S if deadline is None else min(COMMIT_S, deadline - time.monotonic())
                if wait <= 0:
                    break
                stop_wait = asyncio.create_task(self._stop.wait())
                await asyncio.wait({source_task, stop_wait}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                stop_wait.cancel()
                if source_task.done() or self._stop.is_set():
                    break
                self._commit()
                idle = self._writing is None or self._writing.done()
                if idle and time.monotonic() - last_refresh >= self.refresh_s:
                    last_refresh = time.monotonic()
                    self._writing = asyncio.create_task(self._refresh(results))
        finally:
            self._stop.set()
            self.state = "stopping"
            try:
                await source_task  # the source flushes its last rows (and the recorder its dataset files)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - finish the results, then report
                error = exc
            if self._writing is not None:
                await asyncio.gather(self._writing, return_exceptions=True)
            error = error or self._write_error
            summary = self.engine.finish()
            self.state = "failed" if error is not None else "finished"
            taken, episodes, status = self.engine.take_chunks(), self.engine.window.episodes(), self.status()
            await asyncio.to_thread(lambda: results.write(chunk_tables(taken), episodes, summary, status, False))
            path = await asyncio.to_thread(results.finish, summary, status)
            self.finished_summary = summary
        if error is not None:
            raise error
        return LiveResult(path, self.data_dir, summary, self.status())

    def _commit(self) -> None:
        # Arbitrage is fed up to the clock of the *previous* commit minus the reorder window: if the
        # loop stalled, the recorder's timer emits the rows held up by the stall before that.
        now = self._clock()
        if self._prev_now is not None:
            self.engine.commit(self._prev_now)
        self._prev_now = now

    async def _refresh(self, results) -> None:
        """Write what is new (tables built off the event loop); a failure stops the session."""
        taken, episodes = self.engine.take_chunks(), self.engine.window.episodes()
        summary, status = self.engine.summary(), self.status()
        try:
            await asyncio.to_thread(lambda: results.write(chunk_tables(taken), episodes, summary, status, True))
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: end the session, keep what was written
            self._write_error = exc
            self._stop.set()
            return
        if self.on_flush is not None:
            self.on_flush(summary)


def run_live(cfg: Config, data_dir: Optional[str | Path] = None, out_dir: Optional[str | Path] = None,
             duration: Optional[float] = None, source: Optional[Source] = None, reorder_ms: float = DEFAULT_REORDER_MS,
             refresh_s: float = DEFAULT_REFRESH_S, on_session: Optional[Callable[[LiveSession], Any]] = None,
             handle_signals: bool = False) -> LiveResult:
    """Run a live session to its end in a new event loop (the library form of ``qfreplay live``).

    ``on_session`` gets the session before it starts (to serve the dashboard on it). With
    ``handle_signals`` SIGINT and SIGTERM stop the session cleanly: the results are written.
    """
    session = LiveSession(cfg, data_dir, out_dir, source, reorder_ms, refresh_s)
    if on_session is not None:
        on_session(session)

    async def main() -> LiveResult:
        if handle_signals:
            import signal

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, session.stop)
        return await session.run(duration)

    return asyncio.run(main())


__all__ = [
    "ArbitrageWindow", "LiveEngine", "LiveSession", "LiveResult", "RecorderSource", "ReplaySource",
    "Source", "run_live", "one_row",
]
