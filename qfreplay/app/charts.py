"""HoloViews (Bokeh) charts of the app, built from the arrays :mod:`qfreplay.app.prep` returns.

Long series are reduced with :func:`~qfreplay.app.prep.minmax_downsample` (peaks survive) and the
liquidity heatmap is re-binned server-side for the visible range on every zoom, so a day of
100 ms rows draws as a few thousand points whatever its length.
"""

from __future__ import annotations

from typing import Optional, Sequence

import holoviews as hv
import numpy as np
from bokeh.models import PrintfTickFormatter

from . import prep
from .blocks import ACCENT, ASK, BID, GRID, MUTED, PANEL, TEXT

hv.extension("bokeh", logo=False)

LINE_BINS = 1000
HEATMAP_SIZE = (480, 160)
BLUE = "#3c8ce7"
PURPLE = "#b37feb"


def _dark(plot, element) -> None:
    """Bokeh look shared by every chart: dark panel, faint grid, quiet axes, toolbar on hover."""
    fig = plot.state
    fig.output_backend = "canvas"  # downsampled data draws at once; WebGL only adds driver trouble (remote, headless)
    fig.background_fill_color = PANEL
    fig.border_fill_color = PANEL
    fig.outline_line_color = GRID
    fig.min_border_left = 58
    for axis in fig.xaxis + fig.yaxis:
        axis.axis_line_color = GRID
        axis.major_tick_line_color = GRID
        axis.minor_tick_line_color = None
        axis.major_label_text_color = MUTED
        axis.axis_label_text_color = MUTED
        axis.axis_label_text_font_size = "11px"
        axis.axis_label_text_font_style = "normal"
        axis.major_label_text_font_size = "10.5px"
    for grid in fig.xgrid + fig.ygrid:
        grid.grid_line_color = GRID
        grid.grid_line_alpha = 0.6
    if fig.title is not None:
        fig.title.text_color = TEXT
        fig.title.text_font_size = "12px"
        fig.title.text_font_style = "normal"
    if fig.legend:
        for legend in fig.legend:
            legend.background_fill_color = PANEL
            legend.background_fill_alpha = 0.7
            legend.label_text_color = TEXT
            legend.label_text_font_size = "10.5px"
            legend.border_line_color = GRID
            legend.padding = 4
            legend.spacing = 0
            legend.label_height = 12
            legend.glyph_height = 12
    fig.toolbar.autohide = True
    fig.toolbar.logo = None


# framewise: a redrawn chart (live refresh, new snapshot) fits its axes to the new data
COMMON = dict(responsive=True, show_grid=True, hooks=[_dark], toolbar="right", framewise=True,
              default_tools=["pan", "xwheel_zoom", "box_zoom", "reset", "save"], active_tools=["pan", "xwheel_zoom"])
TIME = "time"


def _t(ts: np.ndarray) -> np.ndarray:
    return prep.as_datetime(ts)


def _time_dim() -> hv.Dimension:
    return hv.Dimension(TIME, label="UTC")


def line(ts: np.ndarray, y: np.ndarray, name: str, color: str, label: Optional[str] = None,
         bins: int = LINE_BINS, width: float = 1.3) -> hv.Curve:
    """A downsampled time series."""
    x, yy = prep.minmax_downsample(ts, np.asarray(y, np.float64), bins)
    return hv.Curve((_t(x), yy), _time_dim(), hv.Dimension(name, label=label or name)).opts(
        color=color, line_width=width, **COMMON)


def empty_chart(text: str, height: int = 220) -> hv.Text:
    """A placeholder chart saying why there is nothing to draw."""
    return hv.Text(0, 0, text).opts(color=MUTED, height=height, responsive=True, xaxis=None, yaxis=None,
                                    hooks=[_dark], toolbar=None)


def _stack(plots: list) -> hv.Layout:
    """Charts one above the other sharing the time axis, which only the bottom one draws."""
    upper = [p.opts(xaxis=None) if not isinstance(p, hv.Text) else p for p in plots[:-1]]
    return hv.Layout(upper + plots[-1:]).cols(1).opts(shared_axes=True)


# ----------------------------------------------------------------------------- order book

