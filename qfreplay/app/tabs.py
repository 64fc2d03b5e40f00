"""The six tabs of the app. Each draws from its dashboard's current run and selection.

A tab redraws everything in ``render`` and, where it helps, only what follows the snapshot time
in ``render_snapshot`` (the ladder, the signal badge, the 24 h statistics).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import panel as pn
import pyarrow.compute as pc

from ..errors import QfreplayError
from ..schema import EVENT_KINDS, FLAG_RESYNC
from ..store import BookArrays
from . import blocks as B
from . import charts, prep
from .panes import chart, html, table

if TYPE_CHECKING:
    from .dashboard import Dashboard

LADDER_LEVELS = 10
HEATMAP_WINDOW_S = 180
SIGNAL_HISTORY = 2000


class Tab:
    """One tab: a column whose content is redrawn from the dashboard's current run."""

    title = ""

    def __init__(self, dash: "Dashboard"):
        self.dash = dash
        self.stale = True
        self.panel = pn.Column(sizing_mode="stretch_width", margin=(4, 0), name=self.title)
        self.content: list = []  # what the tab shows, placed in ``panel`` when it is first shown

    def show(self) -> None:
        """Redraw everything; the first time, place the content too (a tab never opened costs the page nothing)."""
        self.render()
        if not len(self.panel):
            self.panel[:] = self.content

    def render(self) -> None:
        """Redraw everything."""

    def render_snapshot(self) -> None:
        """Redraw what depends on the snapshot time only (default: everything)."""
        self.render()


# ============================================================================= Order Book

class OrderBookTab(Tab):
    title = "Order Book"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.head = html()
        self.ladder = html(width=360, sizing_mode=None)
        self.depth = chart()
        self.heat = chart()
        self.note = html()
        self.content = [self.head, pn.Row(self.ladder, self.depth, sizing_mode="stretch_width"), self.heat, self.note]

    def render(self) -> None:
        self.render_snapshot()  # everything here follows the snapshot time

    def render_snapshot(self) -> None:
        d = self.dash
        book = d.book_in_range()
        if book is None or not len(book):
            self.head.object = B.empty(d.dataset_message())
            self.ladder.object = ""
            self.depth.object = charts.empty_chart("no book")
            self.heat.object = charts.empty_chart(d.dataset_message())
            return
        t = d.snapshot_ts()
        valid = prep.valid_rows_mask(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz)
        focus = (t - HEATMAP_WINDOW_S * prep.NS_PER_S, t)
        self.heat.object = charts.heatmap(book.ts_recv, book.bid_px, book.bid_sz, book.ask_px, book.ask_sz, valid, focus)
        self.note.object = (f'<div class="qf-note">{len(book):,} book rows · {book.levels} levels a side · the heatmap opens '
                            f'on the {HEATMAP_WINDOW_S // 60} minutes up to the snapshot and re-bins on zoom and pan</div>')
        i = prep.last_at_or_before(book.ts_recv, t)
        if i < 0:
            i = 0
        levels = d.source.config.features.levels
        tt = prep.touch(book.bid_px[i], book.bid_sz[i], book.ask_px[i], book.ask_sz[i], levels)
        change = d.change_24h(t)
        self.head.object = B.cards([
            B.card("book_time", "book at (UTC)", B.utc(int(book.ts_recv[i]), with_date=False),
                   sub=B.utc(int(book.ts_recv[i]))[:10] + (" · resync" if book.flags[i] & FLAG_RESYNC else "")),
            B.card("best_bid", "best bid", B.fmt(tt.best_bid), "qf-pos", sub=f"size {B.fmt(tt.bid_size, 4)}"),
            B.card("best_ask", "best ask", B.fmt(tt.best_ask), "qf-neg", sub=f"size {B.fmt(tt.ask_size, 4)}"),
            B.card("mid", "mid", B.fmt(tt.mid)),
            B.card("spread", "spread", B.fmt(tt.spread), sub=f'<span data-kpi="spread_bps">{B.fmt(tt.spread_bps, 3)}</span> bps'),
            B.card("imbalance", f"imbalance (L={min(levels, book.levels)})", B.fmt(tt.imbalance, 3, sign=True), B.tone(tt.imbalance)),
            B.card("change_24h", "24 h change", B.fmt(change, 2, sign=True, suffix="%"), B.tone(change)),
        ]) + ("" if tt.valid else '<div class="qf-note qf-neg">invalid row: level 0 missing or crossed</div>')
        bp, bs, bc = prep.depth_curve(book.bid_px[i], book.bid_sz[i])
        ap, as_, ac = prep.depth_curve(book.ask_px[i], book.ask_sz[i])
        n = LADDER_LEVELS
        self.ladder.object = B.title("Depth ladder") + B.ladder(list(zip(bp[:n], bs[:n], bc[:n])), list(zip(ap[:n], as_[:n], ac[:n])),
                                                              tt.mid, tt.spread, tt.spread_bps)
        self.depth.object = charts.depth_chart(bp, bc, ap, ac, height=372)


