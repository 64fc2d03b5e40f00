"""HTML building blocks of the app: stat cards, the depth ladder, the 24 h range gauge, the signal badge.

Plain HTML strings styled by :data:`CSS`, which every pane gets as a stylesheet (Panel renders
components in shadow roots, so page-level CSS does not reach them). Elements carry ``data-*``
attributes (``data-kpi="total_pnl"``) so tests and users' scripts can find the numbers.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Iterable, Optional, Sequence

import numpy as np

BID = "#0ecb81"
ASK = "#f6465d"
ACCENT = "#f0b90b"
TEXT = "#eaecef"
MUTED = "#848e9c"
PANEL = "#161a1e"
BACKGROUND = "#0b0e11"
GRID = "#2b3139"

CSS = f"""
:host {{ --bid: {BID}; --ask: {ASK}; --accent: {ACCENT}; --text: {TEXT}; --muted: {MUTED};
        --panel: {PANEL}; --grid: {GRID}; color: var(--text);
        font-family: "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 12px; }}
.qf-cards {{ display: flex; flex-wrap: wrap; gap: 6px; margin: 2px 0 4px 0; }}
.qf-kpi {{ background: var(--panel); border: 1px solid var(--grid); border-radius: 4px; padding: 5px 10px 6px 10px;
           min-width: 92px; flex: 1 1 92px; }}
.qf-kpi-label {{ color: var(--muted); font-size: 10.5px; text-transform: uppercase; letter-spacing: .04em;
                 white-space: nowrap; }}
.qf-kpi-value {{ font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap;
                 margin-top: 1px; }}
.qf-kpi-sub {{ color: var(--muted); font-size: 10.5px; font-variant-numeric: tabular-nums; white-space: nowrap; }}
.qf-pos {{ color: var(--bid); }}
.qf-neg {{ color: var(--ask); }}
.qf-acc {{ color: var(--accent); }}
.qf-muted {{ color: var(--muted); }}
.qf-title {{ color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .05em;
             margin: 6px 0 3px 0; font-weight: 600; }}
.qf-note {{ color: var(--muted); font-size: 11.5px; padding: 2px 0; }}
.qf-empty {{ color: var(--muted); font-size: 13px; padding: 28px; text-align: center; border: 1px dashed var(--grid);
             border-radius: 4px; }}
table.qf-ladder {{ border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 12px; }}
table.qf-ladder th {{ color: var(--muted); font-weight: 500; text-align: right; padding: 2px 8px;
                      border-bottom: 1px solid var(--grid); font-size: 10.5px; text-transform: uppercase; }}
table.qf-ladder td {{ text-align: right; padding: 1px 8px; line-height: 16px; }}
table.qf-ladder tr.ask td.px {{ color: var(--ask); }}
table.qf-ladder tr.bid td.px {{ color: var(--bid); }}
table.qf-ladder tr.ask td {{ background-image: linear-gradient(to left, rgba(246,70,93,.16) var(--w), transparent var(--w)); }}
table.qf-ladder tr.bid td {{ background-image: linear-gradient(to left, rgba(14,203,129,.16) var(--w), transparent var(--w)); }}
table.qf-ladder tr.ask td, table.qf-ladder tr.bid td {{ background-repeat: no-repeat; }}
table.qf-ladder tr.mid td {{ border-top: 1px solid var(--grid); border-bottom: 1px solid var(--grid); padding: 4px 8px;
                             font-size: 14px; font-weight: 600; }}
.qf-gauge {{ background: var(--panel); border: 1px solid var(--grid); border-radius: 4px; padding: 8px 12px; }}
.qf-gauge-bar {{ position: relative; height: 8px; border-radius: 4px; margin: 8px 0 4px 0;
                 background: linear-gradient(to right, var(--ask), #474d57 50%, var(--bid)); }}
.qf-gauge-mark {{ position: absolute; top: -5px; width: 3px; height: 18px; background: var(--text); border-radius: 1px;
                  transform: translateX(-1px); box-shadow: 0 0 0 2px rgba(0,0,0,.6); }}
.qf-gauge-ends {{ display: flex; justify-content: space-between; color: var(--muted); font-variant-numeric: tabular-nums; }}
.qf-signal {{ display: flex; gap: 14px; align-items: center; background: var(--panel); border: 1px solid var(--grid);
              border-radius: 4px; padding: 8px 12px; }}
.qf-badge {{ font-size: 20px; font-weight: 700; padding: 4px 14px; border-radius: 4px; letter-spacing: .05em; }}
.qf-badge.buy {{ background: rgba(14,203,129,.15); color: var(--bid); border: 1px solid var(--bid); }}
.qf-badge.sell {{ background: rgba(246,70,93,.15); color: var(--ask); border: 1px solid var(--ask); }}
.qf-badge.flat {{ background: rgba(132,142,156,.12); color: var(--muted); border: 1px solid var(--grid); }}
.qf-conf {{ width: 160px; height: 6px; background: var(--grid); border-radius: 3px; overflow: hidden; margin-top: 4px; }}
.qf-conf > div {{ height: 100%; background: var(--accent); }}
.qf-status {{ color: var(--muted); font-size: 11px; line-height: 15px; }}
.qf-status b {{ color: var(--text); font-weight: 600; }}
.qf-live {{ display: inline-block; width: 7px; height: 7px; border-radius: 50%; background: var(--bid); margin-right: 5px; }}
.qf-live.paused {{ background: var(--accent); }}
"""


# ----------------------------------------------------------------------------- formatting

def fmt(v, digits: int = 2, sign: bool = False, suffix: str = "") -> str:
    """A number for display: thousands separators, fixed digits, '—' for missing."""
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):+,}{suffix}" if sign else f"{int(v):,}{suffix}"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    if not math.isfinite(f):
        return "—"
    return (f"{f:+,.{digits}f}" if sign else f"{f:,.{digits}f}") + suffix


def pct(v, digits: int = 1, sign: bool = False) -> str:
    """A share 0…1 as a percentage."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return fmt(float(v) * 100, digits, sign, "%")


def tone(v) -> str:
    """CSS class for the sign of a number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f) or f == 0:
        return ""
    return "qf-pos" if f > 0 else "qf-neg"


def utc(ts_ns: Optional[int], with_date: bool = True, ms: bool = True) -> str:
    """ns timestamp as UTC text."""
    if ts_ns is None:
        return "—"
    d = dt.datetime.fromtimestamp(int(ts_ns) // 1_000_000_000, tz=dt.timezone.utc)
    text = d.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    if ms:
        text += f".{int(ts_ns) // 1_000_000 % 1000:03d}"
    return text


def utc_column(ts: np.ndarray) -> list[str]:
    """Vectorized :func:`utc` for table columns (sorts correctly as text)."""
    base = np.datetime_as_string(np.asarray(ts, np.int64).view("M8[ns]").astype("M8[ms]"), unit="ms")
    return [s.replace("T", " ") for s in base]


# ----------------------------------------------------------------------------- building blocks

def card(key: str, label: str, value: str, cls: str = "", sub: str = "") -> str:
    """One stat card; ``key`` becomes ``data-kpi``."""
    sub_html = f'<div class="qf-kpi-sub">{sub}</div>' if sub else ""
    return (f'<div class="qf-kpi" data-kpi="{html.escape(key)}"><div class="qf-kpi-label">{html.escape(label)}</div>'
            f'<div class="qf-kpi-value {cls}">{value}</div>{sub_html}</div>')


def cards(items: Iterable[str]) -> str:
    return f'<div class="qf-cards">{"".join(items)}</div>'


def title(text: str) -> str:
    return f'<div class="qf-title">{html.escape(text)}</div>'


def empty(text: str) -> str:
    return f'<div class="qf-empty">{html.escape(text)}</div>'


def ladder(bids: Sequence[tuple[float, float, float]], asks: Sequence[tuple[float, float, float]],
           mid: float, spread: float, spread_bps: float, price_digits: int = 2) -> str:
    """A price ladder: asks above (best at the bottom), the spread row, bids below; size bars by cumulative depth.

    ``bids``/``asks`` are (price, size, cumulative size) in book order (best first).
    """
    total = max([c for _, _, c in bids] + [c for _, _, c in asks] + [1e-12])
    rows = ['<table class="qf-ladder" data-ladder="1"><tr><th>Price</th><th>Size</th><th>Total</th></tr>']
    for p, s, c in reversed(list(asks)):
        rows.append(f'<tr class="ask" style="--w:{c / total * 100:.1f}%"><td class="px">{fmt(p, price_digits)}</td>'
                    f'<td>{fmt(s, 4)}</td><td>{fmt(c, 4)}</td></tr>')
    rows.append(f'<tr class="mid"><td class="qf-acc" data-kpi="ladder_mid">{fmt(mid, price_digits)}</td>'
                f'<td colspan="2" class="qf-muted">spread {fmt(spread, price_digits)} · {fmt(spread_bps, 3)} bps</td></tr>')
    for p, s, c in bids:
        rows.append(f'<tr class="bid" style="--w:{c / total * 100:.1f}%"><td class="px">{fmt(p, price_digits)}</td>'
                    f'<td>{fmt(s, 4)}</td><td>{fmt(c, 4)}</td></tr>')
    rows.append("</table>")
    return "".join(rows)


def range_gauge(last: float, low: float, high: float, position: float, label: str = "24 h range") -> str:
    """Where the last price sits between the 24 h low and high."""
    left = 0 if not math.isfinite(position) else position * 100
    mark = "" if not math.isfinite(position) else f'<div class="qf-gauge-mark" style="left:{left:.1f}%"></div>'
    return (f'<div class="qf-gauge" data-gauge="{"" if not math.isfinite(position) else f"{position:.4f}"}">'
            f'<div class="qf-kpi-label">{html.escape(label)} · last {fmt(last)} · {pct(position, 0)} of range</div>'
            f'<div class="qf-gauge-bar">{mark}</div>'
            f'<div class="qf-gauge-ends"><span>L {fmt(low)}</span><span>H {fmt(high)}</span></div></div>')


def signal_badge(signal: int, confidence: float, min_confidence: float, when: str, details: Sequence[tuple[str, str]]) -> str:
    """The signal at a moment: BUY/SELL/FLAT, its confidence against the trading threshold, its inputs."""
    name, cls = {1: ("BUY", "buy"), -1: ("SELL", "sell")}.get(int(signal), ("FLAT", "flat"))
    conf = confidence if math.isfinite(confidence) else 0.0
    trades = signal != 0 and conf >= min_confidence
    verdict = "trades" if trades else ("below min confidence" if signal != 0 else "no position change")
    parts = "".join(f'<div><div class="qf-kpi-label">{html.escape(k)}</div><div class="qf-kpi-value" style="font-size:14px">{v}</div></div>'
                    for k, v in details)
    return (f'<div class="qf-signal" data-signal="{name}"><div class="qf-badge {cls}">{name}</div>'
            f'<div><div class="qf-kpi-label">confidence</div><div class="qf-kpi-value" data-kpi="confidence">{pct(conf, 1)}</div>'
            f'<div class="qf-conf"><div style="width:{conf * 100:.1f}%"></div></div>'
            f'<div class="qf-kpi-sub">min {pct(min_confidence, 0)} · {verdict}</div></div>'
            f'<div class="qf-kpi-sub">{html.escape(when)}</div>{parts}</div>')
