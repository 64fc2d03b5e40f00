"""``qfreplay backtest``: load a dataset one UTC day at a time, run the kernels, write the results.

Memory is bounded by one day of the configured instruments; all kernel state (OFI, strategy,
position, pending order, drawdown, Sharpe minutes, hit-rate tail, arbitrage episodes) carries
from day to day, so the result equals one pass over the whole range.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pyarrow as pa

from ..config import Config
from ..errors import DataError
from ..instruments import Instrument
from ..results import ResultsWriter
from ..schema import ARBITRAGE_SCHEMA, RESULT_TABLES
from ..store import BookArrays, book_arrays, check_dataset, partition_dates, read_partition
from .run import ArbitrageRun, FeatureRun, InstrumentRun, valid_rows
from .strategy import Strategy, load_strategy

TOP_EPISODES = 5


@dataclass
class BacktestResult:
    """Where the results went and the summary that was written."""

    out: Optional[Path]
    summary: dict
    arbitrage: pa.Table
    tables: Optional[dict[str, pa.Table]] = None


def _range_text(cfg: Config) -> str:
    s, e = cfg.to_dict()["start"], cfg.to_dict()["end"]
    if s is None and e is None:
        return ""
    return f" in [{s or '-inf'}, {e or '+inf'})"


def arbitrage_summary(episodes: pa.Table) -> dict:
    """Episode count, total duration and the top 5 by max_net_bps (ties: earlier ts_start)."""
    rows = episodes.to_pylist()
    top = sorted(rows, key=lambda r: (-r["max_net_bps"], r["ts_start"]))[:TOP_EPISODES]
    return {
        "episodes": len(rows),
        "total_duration_ms": float(sum(r["duration_ms"] for r in rows)),
        "top": top,
    }


def sort_episodes(parts: list[pa.Table]) -> pa.Table:
    """All episodes in ts_start order (stable: pair order, then direction)."""
    if not parts:
        return ARBITRAGE_SCHEMA.empty_table()
    t = pa.concat_tables(parts)
    return t.sort_by([("ts_start", "ascending")]) if t.num_rows > 1 else t


class Backtest:
    """One backtest over a dataset: instrument runs, arbitrage runs, and the day loop that feeds them."""

    def __init__(self, cfg: Config, strategy: Optional[Strategy] = None):
        self.cfg = cfg
        self.root = check_dataset(cfg.data)
        self.instruments = cfg.instrument_list
        self.pairs = cfg.pair_list
        self.strategy = strategy if strategy is not None else load_strategy(cfg.signal)
        start, end = cfg.start_ns, cfg.end_ns
        needed = list(self.instruments)
        for a, b in self.pairs:
            needed += [i for i in (a, b) if i not in needed]
        self.dates: dict[Instrument, list[str]] = {}
        for inst in needed:
            dates = partition_dates(self.root, "book", inst.venue, inst.symbol, start, end)
            if not dates:
                raise DataError(f"instrument {inst} has no book rows in {str(self.root)!r}{_range_text(cfg)}")
            self.dates[inst] = dates
        self.all_dates = sorted({d for ds in self.dates.values() for d in ds})
        self.runs = {inst: InstrumentRun(inst, cfg, self.strategy) for inst in self.instruments}
        self.pair_features = {i: FeatureRun(cfg.features.levels) for i in needed if i not in self.runs}
        self.arbs: list[ArbitrageRun] = []
        self.levels: dict[Instrument, int] = {}

    def _load(self, inst: Instrument, date: str) -> Optional[BookArrays]:
        if date not in self.dates[inst]:
            return None
        t = read_partition(self.root, "book", inst.venue, inst.symbol, date, self.cfg.start_ns, self.cfg.end_ns)
        return book_arrays(t) if t.num_rows else None

    def run(self, on_chunk: Callable[[Instrument, dict[str, pa.Table]], None], on_progress: Callable[[], None] = lambda: None) -> dict:
        """Process every day; ``on_chunk`` receives each instrument's result tables. Returns the summary."""
        episodes: list[pa.Table] = []
        data_start, data_end, data_rows = None, None, 0
        for date in self.all_dates:
            valid_books: dict[Instrument, BookArrays] = {}
            for inst in self.dates:
                book = self._load(inst, date)
                if book is None:
                    continue
                self.levels.setdefault(inst, book.levels)
                if inst in self.runs:
                    chunk = self.runs[inst].step(book)
                    on_chunk(inst, chunk.tables())
                    valid = chunk.valid
                    data_rows += len(book)
                    first, last = int(book.ts_recv[0]), int(book.ts_recv[-1])
                    data_start = first if data_start is None else min(data_start, first)
                    data_end = last if data_end is None else max(data_end, last)
                else:
                    _, valid = self.pair_features[inst].step(book)
                valid_books[inst] = valid_rows(book, valid)
            if not self.arbs and self.pairs:
                self.arbs = [ArbitrageRun(a, b, self.cfg, max(self.levels.get(a, 1), self.levels.get(b, 1)))
                             for a, b in self.pairs]
            for arb in self.arbs:
                episodes.append(arb.step(valid_books.get(arb.a), valid_books.get(arb.b)))
            on_progress()
        for arb in self.arbs:
            episodes.append(arb.step(None, None, final=True))
        for inst, run in self.runs.items():
            if run.rows == 0:
                raise DataError(f"instrument {inst} has no book rows in {str(self.root)!r}{_range_text(self.cfg)}")
        self.episodes = sort_episodes(episodes)
        return {
            "instruments": {str(i): r.summary() for i, r in self.runs.items()},
            "arbitrage": arbitrage_summary(self.episodes),
            "config": self.cfg.to_dict(),
            "data": {"start": data_start or 0, "end": data_end or 0, "rows": data_rows},
        }


def run_backtest(cfg: Config, out: Optional[str | Path] = None, progress: bool = False,
                 strategy: Optional[Strategy] = None, write: bool = True, collect: bool = False) -> BacktestResult:
    """Run a backtest; write the results folder atomically unless ``write`` is False.

    With ``collect`` the result tables are also returned in memory (``BacktestResult.tables``),
    which is what the report app uses to re-run one instrument interactively.
    """
    bt = Backtest(cfg, strategy)
    writer = ResultsWriter(out if out is not None else cfg.out) if write else None
    parts: dict[str, list[pa.Table]] = {}

    def on_chunk(inst: Instrument, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            if writer:
                writer.append(name, table)
            if collect:
                parts.setdefault(name, []).append(table)
    try:
        bar = _progress(progress)
        with bar as p:
            task = p.add_task("backtest", total=len(bt.all_dates)) if p else None
            summary = bt.run(on_chunk, (lambda: p.advance(task)) if p else (lambda: None))
        path = None
        if writer:
            writer.append("arbitrage", bt.episodes)
            path = writer.commit(summary)
    except BaseException:
        if writer:
            writer.abort()
        raise
    tables = None
    if collect:
        tables = {name: pa.concat_tables(parts[name]) if parts.get(name) else RESULT_TABLES[name].empty_table()
                  for name in ("signals", "fills", "equity", "round_trips")}
        tables["arbitrage"] = bt.episodes
    return BacktestResult(path, summary, bt.episodes, tables)


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
                    TimeElapsedColumn(), transient=True)