# ============================================================================= Signals

class SignalsTab(Tab):
    title = "Signals"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.badge = html()
        self.features = chart()
        self.history = table()
        self.exec_box = pn.Column(sizing_mode="stretch_width")
        if dash.live is not None and callable(getattr(dash.live, "manual_fill", None)):
            self.qty = pn.widgets.FloatInput(label="Quantity (base)", value=dash.source.config.execution.position_size,
                                             start=0.0, step=0.001, width=140)
            self.buy = pn.widgets.Button(label="Buy at ask", color="success", width=110, align="end")
            self.sell = pn.widgets.Button(label="Sell at bid", color="danger", width=110, align="end")
            self.exec_result = html()
            self.buy.on_click(lambda _: self._execute(+1))
            self.sell.on_click(lambda _: self._execute(-1))
            self.exec_box[:] = [html(B.title("Simulated execution at the current book")),
                                pn.Row(self.qty, self.buy, self.sell), self.exec_result]
        self.content = [self.badge, self.exec_box, self.features,
                        html(B.title("Signal history (changes, newest first)")), self.history]

    def _execute(self, side: int) -> None:
        d = self.dash
        qty = side * abs(float(self.qty.value or 0))
        if qty == 0:
            self.exec_result.object = '<div class="qf-note qf-neg">quantity must be > 0</div>'
            return
        try:
            fill = d.live.manual_fill(str(d.instrument), qty)
        except QfreplayError as exc:
            self.exec_result.object = f'<div class="qf-note qf-neg" data-fill="error">{B.fmt(str(exc))}</div>'
            return
        fill = fill or {}
        self.exec_result.object = (
            f'<div class="qf-note" data-fill="ok">filled <b class="{B.tone(qty)}">{B.fmt(fill.get("qty", qty), 4, sign=True)}</b> '
            f'@ {B.fmt(fill.get("price"))} · fee {B.fmt(fill.get("fee"), 4)} · position {B.fmt(fill.get("position"), 4)} '
            f'· {B.utc(fill.get("ts_fill")) if fill.get("ts_fill") else ""}</div>')
        d.refresh()

    def render(self) -> None:
        d = self.dash
        sig = d.signals()
        cfg = d.source.config
        if not len(sig["ts_recv"]):
            self.features.object = charts.empty_chart("no signal rows in this range")
            self.history.value = pd.DataFrame()
        else:
            fills = d.table_in_range(d.run.fills, "ts_fill")
            self.features.object = charts.features_chart(
                sig, fills.column("ts_fill").to_numpy(), fills.column("price").to_numpy(), fills.column("qty").to_numpy(),
                cfg.signal.imbalance_threshold, cfg.signal.max_spread_bps)
            idx = prep.signal_changes(sig["signal"], sig["valid"])[-SIGNAL_HISTORY:][::-1]
            self.history.value = pd.DataFrame({
                "time (UTC)": B.utc_column(sig["ts_recv"][idx]),
                "signal": np.array(["SELL", "FLAT", "BUY"])[sig["signal"][idx].astype(np.int64) + 1],
                "confidence": np.round(sig["confidence"][idx], 3),
                "imbalance": np.round(sig["imbalance"][idx], 3),
                "spread bps": np.round(sig["spread_bps"][idx], 3),
                "mid": np.round(sig["mid"][idx], 2),
                "micro − mid bps": np.round((sig["micro_price"][idx] - sig["mid"][idx]) / sig["mid"][idx] * 1e4, 3),
                "ofi": np.round(sig["ofi"][idx], 4),
            })
        self.render_snapshot()

    def render_snapshot(self) -> None:
        d = self.dash
        sig = d.signals()
        if not len(sig["ts_recv"]):
            self.badge.object = B.empty("no signals in this range")
            return
        i = max(0, prep.last_at_or_before(sig["ts_recv"], d.snapshot_ts()))
        mid, micro = sig["mid"][i], sig["micro_price"][i]
        details = [("imbalance", B.fmt(sig["imbalance"][i], 3, sign=True)), ("spread", f'{B.fmt(sig["spread_bps"][i], 3)} bps'),
                   ("micro − mid", f"{B.fmt((micro - mid) / mid * 1e4 if mid else math.nan, 3, sign=True)} bps"),
                   ("OFI", B.fmt(sig["ofi"][i], 4, sign=True)), ("mid", B.fmt(mid)),
                   ("row", "valid" if sig["valid"][i] else "invalid")]
        label = "latest signal" if d.live is not None else "signal at"
        self.badge.object = B.signal_badge(int(sig["signal"][i]), float(sig["confidence"][i]), float(d.min_conf.value),
                                           f"{label} {B.utc(int(sig['ts_recv'][i]))} UTC", details)


