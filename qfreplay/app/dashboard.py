"""The Panel app: one code base for the report over a results folder and the live dashboard.

``Dashboard`` owns the sidebar and the tabs. A sidebar change computes one :class:`~.source.Run`
(results from the folder, or a re-run of the engine on that instrument) and redraws the visible
tab; the other tabs redraw when they are opened. In live mode a periodic callback re-reads the
results folder and the dataset, and sidebar parameters go to the live session.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import panel as pn
import pyarrow as pa
from bokeh.models import CustomJSTickFormatter

from ..errors import QfreplayError
from ..instruments import Instrument
from ..store import BookArrays, book_arrays
from . import blocks as B
from . import prep
from .live import LiveSession
from .panes import TEMPLATE_CSS, html
from .source import Params, ResultsSource, Run, pad_levels
from .tabs import AnalyticsTab, ArbitrageTab, OrderBookTab, PerformanceTab, QualityTab, SignalsTab, Tab

UTC_MS_JS = "return new Date(tick).toISOString().substring(11, 23)"
LIVE_WINDOWS = {"last 5 min": 300, "last 15 min": 900, "last hour": 3600, "everything": 0}


def _naive_utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).replace(tzinfo=None)


def _ns(value: dt.datetime) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return int(round(value.timestamp() * 1000)) * 1_000_000


def _slice_book(book: BookArrays, start: Optional[int], end: Optional[int]) -> BookArrays:
    sl = prep.window(book.ts_recv, start, end)
    return book if (sl.start == 0 and sl.stop == len(book)) else book.slice(sl.start, sl.stop)


def _slice_cols(cols: dict[str, np.ndarray], start: Optional[int], end: Optional[int], key: str = "ts_recv") -> dict[str, np.ndarray]:
    sl = prep.window(cols[key], start, end)
    return cols if (sl.start == 0 and sl.stop == len(cols[key])) else {k: v[sl] for k, v in cols.items()}


def _table_in(table, start: Optional[int], end: Optional[int], key: str):
    if table is None or table.num_rows == 0 or (start is None and end is None):
        return table
    ts = table.column(key).to_numpy()
    sl = prep.window(ts, start, end)
    return table.slice(sl.start, sl.stop - sl.start)


class Dashboard:
    """Sidebar, tabs and the update logic of one browser session."""

    TABS = (OrderBookTab, SignalsTab, PerformanceTab, ArbitrageTab, AnalyticsTab, QualityTab)

    def __init__(self, source: ResultsSource, live: Optional[LiveSession] = None, refresh_s: Optional[float] = None,
                 on_load: Optional[Callable[[], None]] = None):
        self.source = source
        self.live = live
        self._cache: dict[tuple, Any] = {}
        self.run: Optional[Run] = None
        self.error = ""
        self._syncing = False  # True while the app itself sets sidebar values
        self._pending: dict[str, Any] = {}  # live: rows the session recorded but has not published yet
        self._now: Optional[int] = None  # live: the session's market clock
        insts = source.instruments
        first = insts[0] if insts else None
        venues = list(dict.fromkeys(i.venue for i in insts))
        self.venue = pn.widgets.Select(label="Venue", options=venues, value=first.venue if first else None, sizing_mode="stretch_width")
        self.symbol = pn.widgets.Select(label="Symbol", options=self._symbols(self.venue.value), sizing_mode="stretch_width",
                                        value=first.symbol if first else None)
        ex = source.config.execution
        self.min_conf = pn.widgets.FloatSlider(label="Min confidence", start=0.0, end=1.0, step=0.01, value=float(ex.min_confidence),
                                               sizing_mode="stretch_width")
        self.size = pn.widgets.FloatInput(label="Position size (base units)", value=float(ex.position_size), start=0.0,
                                          step=0.001, sizing_mode="stretch_width")
        self.status = html()
        t0, t1 = source.span
        if t1 <= t0:
            t1 = t0 + 1_000_000_000
        d0, d1 = _naive_utc(t0 - t0 % 1_000_000_000), _naive_utc(t1 - t1 % 1_000_000_000 + 1_000_000_000)
        controls: list = [self.venue, self.symbol]
        if live is None:
            self.range = pn.widgets.DatetimeRangeSlider(label="Time range (UTC)", start=d0, end=d1, value=(d0, d1), step=1000,
                                                        sizing_mode="stretch_width", format="%H:%M:%S")
            # an IntSlider over epoch ms: Panel's DatetimeSlider sends end = start to the browser (Panel 1.9)
            ms0, ms1 = t0 // 1_000_000, -(-t1 // 1_000_000)
            self.at = pn.widgets.IntSlider(label="Book snapshot at (UTC)", start=ms0, end=ms1, value=ms1, step=100,
                                           format=CustomJSTickFormatter(code=UTC_MS_JS), sizing_mode="stretch_width")
            self.range.param.watch(self._on_range, "value_throttled")
            self.at.param.watch(self._on_snapshot, "value_throttled")
            controls += [self.range, self.at]
        else:
            self.window = pn.widgets.Select(label="Show", options=LIVE_WINDOWS, value=900, sizing_mode="stretch_width")
            self.interval = pn.widgets.IntSlider(label="Refresh every (s)", start=1, end=10, step=1,
                                                 value=int(min(10, max(1, round(refresh_s or 2)))), sizing_mode="stretch_width")
            self.refresh_button = pn.widgets.Button(label="Refresh now", color="primary", sizing_mode="stretch_width")
            self.pause = pn.widgets.Toggle(label="Pause", color="warning", sizing_mode="stretch_width")
            self.window.param.watch(lambda _: self.update(), "value")
            self.interval.param.watch(self._on_interval, "value")
            self.refresh_button.on_click(lambda _: self.refresh(force=True))
            self.pause.param.watch(lambda _: self._show_status(), "value")
            controls += [self.window]
        controls += [pn.layout.Divider(), self.min_conf, self.size]
        if live is not None:
            controls += [pn.layout.Divider(), self.interval, pn.Row(self.refresh_button, self.pause, sizing_mode="stretch_width")]
        controls += [pn.layout.Divider(), self.status]
        self.sidebar = controls
        self.tabs_list: list[Tab] = [cls(self) for cls in self.TABS]
        self.tabs = pn.Tabs(*[(t.title, t.panel) for t in self.tabs_list], sizing_mode="stretch_width", margin=(0, 4))
        self.tabs.param.watch(lambda _: self._render_active(), "active")
        self.venue.param.watch(self._on_venue, "value")
        self.symbol.param.watch(lambda _: self._on_instrument(), "value")
        self.min_conf.param.watch(self._on_params, "value_throttled")
        self.size.param.watch(self._on_params, "value")
        self._callback = None
        self._on_load = on_load
        self._data_key: tuple = ()
        self.updated_at = time.time()
        self._on_instrument()

    # ------------------------------------------------------------------ layout

    def template(self) -> pn.template.BootstrapTemplate:
        """The page: header, sidebar, tabs (dark, every asset served locally)."""
        mode = "live" if self.live is not None else "report"
        name = Path(self.source.results_dir).name or str(self.source.results_dir)
        tpl = pn.template.BootstrapTemplate(
            title=f"qfreplay · {mode} · {name}", theme="dark", sidebar_width=285, header_background=B.BACKGROUND,
            header_color=B.TEXT, raw_css=[TEMPLATE_CSS], favicon=None)
        tpl.sidebar.extend(self.sidebar)
        tpl.main.append(self.tabs)
        if self.live is not None:
            pn.state.onload(self._start_refresh)
        if self._on_load is not None:
            pn.state.onload(self._on_load)
        return tpl

    # ------------------------------------------------------------------ state

    def _symbols(self, venue: Optional[str]) -> list[str]:
        return [i.symbol for i in self.source.instruments if i.venue == venue]

    @property
    def instrument(self) -> Optional[Instrument]:
        if self.venue.value is None or self.symbol.value is None:
            return None
        return Instrument(self.venue.value, self.symbol.value)

    def bounds(self) -> tuple[Optional[int], Optional[int]]:
        """The selected [start, end) in ns; None where the range is the run's own (report) or open (live)."""
        t0, t1 = self.source.span
        if self.live is not None:
            last = self._live_last()
            if last is None:
                return None, None
            w = int(self.window.value or 0)
            return (last - w * 1_000_000_000 if w else None), last + 1
        lo, hi = (_ns(v) for v in self.range.value)
        start = None if lo <= t0 else lo
        end = None if hi > t1 else hi
        return start, end

    def params(self) -> Params:
        """The engine parameters the sidebar selects (live: the session's own results)."""
        inst = self.instrument
        if self.live is not None:
            return self.source.defaults(inst)
        start, end = self.bounds()
        return Params(inst, start, end, round(float(self.min_conf.value), 4), float(self.size.value))

    def snapshot_ts(self) -> int:
        """The moment the snapshot views show: the slider's (report) or the latest book row (live)."""
        if self.live is not None:
            last = self._live_last()
            return last if last is not None else self.source.span[1]
        book = self.book_in_range()
        last = int(book.ts_recv[-1]) if book is not None and len(book) else self.source.span[1]
        return min(int(self.at.value) * 1_000_000, last)

    def _live_last(self) -> Optional[int]:
        """Time of the newest book row the live session has, not past its clock (a replay's files run ahead)."""
        inst = self.instrument
        if inst is None:
            return None
        newest = []
        for book in (self.source.book(inst), self._pending.get("book")):
            if book is None or not len(book):
                continue
            i = len(book) - 1 if self._now is None else prep.last_at_or_before(book.ts_recv, self._now)
            if i >= 0:
                newest.append(int(book.ts_recv[i]))
        return max(newest) if newest else None

    # ------------------------------------------------------------------ data in the selected range

    def _memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        key = key + (self._data_key,)
        if key not in self._cache:
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = make()
        return self._cache[key]

    def book_window(self, start: Optional[int], end: Optional[int]) -> Optional[BookArrays]:
        """Book rows of the instrument in [start, end): the dataset's, plus (live) the session's unpublished ones."""
        inst = self.instrument
        if inst is None:
            return None

        def make():
            files = self.source.book(inst)
            parts = [] if files is None else [_slice_book(files, start, end)]
            pending = self._pending.get("book")
            if pending is not None and len(pending):
                after = pending if files is None or not len(files) else _slice_book(pending, int(files.ts_recv[-1]) + 1, None)
                parts.append(_slice_book(after, start, end))
            parts = [p for p in parts if len(p)]
            if not parts:
                return None if files is None else _slice_book(files, start, end)
            if len(parts) == 1:
                return parts[0]
            width = max(p.levels for p in parts)
            return BookArrays(*(np.concatenate(c) for c in zip(*(pad_levels(p, width) for p in parts))))
        return self._memo(("book", inst, start, end), make)

    def book_in_range(self) -> Optional[BookArrays]:
        return self.book_window(*self.bounds())

    def dataset(self, name: str) -> Optional[pa.Table]:
        """Every row of a dataset table (trades, ticker, events) of the instrument, plus (live) unpublished ones."""
        inst = self.instrument
        if inst is None:
            return None

        def make():
            files = self.source.table(name, inst)
            pending = self._pending.get(name)
            if pending is None or not pending.num_rows:
                return files
            if files is None or not files.num_rows:
                return pending
            last = int(files.column("ts_recv")[-1].as_py())
            return pa.concat_tables([files, _table_in(pending, last + 1, None, "ts_recv")])
        return self._memo(("table", name, inst), make)

    def dataset_in_range(self, name: str) -> Optional[pa.Table]:
        start, end = self.bounds()
        return _table_in(self.dataset(name), start, end, "ts_recv")

    def table_in_range(self, table, key: str):
        """Rows of a result table whose ``key`` time is in the selected range (a re-run is already inside it)."""
        return _table_in(table, *self.bounds(), key)

    def signals(self) -> dict[str, np.ndarray]:
        return _slice_cols(self.run.signals, *self.bounds())

    def equity(self) -> dict[str, np.ndarray]:
        return _slice_cols(self.run.equity, *self.bounds())

    def net_spread(self, pair: tuple[Instrument, Instrument]) -> Optional[prep.NetSpread]:
        start, end = self.bounds()

        def make():
            ns = self.source.net_spread(*pair)
            if ns is None:
                return None
            sl = prep.window(ns.ts, start, end)
            return prep.NetSpread(ns.ts[sl], ns.buy_a_sell_b[sl], ns.buy_b_sell_a[sl])
        return self._memo(("net", pair, start, end), make)

    def change_24h(self, t: int) -> float:
        ticker = self.dataset("ticker")
        if ticker is not None and ticker.num_rows:
            ts = ticker.column("ts_recv").to_numpy()
            i = prep.last_at_or_before(ts, t)
            if i >= 0:
                return float(ticker.column("change_pct")[i].as_py() if ticker.column("change_pct")[i].is_valid else math.nan)
        book = self.book_window(t - 86_400 * prep.NS_PER_S - 60 * prep.NS_PER_S, t + 1)
        if book is None or not len(book):
            return math.nan
        mid = np.where(prep.valid_rows_mask(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz),
                       (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2, np.nan)
        return prep.change_24h(book.ts_recv, mid, t)

    def stats_24h(self, t: int) -> dict:
        """24 h statistics at ``t``: the venue's ticker when recorded, else computed from book and trades."""
        ticker = self.dataset("ticker")
        if ticker is not None and ticker.num_rows:
            i = prep.last_at_or_before(ticker.column("ts_recv").to_numpy(), t)
            if i >= 0:
                row = {k: ticker.column(k)[i].as_py() for k in ("ts_recv", "last", "high", "low", "volume", "quote_volume", "change_pct")}
                row = {k: (math.nan if v is None else v) for k, v in row.items()}
                return {**row, "ts": row["ts_recv"], "source": "venue 24 h ticker"}
        out = {"ts": None, "last": math.nan, "high": math.nan, "low": math.nan, "volume": math.nan,
               "quote_volume": math.nan, "change_pct": math.nan, "source": "computed from the recorded book and trades"}
        b = self.book_window(t - 86_400 * prep.NS_PER_S, t + 1)
        if b is None or not len(b):
            return out
        valid = prep.valid_rows_mask(b.bid_px, b.bid_sz, b.ask_px, b.ask_sz)
        if not valid.any():
            return out
        mid = (b.bid_px[valid, 0] + b.ask_px[valid, 0]) / 2
        out.update(ts=int(b.ts_recv[valid][-1]), last=float(mid[-1]), high=float(mid.max()), low=float(mid.min()),
                   change_pct=self.change_24h(t))
        trades = self.dataset("trades")
        if trades is not None and trades.num_rows:
            tw = _table_in(trades, t - 86_400 * prep.NS_PER_S, t + 1, "ts_recv")
            px, sz = tw.column("price").to_numpy(), tw.column("size").to_numpy()
            out.update(volume=float(sz.sum()), quote_volume=float((px * sz).sum()))
            if len(px):
                out["last"] = float(px[-1])
        return out

    def dataset_message(self) -> str:
        if self.source.data_root is None:
            return f"dataset {self.source.config.data!r} not found: book, heatmap, ticker and events need it"
        return "no rows for this instrument in the selected range"

    # ------------------------------------------------------------------ updates

    def update(self) -> None:
        """Recompute the run for the sidebar's selection and redraw the visible tab."""
        if self.instrument is None:
            self.error = ("waiting for the session's first results" if self.live is not None
                          else "no instruments in this results folder")
            self._show_status()
            return
        try:
            self.run = self.source.run(self.params())
            self.error = ""
        except QfreplayError as exc:
            self.error = str(exc)
            if self.run is None:
                raise
        for t in self.tabs_list:
            t.stale = True
        self._render_active()
        self._show_status()

    def _render_active(self) -> None:
        tab = self.tabs_list[self.tabs.active]
        if tab.stale and self.run is not None:
            tab.show()
            tab.stale = False

    def _on_venue(self, event) -> None:
        symbols = self._symbols(event.new)
        keep = self.symbol.value in symbols
        self.symbol.options = symbols  # Panel moves the value to the first option when it is not one
        if keep or not symbols:
            self._on_instrument()
        elif self.symbol.value != symbols[0]:
            self.symbol.value = symbols[0]  # the symbol watcher updates

    def _on_instrument(self) -> None:
        self._fetch_live()
        self.update()

    def _on_range(self, event) -> None:
        lo, hi = (_ns(v) // 1_000_000 for v in event.new)
        self.at.param.update(start=lo, end=hi, value=min(max(self.at.value, lo), hi))
        self.update()

    def _on_snapshot(self, _event) -> None:
        active = self.tabs_list[self.tabs.active]
        for t in self.tabs_list:
            if t is not active:
                t.stale = True
        if active.stale:
            self._render_active()
        else:
            active.render_snapshot()

    def _on_params(self, _event) -> None:
        if self._syncing:
            return
        if self.live is not None:
            set_params = getattr(self.live, "set_params", None)
            if callable(set_params):
                try:
                    set_params(min_confidence=float(self.min_conf.value), position_size=float(self.size.value))
                    self.error = ""
                except QfreplayError as exc:
                    self.error = str(exc)
            self._show_status()
            return
        self.update()

    # ------------------------------------------------------------------ live

    def _start_refresh(self) -> None:
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self._tick, period=int(self.interval.value * 1000))

    def _on_interval(self, event) -> None:
        if self._callback is not None:
            self._callback.period = int(event.new * 1000)
        self._show_status()

    def _tick(self) -> None:
        if not self.pause.value:
            self.refresh()

    def refresh(self, force: bool = False) -> None:
        """Re-read the results folder and the dataset; redraw when anything changed (or when forced)."""
        try:
            changed = self.source.reload()
        except QfreplayError as exc:  # e.g. the folder is being swapped: keep showing the last view
            self.error = str(exc)
            self._show_status()
            return
        inst = self.instrument
        if inst is None and self.source.instruments:  # the session's first results: its instruments and parameters
            ex = self.source.config.execution
            self._syncing = True
            try:
                self.min_conf.value, self.size.value = float(ex.min_confidence), float(ex.position_size)
            finally:
                self._syncing = False
            first = self.source.instruments[0]
            self.venue.options = list(dict.fromkeys(i.venue for i in self.source.instruments))
            self.venue.value = first.venue  # the venue watcher picks the symbol and updates
            return
        self._fetch_live()
        book = self.source.book(inst) if inst else None
        pending = self._pending.get("book")
        key = (self.source.stamp, len(book) if book is not None else 0, len(pending) if pending is not None else 0, self._now)
        if changed or force or key != self._data_key:
            self._data_key = key
            self._cache.clear()
            self.updated_at = time.time()
            self.update()

    def _fetch_live(self) -> None:
        """The session's clock and its rows not yet published to the dataset (optional Protocol methods)."""
        live, inst = self.live, self.instrument
        self._pending = {}
        self._now = None
        if live is None or inst is None:
            return
        now_ns = getattr(live, "now_ns", None)
        unpublished = getattr(live, "unpublished", None)
        try:
            self._now = int(now_ns()) if callable(now_ns) else None
            if callable(unpublished):
                for name in ("book", "trades", "ticker", "events"):
                    table = unpublished(name, str(inst))
                    if table is not None and table.num_rows:
                        self._pending[name] = book_arrays(table) if name == "book" else table
        except QfreplayError as exc:
            self.error = str(exc)

    # ------------------------------------------------------------------ status

    def _show_status(self) -> None:
        run = self.run
        lines = []
        if run is not None:
            origin = run.origin if run.origin != "re-run" else f"re-run in {run.seconds:.2f} s"
            lines.append(f"<b>{run.params.instrument}</b> · {origin}")
            s = run.summary
            lines.append(f"{B.fmt(s.get('rows'))} rows · {B.fmt(s.get('fills'))} fills")
        t0, t1 = self.source.span
        if t1:
            lines.append(f"data {B.utc(t0, ms=False)} → {B.utc(t1, with_date=False, ms=False)} UTC")
        if self.live is not None:
            paused = bool(self.pause.value)
            dot = f'<span class="qf-live{" paused" if paused else ""}"></span>'
            state = "paused" if paused else f"live · every {self.interval.value} s"
            lines.append(f"{dot}<b>{state}</b> · updated {dt.datetime.fromtimestamp(self.updated_at, dt.timezone.utc):%H:%M:%S} UTC")
        if self.error:
            lines.append(f'<span class="qf-neg" data-error="1">{B.fmt(self.error)}</span>')
        self.status.object = f'<div class="qf-status" data-status="1">{"<br>".join(lines)}</div>'


# ============================================================================= entry points

def build_app(results_dir: str | Path | ResultsSource, *, live: Optional[LiveSession] = None,
              refresh_s: Optional[float] = None, on_load: Optional[Callable[[], None]] = None) -> pn.template.BaseTemplate:
    """The report (``live=None``) or the live dashboard as a servable Panel template.

    Args:
        results_dir: a results folder (SPEC 6), or a :class:`ResultsSource` shared between sessions.
        live: a :class:`~qfreplay.app.live.LiveSession`; turns on auto-refresh, pause and manual fills.
        refresh_s: live refresh interval in seconds (1–10, default 2).
    """
    pn.extension("tabulator", notifications=False)
    if isinstance(results_dir, ResultsSource):
        source = results_dir
    elif live is None:
        source = ResultsSource(results_dir)
    else:  # the session may not have written its first results yet
        source = ResultsSource(getattr(live, "results_dir", results_dir), getattr(live, "data_dir", None), wait=True)
    return Dashboard(source, live=live, refresh_s=refresh_s, on_load=on_load).template()


_warm = threading.Lock()
_warmed = False


def warm_up_engine() -> None:
    """Compile the engine's kernels once, on a two-row dataset read back from disk like a real one (so
    the same array types, read-only included, are specialized): the first re-run then feels instant."""
    global _warmed
    with _warm:
        if _warmed:
            return
        _warmed = True
    import tempfile

    from ..config import load_config_dict
    from ..engine.backtest import run_backtest
    from ..schema import book_schema
    from ..store import write_partitioned

    def level(*values: float) -> pa.FixedSizeListArray:
        return pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float64()), 1)

    ts = pa.array([1, 2], pa.int64())
    book = pa.Table.from_arrays([ts, ts, ts, level(100.0, 101.0), level(1.0, 1.0), level(100.5, 101.5), level(1.0, 1.0),
                                 pa.array([1, 0], pa.uint8())], schema=book_schema(1))
    with tempfile.TemporaryDirectory(prefix="qfreplay-warm-") as tmp:
        write_partitioned(tmp, "book", "binance", "BTC-USDT", book)
        cfg = load_config_dict({"data": tmp, "instruments": ["binance:BTC-USDT"], "arbitrage": {"pairs": []}})
        run_backtest(cfg, write=False, collect=True)
