"""What the app reads: a results folder (SPEC 6) and the dataset its config points to (SPEC 2).

:class:`ResultsSource` loads lazily and caches. Dataset files are cached one file at a time
(files are immutable once visible under their final name), so a live session that keeps adding
files costs only the new ones on each refresh. :meth:`ResultsSource.run` returns one instrument's
results for a parameter set: straight from the results folder when the parameters are the
run's own, otherwise by re-running the engine on that instrument alone (``run_backtest`` with
``write=False, collect=True``); recent re-runs are memoized.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import Config, load_config_dict
from ..errors import DataError
from ..instruments import Instrument
from ..results import SUMMARY_FILE, load_summary, read_result
from ..schema import RESULT_TABLES, table_schema
from ..store import BookArrays, partition_dir
from . import prep

RERUN_CACHE = 8


@dataclass(frozen=True)
class Params:
    """The sidebar's engine parameters for one instrument (None bounds: the run's own range)."""

    instrument: Instrument
    start: Optional[int] = None
    end: Optional[int] = None
    min_confidence: float = 0.6
    position_size: float = 0.01


class Run:
    """One instrument's results for one :class:`Params`: the summary at once, the tables on first use.

    Tables from the results folder are read only when a tab needs them, so the first tab of a
    day-long report does not wait for signals it does not draw.
    """

    def __init__(self, params: Params, summary: dict, origin: str, seconds: float,
                 table: Callable[[str], pa.Table]):
        self.params = params
        self.summary = summary
        self.origin = origin  # "results folder" or "re-run"
        self.seconds = seconds
        self._table = table

    @cached_property
    def signals(self) -> dict[str, np.ndarray]:
        return _columns(self._table("signals"), SIGNAL_COLUMNS)

    @cached_property
    def equity(self) -> dict[str, np.ndarray]:
        return _columns(self._table("equity"), EQUITY_COLUMNS)

    @cached_property
    def fills(self) -> pa.Table:
        return self._table("fills")

    @cached_property
    def round_trips(self) -> pa.Table:
        return self._table("round_trips")


def _columns(table: pa.Table, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {n: table.column(n).to_numpy(zero_copy_only=False) for n in names}


SIGNAL_COLUMNS = ("ts_recv", "mid", "spread_bps", "bid_vol", "ask_vol", "imbalance", "micro_price", "ofi",
                  "signal", "confidence", "valid")
EQUITY_COLUMNS = ("ts_recv", "position", "cash", "equity")
BOOK_COLUMNS = ("ts_recv", "ts_event", "seq", "flags", "bid_px", "bid_sz", "ask_px", "ask_sz")


def _read_book_file(path: Path) -> BookArrays:
    """One book file as :class:`BookArrays`. Polars decodes the fixed-size level lists several times faster
    than pyarrow (a day of 20-level rows: ~2 s instead of ~7 s) and hands them over as 2-D arrays."""
    try:
        df = pl.read_parquet(path, columns=list(BOOK_COLUMNS))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"cannot read Parquet file {str(path)!r}: {str(exc).splitlines()[0]}") from None
    dtypes = (np.int64, np.int64, np.int64, np.uint8, np.float64, np.float64, np.float64, np.float64)
    cols = []
    for name, dtype in zip(BOOK_COLUMNS, dtypes):
        a = df[name].to_numpy()
        if a.ndim != (2 if name.endswith(("_px", "_sz")) else 1):
            raise DataError(f"book file {str(path)!r}: {name} is not a fixed-size list of levels")
        cols.append(np.ascontiguousarray(a, dtype=dtype))
    return BookArrays(*cols)


class _FileCache:
    """Dataset rows of one (table, instrument), read file by file and concatenated in time order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # one reader at a time: a page waits for a preload instead of reading again
        self.parts: dict[Path, object] = {}
        self.key: tuple = ()
        self.value = None