# ============================================================================= Performance

class PerformanceTab(Tab):
    title = "Performance"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.kpis = html()
        self.chart = chart()
        self.fills = table()
        self.trips = table()
        self.all = table(pagination=None)
        self.content = [self.kpis, self.chart,
                        pn.Row(pn.Column(html(B.title("Fills (newest first)")), self.fills, sizing_mode="stretch_width"),
                               pn.Column(html(B.title("Round trips (newest first)")), self.trips, sizing_mode="stretch_width"),
                               sizing_mode="stretch_width"),
                        html(B.title("All instruments (the run's own parameters and range)")), self.all]

    def render(self) -> None:
        d = self.dash
        run = d.run
        s = run.summary
        h = s.get("hit_rate") or {}
        self.kpis.object = B.cards([
            B.card("total_pnl", "total P&L", B.fmt(s.get("total_pnl"), 2, sign=True), B.tone(s.get("total_pnl")),
                   sub=f"realized {B.fmt(s.get('realized_pnl'), 2, sign=True)}"),
            B.card("win_rate", "win rate", B.pct(s.get("win_rate"))),
            B.card("avg_pnl", "avg P&L / trip", B.fmt(s.get("avg_pnl_per_round_trip"), 4, sign=True), B.tone(s.get("avg_pnl_per_round_trip"))),
            B.card("fills", "fills", B.fmt(s.get("fills")), sub=f"{B.fmt(s.get('round_trips'))} round trips"),
            B.card("fees", "fees", B.fmt(s.get("fees"), 2)),
            B.card("max_drawdown", "max drawdown", B.fmt(s.get("max_drawdown"), 2), "qf-neg" if (s.get("max_drawdown") or 0) > 0 else ""),
            B.card("sharpe", "Sharpe (ann.)", B.fmt(s.get("sharpe"), 2), B.tone(s.get("sharpe"))),
            *(B.card(f"hit_rate_{k}", f"hit rate {k}", B.pct(h.get(k))) for k in ("1s", "5s", "30s")),
            B.card("rows", "book rows", B.fmt(s.get("rows")), sub=f"{B.fmt(s.get('invalid_rows'))} invalid"),
        ])
        eq = d.equity()
        self.chart.object = (charts.equity_chart(eq["ts_recv"], eq["equity"], eq["position"]) if len(eq["ts_recv"])
                             else charts.empty_chart("no equity rows in this range"))
        fills = d.table_in_range(run.fills, "ts_fill")
        f = fills.to_pandas() if fills.num_rows else pd.DataFrame(columns=fills.column_names)
        f = f.iloc[::-1]
        self.fills.value = pd.DataFrame({
            "filled (UTC)": B.utc_column(f["ts_fill"].to_numpy()), "side": np.where(f["qty"] > 0, "BUY", "SELL"),
            "qty": f["qty"].round(6), "price": f["price"].round(2), "fee": f["fee"].round(4),
            "position": f["position"].round(6), "latency ms": ((f["ts_fill"] - f["ts_order"]) / 1e6).round(1)})
        trips = d.table_in_range(run.round_trips, "ts_close")
        r = trips.to_pandas() if trips.num_rows else pd.DataFrame(columns=trips.column_names)
        r = r.iloc[::-1]
        self.trips.value = pd.DataFrame({
            "closed (UTC)": B.utc_column(r["ts_close"].to_numpy()), "side": np.where(r["side"] > 0, "LONG", "SHORT"),
            "qty": r["qty"].round(6), "entry": r["entry_px"].round(2), "exit": r["exit_px"].round(2),
            "fees": r["fees"].round(4), "pnl": r["pnl"].round(4),
            "held s": ((r["ts_close"] - r["ts_open"]) / 1e9).round(1)})
        rows = []
        for name, si in d.source.summary.get("instruments", {}).items():
            hi = si.get("hit_rate") or {}
            rows.append({"instrument": name, "total P&L": si.get("total_pnl"), "realized": si.get("realized_pnl"),
                         "fees": si.get("fees"), "fills": si.get("fills"), "trips": si.get("round_trips"),
                         "win rate": si.get("win_rate"), "max DD": si.get("max_drawdown"), "Sharpe": si.get("sharpe"),
                         "hit 1s": hi.get("1s"), "hit 5s": hi.get("5s"), "hit 30s": hi.get("30s")})
        self.all.value = pd.DataFrame(rows).round(4) if rows else pd.DataFrame()