def heatmap(ts: np.ndarray, bid_px: np.ndarray, bid_sz: np.ndarray, ask_px: np.ndarray, ask_sz: np.ndarray,
            valid: np.ndarray, focus: tuple[int, int], height: int = 340) -> hv.DynamicMap:
    """Liquidity by price over time with the best bid and ask on top, re-binned for the visible ranges.

    Opens on ``focus`` (a [t0, t1] window, e.g. the minutes before the snapshot) with a price band
    fitted to it; zooming or panning re-bins the grid and re-samples the touch lines server-side.
    """
    vts = ts[valid]
    vbid, vask = bid_px[valid, 0], ask_px[valid, 0]
    sl = prep.window(ts, focus[0], focus[1] + 1)
    if sl.stop - sl.start < 2:
        sl = slice(0, len(ts))
    mid = np.where(valid[sl], (bid_px[sl, 0] + ask_px[sl, 0]) / 2, np.nan)
    last = sl.stop - 1
    band = prep.price_band(mid, np.concatenate([bid_px[last], ask_px[last]]))
    first = (int(ts[sl.start]), int(ts[sl.stop - 1]))
    w, h = HEATMAP_SIZE

    def view(x_range, y_range):
        t_range = first if x_range is None else tuple(int(np.datetime64(v, "ns").astype(np.int64)) for v in x_range)
        p_range = band if y_range is None else (float(y_range[0]), float(y_range[1]))
        g = prep.liquidity_grid(ts, bid_px, bid_sz, ask_px, ask_sz, t_range, p_range, w, h)
        tx = g.t0 + (np.arange(w) + 0.5) * (g.t1 - g.t0) / w
        py = g.p0 + (np.arange(h) + 0.5) * (g.p1 - g.p0) / h
        img = hv.Image((_t(tx.astype(np.int64)), py, g.values.astype(np.float32)), [_time_dim(), "price"], "size")
        vs = prep.window(vts, t_range[0], t_range[1] + 1)
        lo, hi = max(0, vs.start - 1), min(len(vts), vs.stop + 1)  # one row beyond each edge keeps the lines whole
        bid = line(vts[lo:hi], vbid[lo:hi], "price", "#27f5b0", width=1.6, bins=w).relabel("best bid")
        ask = line(vts[lo:hi], vask[lo:hi], "price", "#ff5c8a", width=1.6, bins=w).relabel("best ask")
        return (img * bid * ask).opts(hv.opts.Image(ylim=band), hv.opts.Curve(ylim=band))

    return hv.DynamicMap(view, streams=[hv.streams.RangeXY()]).opts(
        hv.opts.Image(cmap="fire", cnorm="eq_hist", colorbar=True, clipping_colors={"NaN": PANEL}, tools=["hover"],
                      colorbar_opts={"formatter": PrintfTickFormatter(format="%.3g"), "background_fill_color": PANEL,
                                     "major_label_text_color": MUTED},
                      height=height, **{**COMMON, "framewise": False, "active_tools": ["pan", "wheel_zoom"],
                                        "default_tools": ["pan", "wheel_zoom", "xwheel_zoom", "box_zoom", "reset", "save"]}),
        hv.opts.Curve(line_alpha=0.9),
        hv.opts.Overlay(legend_position="top_left", title="Liquidity heatmap · mean resting size per price bin"))


