"""Terminal rendering of summaries and query results (rich)."""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.table import Table


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _ts(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def print_summary(summary: dict, out: Optional[Path] = None, console: Optional[Console] = None,
                  title: str = "Backtest summary") -> None:
    """The per-instrument table, the arbitrage top 5 and where the results are."""
    console = console or Console(width=max(150, Console().width))
    t = Table(title=title, show_lines=False)
    cols = ["instrument", "rows", "invalid", "total P&L", "realized", "fees", "fills", "trips", "win rate",
            "max DD", "Sharpe", "hit 1s", "hit 5s", "hit 30s"]
    for c in cols:
        if c == "instrument":
            t.add_column(c, justify="left", no_wrap=True, min_width=17)
        else:
            t.add_column(c, justify="right", no_wrap=True)
    for name, s in summary["instruments"].items():
        h = s["hit_rate"]
        t.add_row(name, _fmt(s["rows"]), _fmt(s["invalid_rows"]), _fmt(s["total_pnl"], 2), _fmt(s["realized_pnl"], 2),
                  _fmt(s["fees"], 2), _fmt(s["fills"]), _fmt(s["round_trips"]), _fmt(s["win_rate"], 3),
                  _fmt(s["max_drawdown"], 2), _fmt(s["sharpe"], 1), _fmt(h["1s"], 3), _fmt(h["5s"], 3), _fmt(h["30s"], 3))
    console.print(t)
    arb = summary["arbitrage"]
    console.print(f"Arbitrage: {arb['episodes']} episodes, {arb['total_duration_ms'] / 1000:,.1f} s in total")
    if arb["top"]:
        a = Table(title="Top arbitrage episodes (by max net bps)")
        for c in ("buy", "sell", "start (UTC)", "ms", "points", "max bps", "mean bps", "max size", "max profit"):
            a.add_column(c, justify="right" if c not in ("buy", "sell") else "left")
        for e in arb["top"]:
            a.add_row(f"{e['buy_venue']}:{e['buy_symbol']}", f"{e['sell_venue']}:{e['sell_symbol']}", _ts(e["ts_start"]),
                      _fmt(e["duration_ms"], 0), _fmt(e["points"]), _fmt(e["max_net_bps"], 2), _fmt(e["mean_net_bps"], 2),
                      _fmt(e["max_size_top"]), _fmt(e["max_profit_walk"], 2))
        console.print(a)
    d = summary["data"]
    if d["rows"]:
        console.print(f"Data: {d['rows']:,} book rows from {_ts(d['start'])} to {_ts(d['end'])} UTC")
    if out is not None:
        console.print(f"Results written to {out}/ (signals, fills, equity, round_trips, arbitrage .parquet, summary.json, results.duckdb)")


def print_rows(cols: list[str], rows: list[tuple], as_csv: bool = False) -> None:
    """Print a query result as a table or CSV."""
    if as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
        return
    t = Table()
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(_fmt(v, 6) for v in r))
    Console(width=200).print(t)