# ============================================================================= Arbitrage

class ArbitrageTab(Tab):
    title = "Arbitrage"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.kpis = html()
        self.top = table(pagination=None)
        self.bars = chart()
        self.spread = chart()
        self.content = [self.kpis, html(B.title("Top 5 episodes by max net spread (all pairs)")), self.top,
                        self.bars, self.spread]

    def render(self) -> None:
        d = self.dash
        from ..engine.backtest import arbitrage_summary  # the summary's own top-5 rule

        ep = d.table_in_range(d.source.arbitrage(), "ts_start")
        arb = arbitrage_summary(ep)
        top = arb["top"]
        pair = d.source.pair_of(d.instrument)
        best_profit = pc.max(ep.column("max_profit_walk")).as_py() if ep.num_rows else None
        self.kpis.object = B.cards([
            B.card("episodes", "episodes", B.fmt(arb["episodes"])),
            B.card("arb_duration", "time in episodes", f"{B.fmt(arb['total_duration_ms'] / 1000, 1)} s"),
            B.card("best_bps", "best net spread", f"{B.fmt(top[0]['max_net_bps'] if top else None, 2)} bps", "qf-pos" if top else ""),
            B.card("best_profit", "best expected profit", B.fmt(best_profit, 2)),
        ])
        self.top.value = pd.DataFrame({
            "#": list(range(1, len(top) + 1)),
            "buy on": [f"{r['buy_venue']}:{r['buy_symbol']}" for r in top],
            "sell on": [f"{r['sell_venue']}:{r['sell_symbol']}" for r in top],
            "start (UTC)": B.utc_column(np.array([r["ts_start"] for r in top], np.int64)),
            "duration ms": [round(r["duration_ms"], 1) for r in top],
            "points": [r["points"] for r in top],
            "max net bps": [round(r["max_net_bps"], 2) for r in top],
            "mean net bps": [round(r["mean_net_bps"], 2) for r in top],
            "top size": [round(r["max_size_top"], 4) for r in top],
            "expected profit": [round(r["max_profit_walk"], 2) for r in top],
        })
        if top:
            labels = [f"#{k + 1} {r['buy_venue']}→{r['sell_venue']} {B.utc(r['ts_start'], with_date=False, ms=False)}"
                      for k, r in enumerate(top)]
            self.bars.object = charts.arb_bars(labels[::-1], [r["max_net_bps"] for r in top][::-1])
        else:
            self.bars.object = charts.empty_chart("no arbitrage episodes in this range", 160)
        ns = d.net_spread(pair) if pair else None
        if ns is None or not len(ns.ts):
            self.spread.object = charts.empty_chart(d.dataset_message() if pair else "no arbitrage pairs configured")
        else:
            a, b = pair
            self.spread.object = charts.net_spread_chart(ns, f"buy {a} / sell {b}", f"buy {b} / sell {a}").opts(
                title=f"Net spread after fees (bps) · {a} ⇄ {b}")