def _steps(px: np.ndarray, cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step outline of cumulative depth from the touch outwards."""
    if len(px) == 0:
        return px, cum
    x = np.repeat(px, 2)[1:]
    y = np.repeat(cum, 2)[:-1]
    return x, y


def depth_chart(bid_px: np.ndarray, bid_cum: np.ndarray, ask_px: np.ndarray, ask_cum: np.ndarray,
                height: int = 300) -> hv.Overlay:
    """Cumulative depth: bids left of the mid in green, asks right in red."""
    bx, by = _steps(bid_px, bid_cum)
    ax, ay = _steps(ask_px, ask_cum)
    opts = dict(line_width=1.5, fill_alpha=0.25, tools=["hover"], height=height, **COMMON)
    bids = hv.Area((bx, by), "price", "cumulative size", label="bids").opts(color=BID, **opts)
    asks = hv.Area((ax, ay), "price", "cumulative size", label="asks").opts(color=ASK, **opts)
    return (bids * asks).opts(title="Depth", legend_position="top")


# ----------------------------------------------------------------------------- signals

def features_chart(sig: dict[str, np.ndarray], fills_ts: np.ndarray, fills_px: np.ndarray, fills_qty: np.ndarray,
                   threshold: float, max_spread_bps: float) -> hv.Layout:
    """Mid with fills, imbalance with the signal threshold, micro-price − mid, OFI, spread: linked in time."""
    ts, valid = sig["ts_recv"], sig["valid"]
    ts_v = ts[valid]
    mid = sig["mid"][valid]
    price = line(ts_v, mid, "price", TEXT, "mid", width=1.1).relabel("mid")
    if len(fills_ts):
        step = max(1, len(fills_ts) // 3000)
        ft, fp, fq = fills_ts[::step], fills_px[::step], fills_qty[::step]
        buys = hv.Scatter((_t(ft[fq > 0]), fp[fq > 0]), _time_dim(), "price", label="buy fills").opts(
            color=BID, marker="triangle", size=7, tools=["hover"])
        sells = hv.Scatter((_t(ft[fq < 0]), fp[fq < 0]), _time_dim(), "price", label="sell fills").opts(
            color=ASK, marker="inverted_triangle", size=7, tools=["hover"])
        price = price * buys * sells
    price = price.opts(hv.opts.Overlay(title="Mid and fills", legend_position="top_left"), hv.opts.Curve(height=200))
    imb = line(ts_v, sig["imbalance"][valid], "imbalance", ACCENT).opts(height=130, ylim=(-1.05, 1.05), yticks=[-1, -0.5, 0, 0.5, 1])
    imb = (imb * hv.HLine(threshold).opts(color=BID, line_dash="dashed", line_width=1)
           * hv.HLine(-threshold).opts(color=ASK, line_dash="dashed", line_width=1)).opts(title="Imbalance (±θ)")
    micro_bps = (sig["micro_price"][valid] - mid) / mid * 1e4
    micro = line(ts_v, micro_bps, "micro − mid (bps)", BLUE).opts(height=130, title="Micro-price − mid (bps)",
                                                                  yformatter="%.3g")
    ofi = line(ts_v, sig["ofi"][valid], "OFI", PURPLE).opts(height=130, title="Order-flow imbalance (best level)",
                                                            yformatter="%.3g")
    spread = (line(ts_v, sig["spread_bps"][valid], "spread (bps)", MUTED).opts(height=150, yformatter="%.3g")
              * hv.HLine(max_spread_bps).opts(color=ASK, line_dash="dotted", line_width=1)).opts(title="Spread (bps)")
    return _stack([price, imb, micro, ofi, spread])


# ----------------------------------------------------------------------------- performance

def equity_chart(ts: np.ndarray, equity: np.ndarray, position: np.ndarray) -> hv.Layout:
    """Cumulative P&L, its drawdown and the position, linked in time."""
    final = equity[-1] if len(equity) else 0.0
    pnl = line(ts, equity, "P&L", BID if final >= 0 else ASK, "cumulative P&L", width=1.6).opts(
        height=260, title="Cumulative P&L (equity, quote currency)")
    pnl = pnl * hv.HLine(0).opts(color=MUTED, line_width=1, line_dash="dotted")
    x, dd = prep.minmax_downsample(ts, -prep.drawdown(equity), LINE_BINS)
    ddc = hv.Area((_t(x), dd), _time_dim(), hv.Dimension("drawdown")).opts(
        color=ASK, fill_alpha=0.3, line_width=1, height=120, title="Drawdown", yticks=3, **COMMON)
    pos = line(ts, position, "position", ACCENT).opts(height=130, title="Position (base units)", yticks=3,
                                                      interpolation="steps-post", yformatter="%.4g")
    return _stack([pnl, ddc, pos])


# ----------------------------------------------------------------------------- arbitrage

def arb_bars(labels: Sequence[str], net_bps: Sequence[float]) -> hv.Bars:
    """The top episodes by max net bps."""
    return hv.Bars(list(zip(labels, net_bps)), hv.Dimension("episode"), hv.Dimension("max net bps")).opts(
        color=ACCENT, height=200, tools=["hover"], invert_axes=True, title="Top episodes: max net spread (bps)",
        **{k: v for k, v in COMMON.items() if k not in ("active_tools",)})


def net_spread_chart(ns: prep.NetSpread, name_ab: str, name_ba: str) -> hv.Overlay:
    """Net spread after fees of both directions over time; above zero is an opportunity."""
    ab = line(ns.ts, ns.buy_a_sell_b, "net bps", BID, width=1.1).relabel(name_ab)
    ba = line(ns.ts, ns.buy_b_sell_a, "net bps", BLUE, width=1.1).relabel(name_ba)
    zero = hv.HLine(0).opts(color=ACCENT, line_width=1, line_dash="dashed")
    return (ab * ba * zero).opts(hv.opts.Overlay(title="Net spread after fees (bps) per direction",
                                                 legend_position="bottom_left", height=300))


# ----------------------------------------------------------------------------- analytics

def price_volume_chart(ts: np.ndarray, price: np.ndarray, bins_t: np.ndarray, buy: np.ndarray, sell: np.ndarray,
                       bin_ns: int, price_label: str = "mid") -> hv.Layout:
    """Price above, traded volume per bin below (buys up in green, sells down in red)."""
    p = line(ts, price, "price", TEXT, price_label).opts(height=220, title=f"Price ({price_label})")
    if len(bins_t):
        x0, x1 = _t(bins_t), _t(bins_t + int(bin_ns * 0.9))
        dims = [_time_dim(), "volume", "bin end", "volume top"]
        up = hv.Rectangles((x0, np.zeros(len(buy)), x1, buy), dims, label="buys").opts(color=BID, line_width=0)
        down = hv.Rectangles((x0, -sell, x1, np.zeros(len(sell))), dims, label="sells").opts(color=ASK, line_width=0)
        vol = (up * down).opts(hv.opts.Rectangles(height=190, **COMMON)).opts(
            title=f"Traded volume per {_span_text(bin_ns)} (buys up, sells down)")
    else:
        vol = empty_chart("no trades recorded", 170)
    return _stack([p, vol])


def _span_text(ns: int) -> str:
    s = ns / prep.NS_PER_S
    if s < 60:
        return f"{s:g} s"
    if s < 3600:
        return f"{s / 60:g} min"
    return f"{s / 3600:g} h"


# ----------------------------------------------------------------------------- data quality

def rate_chart(series: Sequence[tuple[str, np.ndarray, np.ndarray, str]], events: Sequence[tuple[str, np.ndarray, str]],
               bin_ns: int) -> hv.Overlay:
    """Message rates per second with quality events as vertical lines."""
    layers = [hv.Curve((_t(t), r), _time_dim(), hv.Dimension("msg/s"), label=name).opts(
              color=color, line_width=1.2, interpolation="steps-post", **COMMON) for name, t, r, color in series]
    for kind, ts, color in events:
        if len(ts):
            layers.append(hv.VLines(_t(ts), kdims=[_time_dim()], label=kind).opts(color=color, line_width=1.5, line_dash="dashed"))
    return hv.Overlay(layers).opts(title=f"Message rate (per second, {_span_text(bin_ns)} bins) and events",
                                   legend_position="top_left", height=240)


def latency_chart(t: np.ndarray, pcts: np.ndarray, names: Sequence[str], bin_ns: int) -> hv.Overlay:
    """Exchange-to-local latency percentiles per time bin."""
    colors = [BID, ACCENT, ASK, PURPLE]
    layers = [hv.Curve((_t(t), pcts[k]), _time_dim(), hv.Dimension("latency (ms)"), label=n).opts(
              color=colors[k % len(colors)], line_width=1.2, **COMMON) for k, n in enumerate(names)]
    return hv.Overlay(layers).opts(title=f"Latency ts_recv − ts_event (ms, {_span_text(bin_ns)} bins)",
                                   legend_position="top_left", height=220)

