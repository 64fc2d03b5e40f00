"""The dashboard's logic without a browser: what each tab shows, re-runs on sidebar changes, live mode."""

from __future__ import annotations

import re
import shutil

import numpy as np
import param
import pyarrow.compute as pc

from qfreplay.app import prep
from qfreplay.app.blocks import utc
from qfreplay.app.dashboard import Dashboard
from qfreplay.app.live import LiveSession
from qfreplay.app.source import ResultsSource
from qfreplay.errors import QfreplayError
from qfreplay.instruments import Instrument
from qfreplay.store import read_table, write_partitioned

BTC = Instrument("binance", "BTC-USDT")


def kpi(html_text: str, key: str) -> str:
    """The value text of the stat card ``data-kpi=key`` in an HTML block."""
    m = re.search(rf'data-kpi="{key}".*?qf-kpi-value[^>]*>(.*?)</div>', html_text, re.S)
    assert m, f"no card {key}"
    return m.group(1)


def tab(dash: Dashboard, title: str):
    t = next(t for t in dash.tabs_list if t.title == title)
    dash.tabs.active = dash.tabs_list.index(t)  # renders it
    return t


def release(widget, value) -> None:
    """What the browser does when a slider is released."""
    with param.edit_constant(widget):
        widget.value = value
        widget.value_throttled = value


def test_every_tab_renders_the_runs_numbers(market):
    dash = Dashboard(ResultsSource(market["results"]))
    s = market["summary"]["instruments"]["binance:BTC-USDT"]

    perf = tab(dash, "Performance")
    arb = tab(dash, "Arbitrage")
    quality = tab(dash, "Data Quality")
    book = tab(dash, "Order Book")

    assert kpi(perf.kpis.object, "fills") == f"{s['fills']:,}"
    assert kpi(perf.kpis.object, "total_pnl") == f"{s['total_pnl']:+,.2f}"
    assert len(perf.fills.value) == s["fills"] and len(perf.trips.value) == s["round_trips"]
    assert kpi(arb.kpis.object, "episodes") == str(market["summary"]["arbitrage"]["episodes"])
    assert len(arb.top.value) == min(5, market["summary"]["arbitrage"]["episodes"])
    assert kpi(quality.kpis.object, "gaps") == "1" and kpi(quality.kpis.object, "disconnects") == "1"
    assert list(quality.latency.value["table"]) == ["book", "trades"]
    assert "data-ladder" in book.ladder.object


def test_min_confidence_re_runs_the_instrument(market):
    dash = Dashboard(ResultsSource(market["results"]))
    perf = tab(dash, "Performance")
    before = kpi(perf.kpis.object, "fills")

    release(dash.min_conf, 1.0)

    assert dash.run.origin == "re-run"
    assert kpi(perf.kpis.object, "fills") == "0" != before
    assert "re-run in" in dash.status.object


def test_venue_switch_shows_the_other_instrument(market):
    dash = Dashboard(ResultsSource(market["results"]))
    perf = tab(dash, "Performance")

    dash.venue.value = "coinbase"

    s = market["summary"]["instruments"]["coinbase:BTC-USD"]
    assert str(dash.instrument) == "coinbase:BTC-USD"
    assert kpi(perf.kpis.object, "fills") == f"{s['fills']:,}"


def test_snapshot_time_moves_the_book(market):
    dash = Dashboard(ResultsSource(market["results"]))
    book = tab(dash, "Order Book")
    late = kpi(book.head.object, "book_time")

    release(dash.at, dash.at.start + 60_000)  # one minute into the data

    early = kpi(book.head.object, "book_time")
    assert early < late and early.startswith("00:01:00")


class FakeLive:
    """A live session as the dashboard sees it."""

    def __init__(self, results_dir, data_dir):
        self.results_dir, self.data_dir = results_dir, data_dir
        self.params: list[dict] = []
        self.fills: list[tuple] = []

    def set_params(self, **kw):
        self.params.append(kw)

    def manual_fill(self, instrument, qty):
        if qty > 1:
            raise QfreplayError("qty too large for the fake")
        self.fills.append((instrument, qty))
        return {"ts_fill": 1_723_075_260_000_000_000, "qty": qty, "price": 60_000.5, "fee": 0.06, "position": qty}


def test_fake_live_session_satisfies_the_protocol(market):
    assert isinstance(FakeLive(market["results"], market["data"]), LiveSession)