# ============================================================================= Analytics

class AnalyticsTab(Tab):
    title = "Analytics"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.stats = html()
        self.gauge = html()
        self.chart = chart()
        self.content = [self.stats, self.gauge, self.chart]

    def render(self) -> None:
        d = self.dash
        book = d.book_in_range()
        trades = d.dataset_in_range("trades")
        if book is None or not len(book):
            self.chart.object = charts.empty_chart(d.dataset_message())
        else:
            valid = prep.valid_rows_mask(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz)
            mid = (book.bid_px[valid, 0] + book.ask_px[valid, 0]) / 2
            span = int(book.ts_recv[-1] - book.ts_recv[0])
            bin_ns = prep.nice_bin_ns(span, 240)
            if trades is not None and trades.num_rows:
                bt, buy, sell = prep.volume_bars(trades.column("ts_recv").to_numpy(), trades.column("size").to_numpy(),
                                                 trades.column("side").to_numpy(), bin_ns)
            else:
                bt, buy, sell = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
            self.chart.object = charts.price_volume_chart(book.ts_recv[valid], mid, bt, buy, sell, bin_ns)
        self.render_snapshot()

    def render_snapshot(self) -> None:
        d = self.dash
        st = d.stats_24h(d.snapshot_ts())
        self.stats.object = B.cards([
            B.card("last", "last price", B.fmt(st["last"])),
            B.card("change", "24 h change", B.fmt(st["change_pct"], 2, sign=True, suffix="%"), B.tone(st["change_pct"])),
            B.card("high", "24 h high", B.fmt(st["high"])),
            B.card("low", "24 h low", B.fmt(st["low"])),
            B.card("volume", "24 h volume (base)", B.fmt(st["volume"], 3)),
            B.card("quote_volume", "24 h volume (quote)", B.fmt(st["quote_volume"], 0)),
        ]) + f'<div class="qf-note">{st["source"]} · at {B.utc(st["ts"]) if st["ts"] else "—"} UTC</div>'
        self.gauge.object = B.range_gauge(st["last"], st["low"], st["high"], prep.range_position(st["last"], st["low"], st["high"]))


# ============================================================================= Data quality

