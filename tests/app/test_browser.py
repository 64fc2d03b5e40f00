"""The report and the live dashboard in a real headless Chromium (Playwright), served on a free port.

Every tab must draw its plots (Bokeh figures with their canvases) and show the run's numbers, the console must stay
free of errors, nothing may be fetched from outside the server (the machine is offline), and the
sidebar must drive the engine. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from qfreplay.app.server import serve_app
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from qfreplay.instruments import Instrument
from qfreplay.store import load_book, read_table, write_partitioned
from tests.app.market import free_port, market_config, write_market

pytestmark = pytest.mark.browser

TABS = ("Order Book", "Signals", "Performance", "Arbitrage", "Analytics", "Data Quality")
FIGURES = {"Order Book": 2, "Signals": 5, "Performance": 3, "Arbitrage": 2, "Analytics": 2, "Data Quality": 2}
BTC = Instrument("binance", "BTC-USDT")


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the element may be re-rendering
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Page:
    """A browser page on the app that records console errors and requests leaving the server."""

    def __init__(self, browser, url: str):
        self.url = url
        self.page = browser.new_page(viewport={"width": 1500, "height": 950})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)
        self.page.goto(url)

    def _request(self, request) -> None:
        if not request.url.startswith((self.url, "data:", "blob:")):
            self.external.append(request.url)

    def open_tab(self, name: str) -> None:
        self.page.locator(".bk-tab", has_text=name).first.click()

    def figures(self) -> int:
        """Bokeh figures on screen that have drawn (hold a canvas)."""
        return self.page.locator(".bk-Figure").filter(visible=True, has=self.page.locator("canvas")).count()

    def kpi(self, key: str) -> str:
        return self.page.locator(f'[data-kpi="{key}"] .qf-kpi-value').filter(visible=True).first.inner_text()

    def wait_kpi(self, key: str, expected: str, timeout: float = 20.0) -> None:
        wait_for(lambda: self.kpi(key) == expected, timeout, f"{key} == {expected!r} (shows {self._safe_kpi(key)!r})")

    def _safe_kpi(self, key: str) -> str:
        try:
            return self.kpi(key)
        except Exception:  # noqa: BLE001
            return "?"

    def wait_plots(self, tab: str) -> int:
        """Wait until every figure of ``tab`` is drawn; returns how many there are."""
        return wait_for(lambda: self.figures() >= FIGURES[tab] and self.figures(), 30, f"{tab} plots")

    def slider_to_end(self, title: str) -> None:
        handle = self.page.locator(".bk-input-group", has_text=title).locator(".noUi-handle").first
        handle.focus()
        handle.press("End")

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)


def test_report_shows_every_tab_and_reruns_on_sidebar_changes(market, browser, artifacts):
    # Arrange: the report server on the market's results, what the tabs should say
    s = market["summary"]["instruments"]["binance:BTC-USDT"]
    book = load_book(market["data"], BTC)
    ticker = read_table(market["data"], "ticker", BTC)
    port = free_port()
    server = serve_app(market["results"], port=port, threaded=True)
    try:
        page = Page(browser, f"http://127.0.0.1:{port}/")

        # Act + Assert: every tab draws its plots and the numbers of the run
        for tab in TABS:
            page.open_tab(tab)
            assert page.wait_plots(tab) == FIGURES[tab]
            if tab == "Order Book":
                page.wait_kpi("best_bid", f"{book.bid_px[-1, 0]:,.2f}")
                assert page.kpi("best_ask") == f"{book.ask_px[-1, 0]:,.2f}"
                assert page.page.locator("[data-ladder]").count() == 1
            elif tab == "Signals":
                assert page.page.locator("[data-signal]").first.get_attribute("data-signal") in ("BUY", "SELL", "FLAT")
            elif tab == "Performance":
                page.wait_kpi("fills", f"{s['fills']:,}")
                assert page.kpi("total_pnl") == f"{s['total_pnl']:+,.2f}"
                assert page.kpi("win_rate") == f"{s['win_rate'] * 100:,.1f}%"
            elif tab == "Arbitrage":
                page.wait_kpi("episodes", str(market["summary"]["arbitrage"]["episodes"]))
            elif tab == "Analytics":
                page.wait_kpi("last", f"{ticker.column('last')[-1].as_py():,.2f}")
                position = float(page.page.locator("[data-gauge]").first.get_attribute("data-gauge"))
                assert 0.0 <= position <= 1.0
            elif tab == "Data Quality":
                page.wait_kpi("gaps", "1")
                assert page.kpi("disconnects") == "1"
            page.shot(artifacts / f"report-{tab.lower().replace(' ', '-')}.png")

        # Act: raise the minimum confidence to 1.0 (above the 0.95 cap: nothing trades)
        page.open_tab("Performance")
        page.slider_to_end("Min confidence")

        # Assert: the instrument was re-run and the numbers changed
        page.wait_kpi("fills", "0")
        assert page.kpi("total_pnl") == "+0.00"
        wait_for(lambda: "re-run in" in page.page.locator("[data-status]").first.inner_text(), 10, "re-run status")
        page.shot(artifacts / "report-performance-min-confidence-1.png")

        # Act: the other venue
        page.page.locator("select").first.select_option("coinbase")
        wait_for(lambda: "coinbase:BTC-USD" in page.page.locator("[data-status]").first.inner_text(), 20, "coinbase")
        page.wait_kpi("fills", "0")  # still min confidence 1.0, now on coinbase

        assert page.errors == []
        assert page.external == []
    finally:
        server.stop()


class FakeLive:
    """A live session for the dashboard: a results folder and dataset that tests grow, and the two calls."""

    def __init__(self, results_dir: Path, data_dir: Path):
        self.results_dir, self.data_dir = results_dir, data_dir
        self.params: list[dict] = []
        self.fills: list[tuple[str, float]] = []

    def set_params(self, **kw) -> None:
        self.params.append(kw)

    def manual_fill(self, instrument: str, qty: float) -> dict:
        self.fills.append((instrument, qty))
        return {"ts_fill": 1_723_075_400_000_000_000, "qty": qty, "price": 60_000.5, "fee": 0.06, "position": qty}


class GrowingSession:
    """Book rows arrive in chunks; after each the results folder is rewritten, like ``qfreplay live`` does."""

    def __init__(self, root: Path):
        staging = root / "staging"
        write_market(staging, minutes=5, seed=3, levels=10)
        self.data, self.out = root / "live-data", root / "live-results"
        for table in ("trades", "ticker", "events"):
            shutil.copytree(staging / table, self.data / table)
        self.books = {i: read_table(staging, "book", i) for i in (BTC, Instrument("coinbase", "BTC-USD"))}
        self.cfg = load_config_dict(market_config(self.data, self.out))
        self.written_to = None

    def grow_to(self, ts: int) -> None:
        lo = self.written_to
        for inst, book in self.books.items():
            t = book.column("ts_recv")
            mask = pc.less(t, ts) if lo is None else pc.and_(pc.greater_equal(t, lo), pc.less(t, ts))
            write_partitioned(self.data, "book", inst.venue, inst.symbol, book.filter(mask))
        self.written_to = ts
        run_backtest(self.cfg)

    def last_time(self) -> str:
        ts = load_book(self.data, BTC).ts_recv[-1]
        return np.datetime_as_string(np.int64(ts).astype("M8[ns]").astype("M8[ms]"), unit="ms")[11:]


def test_live_dashboard_refreshes_pauses_and_drives_the_session(browser, artifacts, tmp_path):
    # Arrange: two minutes recorded and their results; the dashboard refreshing every second
    session = GrowingSession(tmp_path)
    t0 = int(session.books[BTC].column("ts_recv")[0].as_py())
    minute = 60 * 10**9
    session.grow_to(t0 + 2 * minute)
    live = FakeLive(session.out, session.data)
    port = free_port()
    server = serve_app(live=live, port=port, threaded=True, refresh_s=1)
    try:
        page = Page(browser, f"http://127.0.0.1:{port}/")
        page.wait_plots("Order Book")
        page.wait_kpi("book_time", session.last_time())

        # Act + Assert: the session writes more rows; the dashboard shows them without a click
        session.grow_to(t0 + 3 * minute)
        page.wait_kpi("book_time", session.last_time(), timeout=15)
        page.shot(artifacts / "live-order-book.png")

        # Act + Assert: paused, new rows wait; "Refresh now" shows them
        page.page.get_by_role("button", name="Pause").click()
        wait_for(lambda: "paused" in page.page.locator("[data-status]").first.inner_text(), 10, "paused status")
        before = page.kpi("book_time")
        session.grow_to(t0 + 4 * minute)
        time.sleep(2.5)
        assert page.kpi("book_time") == before
        page.page.get_by_role("button", name="Refresh now").click()
        page.wait_kpi("book_time", session.last_time(), timeout=15)

        # Act + Assert: sidebar parameters go to the session
        page.slider_to_end("Min confidence")
        wait_for(lambda: live.params and live.params[-1]["min_confidence"] == 1.0, 10, "set_params(min_confidence=1.0)")

        # Act + Assert: a one-click simulated execution becomes a manual fill of the session
        page.open_tab("Signals")
        page.wait_plots("Signals")
        page.page.get_by_role("button", name="Buy at ask").click()
        wait_for(lambda: live.fills == [("binance:BTC-USDT", 0.01)], 10, "manual_fill")
        wait_for(lambda: page.page.locator('[data-fill="ok"]').count() == 1, 10, "fill shown")
        page.shot(artifacts / "live-signals.png")

        for tab in ("Performance", "Arbitrage", "Analytics", "Data Quality"):
            page.open_tab(tab)
            page.wait_plots(tab)
        page.shot(artifacts / "live-data-quality.png")
        assert page.errors == []
        assert page.external == []
    finally:
        server.stop()