def test_live_mode_sends_parameters_and_manual_fills_to_the_session(market, tmp_path):
    folder = tmp_path / "live"
    shutil.copytree(market["results"], folder)
    live = FakeLive(folder, market["data"])
    dash = Dashboard(ResultsSource(folder, market["data"]), live=live, refresh_s=1)
    signals = tab(dash, "Signals")

    release(dash.min_conf, 0.8)
    dash.size.value = 0.02
    signals.qty.value = 0.5
    signals.buy.clicks += 1
    signals.sell.clicks += 1
    signals.qty.value = 3.0
    signals.buy.clicks += 1

    assert live.params[0] == {"min_confidence": 0.8, "position_size": 0.01}
    assert live.params[-1] == {"min_confidence": 0.8, "position_size": 0.02}
    assert live.fills == [("binance:BTC-USDT", 0.5), ("binance:BTC-USDT", -0.5)]
    assert "qty too large" in signals.exec_result.object
    assert dash.run.origin == "results folder"  # live shows the session's results, never re-runs


def test_live_refresh_picks_up_a_rewritten_results_folder(market, tmp_path):
    folder = tmp_path / "live"
    shutil.copytree(market["results"], folder)
    dash = Dashboard(ResultsSource(folder, market["data"]), live=FakeLive(folder, market["data"]), refresh_s=1)
    perf = tab(dash, "Performance")
    fills = kpi(perf.kpis.object, "fills")

    text = (folder / "summary.json").read_text()
    n = market["summary"]["instruments"]["binance:BTC-USDT"]["fills"]
    (folder / "summary.json").write_text(text.replace(f'"fills": {n},', f'"fills": {n + 7},', 1))
    dash.refresh()

    assert kpi(perf.kpis.object, "fills") == f"{n + 7:,}" != fills


def test_live_dashboard_waits_for_the_sessions_first_results(market, tmp_path):
    # Arrange: the session has not written its results folder yet
    folder = tmp_path / "live"
    live = FakeLive(folder, market["data"])
    dash = Dashboard(ResultsSource(folder, market["data"], wait=True), live=live, refresh_s=1)
    assert dash.instrument is None and "waiting" in dash.status.object

    # Act: the first results land, then the dashboard refreshes
    shutil.copytree(market["results"], folder)
    dash.refresh()

    # Assert: it shows the session's instruments and numbers, and asked the session nothing
    perf = tab(dash, "Performance")
    assert str(dash.instrument) == "binance:BTC-USDT"
    assert kpi(perf.kpis.object, "fills") == f"{market['summary']['instruments']['binance:BTC-USDT']['fills']:,}"
    assert live.params == []


class RecordingLive(FakeLive):
    """A session whose newest rows are still in memory, on a clock of its own."""

    def __init__(self, results_dir, data_dir, pending, now):
        super().__init__(results_dir, data_dir)
        self.pending, self.now = pending, now

    def unpublished(self, table, instrument):
        return self.pending.get((table, instrument))

    def now_ns(self):
        return self.now


def test_live_book_adds_the_sessions_unpublished_rows_up_to_its_clock(market, tmp_path):
    # Arrange: the dataset holds the first 5 minutes of binance; the session holds the rest in memory
    data = tmp_path / "data"
    split = market["t0"] + 5 * 60 * 10**9
    for table in ("book", "trades", "ticker", "events"):
        for inst in (BTC, Instrument("coinbase", "BTC-USD")):
            rows = read_table(market["data"], table, inst)
            ts = rows.column("ts_recv")
            keep = rows if inst.venue == "coinbase" else rows.filter(pc.less(ts, split))
            write_partitioned(data, table, inst.venue, inst.symbol, keep)
    full = read_table(market["data"], "book", BTC)
    pending = {("book", "binance:BTC-USDT"): full.filter(pc.greater_equal(full.column("ts_recv"), split - 10**9))}
    ts_all = full.column("ts_recv").to_numpy()
    live = RecordingLive(market["results"], data, pending, now=int(ts_all[-1]) + 1)
    dash = Dashboard(ResultsSource(market["results"], data, wait=True), live=live, refresh_s=1)
    book_tab = tab(dash, "Order Book")

    # Assert: the newest row shown is the session's newest, and the window is gap-free across the seam
    assert kpi(book_tab.head.object, "book_time") == utc(int(ts_all[-1]), with_date=False)
    shown = dash.book_in_range().ts_recv
    assert np.all(np.diff(shown) >= 0) and shown[-1] == ts_all[-1]
    assert np.array_equal(shown, ts_all[prep.window(ts_all, int(shown[0]), None)])

    # Act: the clock is earlier than the newest rows (a replay): nothing later is shown
    live.now = split + 30 * 10**9
    dash.refresh(force=True)

    assert dash.book_in_range().ts_recv[-1] <= live.now
    assert kpi(book_tab.head.object, "book_time") == utc(int(ts_all[ts_all <= live.now][-1]), with_date=False)