class QualityTab(Tab):
    title = "Data Quality"

    def __init__(self, dash: "Dashboard"):
        super().__init__(dash)
        self.kpis = html()
        self.latency = table(pagination=None)
        self.rates = chart()
        self.lat_chart = chart()
        self.events = table()
        self.content = [self.kpis, html(B.title("Exchange-to-local latency (ts_recv − ts_event, ms)")), self.latency,
                        self.rates, self.lat_chart, html(B.title("Events (newest first)")), self.events]

    def render(self) -> None:
        d = self.dash
        book = d.book_in_range()
        trades = d.dataset_in_range("trades")
        events = d.dataset_in_range("events")
        kinds = events.column("kind").to_pylist() if events is not None else []
        counts = prep.event_counts(kinds, EVENT_KINDS)
        n_rows = len(book) if book is not None else 0
        resync_rows = int(np.count_nonzero(book.flags & FLAG_RESYNC)) if n_rows else 0
        invalid = int(n_rows - prep.valid_rows_mask(book.bid_px, book.bid_sz, book.ask_px, book.ask_sz).sum()) if n_rows else 0
        span_s = (int(book.ts_recv[-1]) - int(book.ts_recv[0])) / 1e9 if n_rows > 1 else math.nan
        self.kpis.object = B.cards([
            B.card("gaps", "gaps", B.fmt(counts["gap"]), "qf-neg" if counts["gap"] else ""),
            B.card("resyncs", "resyncs", B.fmt(counts["resync"]), sub=f"{resync_rows:,} RESYNC rows"),
            B.card("disconnects", "disconnects", B.fmt(counts["disconnect"]), "qf-neg" if counts["disconnect"] else ""),
            B.card("malformed", "malformed", B.fmt(counts["malformed"])),
            B.card("errors", "errors / rate limited", f"{counts['error']:,} / {counts['rate_limited']:,}"),
            B.card("book_rows", "book rows", B.fmt(n_rows), sub=f"{invalid:,} invalid"),
            B.card("book_rate", "book rows / s", B.fmt(n_rows / span_s if span_s and span_s > 0 else None, 2)),
            B.card("trade_rate", "trades / s",
                   B.fmt(trades.num_rows / span_s if trades is not None and span_s and span_s > 0 else None, 2)),
        ])
        lat_rows = []
        for name, t in (("book", book), ("trades", trades)):
            if t is None or (len(t) if isinstance(t, BookArrays) else t.num_rows) == 0:
                continue
            tr = t.ts_recv if isinstance(t, BookArrays) else t.column("ts_recv").to_numpy()
            te = t.ts_event if isinstance(t, BookArrays) else t.column("ts_event").to_numpy()
            stats = prep.latency_stats(tr, te)
            lat_rows.append({"table": name, "rows": len(tr), **{k: round(v, 2) for k, v in stats.items()}})
        self.latency.value = pd.DataFrame(lat_rows)
        if not n_rows:
            self.rates.object = charts.empty_chart(d.dataset_message())
            self.lat_chart.object = charts.empty_chart(d.dataset_message())
        else:
            t0, t1 = int(book.ts_recv[0]), int(book.ts_recv[-1])
            bin_ns = prep.nice_bin_ns(t1 - t0, 300)
            series = [("book rows", *prep.rate_per_second(book.ts_recv, bin_ns, t0, t1), B.TEXT)]
            if trades is not None and trades.num_rows:
                series.append(("trades", *prep.rate_per_second(trades.column("ts_recv").to_numpy(), bin_ns, t0, t1), charts.BLUE))
            ev_ts = events.column("ts_recv").to_numpy() if events is not None else np.zeros(0, np.int64)
            marks = [(k, ev_ts[np.array([x == k for x in kinds], bool)] if len(kinds) else ev_ts[:0], c)
                     for k, c in (("gap", B.ASK), ("resync", B.ACCENT), ("disconnect", charts.PURPLE))]
            self.rates.object = charts.rate_chart(series, marks, bin_ns)
            lat = (book.ts_recv - book.ts_event) / 1e6
            lt, pc = prep.binned_percentiles(book.ts_recv, lat, bin_ns, (50.0, 90.0, 99.0))
            self.lat_chart.object = charts.latency_chart(lt, pc, ["p50", "p90", "p99"], bin_ns)
        if events is not None and events.num_rows:
            e = events.to_pandas().iloc[::-1]
            self.events.value = pd.DataFrame({"time (UTC)": B.utc_column(e["ts_recv"].to_numpy()), "kind": e["kind"],
                                              "detail": e["detail"]})
        else:
            self.events.value = pd.DataFrame({"time (UTC)": [], "kind": [], "detail": []})