class ResultsSource:
    """A results folder plus its dataset, for the report and the live dashboard."""

    def __init__(self, results_dir: str | Path, data_dir: str | Path | None = None, wait: bool = False):
        """``wait``: a live session's folder may not hold a summary.json yet; start empty until it does."""
        self.results_dir = Path(results_dir)
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._wait = wait
        self._stamp: Optional[tuple] = None
        self._runs: OrderedDict[Params, Run] = OrderedDict()
        self._files: dict[tuple[str, Instrument], _FileCache] = {}
        self.summary: dict = {"instruments": {}}
        self.config: Config = load_config_dict({})
        self.instruments: list[Instrument] = []
        self.data_root = self._resolve_data()
        self.reload()

    # ------------------------------------------------------------------ the results folder

    def _summary_stamp(self) -> Optional[tuple]:
        try:
            st = (self.results_dir / SUMMARY_FILE).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> bool:
        """Re-read summary.json if it changed (a live session rewrote the folder); True if it did."""
        stamp = self._summary_stamp()
        if stamp is not None and stamp == self._stamp:
            return False
        if stamp is None and self._wait:
            return False
        summary = load_summary(self.results_dir)  # raises DataError naming the folder
        self.summary = summary
        self.config: Config = load_config_dict(summary.get("config") or {}, source=str(self.results_dir / SUMMARY_FILE))
        self.instruments = [Instrument.parse(k) for k in summary.get("instruments", {})]
        self.data_root = self._resolve_data()
        self._stamp = stamp
        self._runs.clear()
        return True

    def _resolve_data(self) -> Optional[Path]:
        if self._data_dir is not None:
            return self._data_dir if self._data_dir.is_dir() else None
        data = Path(self.config.data)
        if data.is_absolute():
            candidates = [data]
        else:  # relative to where the backtest ran: usually the repository root above results/<name>
            here = self.results_dir.resolve()
            candidates = [Path.cwd() / data, here / data, here.parent / data, here.parent.parent / data]
        for c in candidates:
            if (c / "book").is_dir():
                return c
        return None

    @property
    def stamp(self) -> Optional[tuple]:
        """Identity of the summary.json last read (changes when a live session rewrites the folder)."""
        return self._stamp

    @property
    def span(self) -> tuple[int, int]:
        """[first, last] ts_recv of the book rows the run processed."""
        d = self.summary.get("data") or {}
        return int(d.get("start") or 0), int(d.get("end") or 0)

    def defaults(self, instrument: Instrument) -> Params:
        """The run's own parameters for ``instrument``."""
        ex = self.config.execution
        return Params(instrument, None, None, float(ex.min_confidence), float(ex.position_size))

    def _read_instrument(self, name: str, inst: Instrument) -> pa.Table:
        """One instrument's rows of a result table (polars: pushes the filter into the scan, ~10× pyarrow)."""
        path = self.results_dir / f"{name}.parquet"
        if not path.is_file():
            return read_result(self.results_dir, name)  # raises the one-line DataError
        try:
            df = pl.scan_parquet(path).filter((pl.col("venue") == inst.venue) & (pl.col("symbol") == inst.symbol)).collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(f"cannot read {str(path)!r}: {str(exc).splitlines()[0]}") from None
        return df.to_arrow().cast(RESULT_TABLES[name])

    def arbitrage(self) -> pa.Table:
        """Every arbitrage episode of the run."""
        try:
            return read_result(self.results_dir, "arbitrage")
        except DataError:
            return RESULT_TABLES["arbitrage"].empty_table()

    def run(self, params: Params) -> Run:
        """One instrument's results for ``params`` (from the folder, a cached re-run, or a new re-run)."""
        if params in self._runs:
            self._runs.move_to_end(params)
            return self._runs[params]
        t = time.perf_counter()
        if params == self.defaults(params.instrument):
            inst = params.instrument
            result = Run(params, self.summary["instruments"][str(inst)], "results folder", 0.0,
                         lambda name: self._read_instrument(name, inst))
        else:
            summary, tables = self._rerun(params)
            result = Run(params, summary, "re-run", time.perf_counter() - t, tables.__getitem__)
        self._runs[params] = result
        while len(self._runs) > RERUN_CACHE:
            self._runs.popitem(last=False)
        return result

    def _rerun(self, params: Params) -> tuple[dict, dict[str, pa.Table]]:
        from ..engine.backtest import run_backtest

        if self.data_root is None:
            raise DataError(f"cannot re-run: the dataset {self.config.data!r} of {str(self.results_dir)!r} was not found")
        cfg = self.config.with_overrides({
            "execution.min_confidence": float(params.min_confidence),
            "execution.position_size": float(params.position_size),
            "arbitrage.pairs": [],
        })
        cfg = cfg.replace(data=str(self.data_root), instruments=[str(params.instrument)],
                          start=params.start if params.start is not None else self.config.start_ns,
                          end=params.end if params.end is not None else self.config.end_ns)
        result = run_backtest(cfg, write=False, collect=True)
        return result.summary["instruments"][str(params.instrument)], result.tables

    # ------------------------------------------------------------------ the dataset

    def _dataset_files(self, table: str, inst: Instrument) -> list[Path]:
        if self.data_root is None:
            return []
        base = partition_dir(self.data_root, table, inst.venue, inst.symbol, "x").parent
        return sorted(f for f in base.glob("date=*/*.parquet") if not f.name.startswith((".", "_")))

    def _cached(self, table: str, inst: Instrument, read, combine):
        files = self._dataset_files(table, inst)
        cache = self._files.setdefault((table, inst), _FileCache())
        key = tuple(files)
        with cache.lock:
            if key == cache.key and cache.value is not None:
                return cache.value
            parts = {f: cache.parts[f] if f in cache.parts else read(f) for f in files}
            cache.parts, cache.key = parts, key
            cache.value = combine([parts[f] for f in files]) if files else None
            return cache.value

    def preload_book(self, inst: Instrument) -> threading.Thread:
        """Start reading ``inst``'s book rows in the background (Polars decodes outside the GIL), so a
        server can import Panel meanwhile; a failed read is left for the page to hit and report."""
        def read() -> None:
            try:
                self.book(inst)
            except DataError:
                pass

        thread = threading.Thread(target=read, name=f"qfreplay-preload-{inst}", daemon=True)
        thread.start()
        return thread

    def book(self, inst: Instrument) -> Optional[BookArrays]:
        """Every book row of ``inst`` in the dataset, in (ts_recv, seq) order; None without data."""
        def combine(parts: list[BookArrays]) -> BookArrays:
            widths = {p.levels for p in parts}
            if len(widths) > 1:  # mixed level counts: pad to the widest with missing levels
                w = max(widths)
                parts = [pad_levels(p, w) for p in parts]
            b = parts[0] if len(parts) == 1 else BookArrays(*(np.concatenate(c) for c in zip(*parts)))
            if len(b) > 1 and np.any(np.diff(b.ts_recv) < 0):
                order = np.lexsort((b.seq, b.ts_recv))
                b = BookArrays(*(a[order] for a in b))
            return b

        return self._cached("book", inst, _read_book_file, combine)

    def table(self, name: str, inst: Instrument) -> Optional[pa.Table]:
        """Every row of a dataset table (trades, ticker, events) of ``inst`` sorted by ts_recv; None without data."""
        schema = table_schema(name)

        def read(f: Path) -> pa.Table:
            try:
                return pq.read_table(f, columns=list(schema.names)).cast(schema)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise DataError(f"cannot read Parquet file {str(f)!r}: {str(exc).splitlines()[0]}") from None

        def combine(parts: list[pa.Table]) -> pa.Table:
            t = pa.concat_tables(parts)
            ts = t.column("ts_recv").to_numpy()
            if len(ts) > 1 and np.any(np.diff(ts) < 0):
                t = t.sort_by("ts_recv")
            return t

        return self._cached(name, inst, read, combine)

    def pair_of(self, inst: Instrument) -> Optional[tuple[Instrument, Instrument]]:
        """The first configured arbitrage pair that holds ``inst``, else the first pair."""
        pairs = self.config.pair_list
        for a, b in pairs:
            if inst in (a, b):
                return a, b
        return pairs[0] if pairs else None

    def net_spread(self, a: Instrument, b: Instrument) -> Optional[prep.NetSpread]:
        """SPEC 5 net spread of both directions of a pair from the two books (None without both books)."""
        ba, bb = self.book(a), self.book(b)
        if ba is None or bb is None or not len(ba) or not len(bb):
            return None
        arb = self.config.arbitrage
        fa = (arb.fee_of(a.venue) + arb.slippage_bps) / 1e4
        fb = (arb.fee_of(b.venue) + arb.slippage_bps) / 1e4
        va = prep.valid_rows_mask(ba.bid_px, ba.bid_sz, ba.ask_px, ba.ask_sz)
        vb = prep.valid_rows_mask(bb.bid_px, bb.bid_sz, bb.ask_px, bb.ask_sz)
        stale = -1 if arb.max_staleness_ms is None else int(round(arb.max_staleness_ms * 1e6))
        return prep.net_spread(ba.ts_recv[va], ba.bid_px[va, 0], ba.ask_px[va, 0],
                               bb.ts_recv[vb], bb.bid_px[vb, 0], bb.ask_px[vb, 0], fa, fb,
                               stale if stale >= 0 else np.iinfo(np.int64).max)


def pad_levels(b: BookArrays, width: int) -> BookArrays:
    """``b`` widened to ``width`` levels a side with missing levels (NaN price, size 0)."""
    if b.levels == width:
        return b
    n, w = len(b), b.levels

    def pad(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((n, width), fill)
        out[:, :w] = a
        return out

    return b._replace(bid_px=pad(b.bid_px, math.nan), bid_sz=pad(b.bid_sz, 0.0),
                      ask_px=pad(b.ask_px, math.nan), ask_sz=pad(b.ask_sz, 0.0))
