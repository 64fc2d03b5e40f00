"""Data preparation for the app: plain numpy over result and dataset columns, no Panel, no I/O.

Everything here is small, vectorized and unit-tested; the charts only draw what these return.
Timestamps are int64 ns since the epoch (UTC) throughout.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NICE_BINS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
LATENCY_QUANTILES = (50.0, 90.0, 99.0, 99.9)


def as_datetime(ts: np.ndarray) -> np.ndarray:
    """int64 ns → ``datetime64[ns]`` without copying (what Bokeh puts on a datetime axis)."""
    return np.asarray(ts, dtype=np.int64).view("M8[ns]")


def nice_bin_ns(span_ns: int, target_bins: int) -> int:
    """The smallest round bin width (0.1 s … 1 day) that splits ``span_ns`` into at most ``target_bins``."""
    want = max(span_ns, 1) / max(target_bins, 1) / NS_PER_S
    for s in NICE_BINS_S:
        if s >= want:
            return int(s * NS_PER_S)
    return int(math.ceil(want / 86400) * 86400 * NS_PER_S)


def last_at_or_before(ts: np.ndarray, t: int) -> int:
    """Index of the last row with ts ≤ t, or −1 when there is none (ts sorted)."""
    return int(np.searchsorted(ts, t, side="right")) - 1


def window(ts: np.ndarray, start: Optional[int], end: Optional[int]) -> slice:
    """The slice of sorted ``ts`` with start ≤ ts < end (either bound may be None)."""
    lo = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, side="left"))
    return slice(lo, max(lo, hi))


# ----------------------------------------------------------------------------- downsampling

def minmax_downsample(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first, lowest, highest and last point of each of ``bins`` equal row buckets (M4).

    Peaks and troughs survive (a spread spike or a drawdown is never smoothed away) and a line
    drawn through the kept points is pixel-identical to the full one at ``bins`` pixels wide.
    NaN gaps (invalid rows) stay gaps where a whole bucket is NaN.
    """
    n = len(x)
    if n <= 4 * bins or bins < 1:
        return x, y
    k = -(-n // bins)
    nb = -(-n // k)
    pad = nb * k - n
    yy = np.asarray(y, dtype=np.float64)
    if pad:
        yy = np.concatenate([yy, np.full(pad, np.nan)])
    blocks = yy.reshape(nb, k)
    finite = np.isfinite(blocks)
    lo = np.where(finite, blocks, np.inf).argmin(axis=1)
    hi = np.where(finite, blocks, -np.inf).argmax(axis=1)
    base = np.arange(nb) * k
    last = np.minimum(base + k - 1, n - 1)
    keep = np.concatenate([base, base + lo, base + hi, last])
    keep = np.unique(np.minimum(keep, n - 1))
    return x[keep], y[keep]


# ----------------------------------------------------------------------------- order book

class Touch(NamedTuple):
    """Top of book and depth summary of one book row."""

    best_bid: float
    best_ask: float
    bid_size: float
    ask_size: float
    mid: float
    spread: float
    spread_bps: float
    imbalance: float
    valid: bool


def _present(px: np.ndarray, sz: np.ndarray) -> np.ndarray:
    return np.isfinite(px) & (sz > 0)


def valid_rows_mask(bid_px: np.ndarray, bid_sz: np.ndarray, ask_px: np.ndarray, ask_sz: np.ndarray) -> np.ndarray:
    """SPEC 4 validity of 2-D level arrays: both level-0 present and best bid < best ask."""
    b0, a0 = bid_px[:, 0], ask_px[:, 0]
    with np.errstate(invalid="ignore"):
        return _present(b0, bid_sz[:, 0]) & _present(a0, ask_sz[:, 0]) & (b0 < a0)


def touch(bid_px: np.ndarray, bid_sz: np.ndarray, ask_px: np.ndarray, ask_sz: np.ndarray, levels: int) -> Touch:
    """Best bid/ask, spread (price and bps) and the L-level volume imbalance of one row (SPEC 4)."""
    L = min(levels, len(bid_px))
    bv = float(np.where(_present(bid_px[:L], bid_sz[:L]), bid_sz[:L], 0.0).sum())
    av = float(np.where(_present(ask_px[:L], ask_sz[:L]), ask_sz[:L], 0.0).sum())
    bb, ba = float(bid_px[0]), float(ask_px[0])
    valid = bool(_present(bid_px[:1], bid_sz[:1])[0] and _present(ask_px[:1], ask_sz[:1])[0] and bb < ba)
    if not valid:
        return Touch(bb, ba, float(bid_sz[0]), float(ask_sz[0]), math.nan, math.nan, math.nan, math.nan, False)
    mid = (bb + ba) / 2
    imb = (bv - av) / (bv + av) if bv + av > 0 else 0.0
    return Touch(bb, ba, float(bid_sz[0]), float(ask_sz[0]), mid, ba - bb, (ba - bb) / mid * 1e4, imb, True)


def depth_curve(px: np.ndarray, sz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present levels of one side in book order: (price, size, cumulative size)."""
    ok = _present(px, sz)
    p, s = px[ok], sz[ok]
    return p, s, np.cumsum(s)


def price_band(mid: np.ndarray, depth_px: np.ndarray, q: float = 0.02, pad: float = 0.05) -> tuple[float, float]:
    """A price range for the heatmap: the central 1 − 2q of ``mid`` widened to hold ``depth_px``.

    ``mid`` is the touch over the window shown, ``depth_px`` the levels of the book at its end;
    short spikes (a dislocation) do not stretch the view, the visible book always fits.
    """
    mid = mid[np.isfinite(mid)]
    depth = depth_px[np.isfinite(depth_px)]
    both = [np.quantile(mid, [q, 1 - q])] if len(mid) else []
    if len(depth):
        both.append(np.array([depth.min(), depth.max()]))
    if not both:
        return (0.0, 1.0)
    lo, hi = float(min(b[0] for b in both)), float(max(b[1] for b in both))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lo - (hi - lo) * pad, hi + (hi - lo) * pad


class Grid(NamedTuple):
    """A liquidity heatmap: mean resting size per (time bin, price bin); NaN where nothing rests."""

    values: np.ndarray  # (price bins, time bins)
    t0: int
    t1: int
    p0: float
    p1: float


def liquidity_grid(ts: np.ndarray, bid_px: np.ndarray, bid_sz: np.ndarray, ask_px: np.ndarray, ask_sz: np.ndarray,
                   t_range: tuple[int, int], p_range: tuple[float, float], width: int = 600, height: int = 200,
                   rows_per_bin: int = 6) -> Grid:
    """Bin every level's size into a (height × width) price-by-time grid over the given ranges.

    Each cell is the size resting in that price bin averaged over the book rows of its time bin,
    so busy and quiet periods compare fairly. At most ``rows_per_bin`` × width rows are read
    (evenly strided), which bounds the cost whatever the zoom: a day of 100 ms rows re-bins in
    tens of milliseconds.
    """
    t0, t1 = int(t_range[0]), int(t_range[1])
    p0, p1 = float(p_range[0]), float(p_range[1])
    if t1 <= t0:
        t1 = t0 + 1
    if p1 <= p0:
        p1 = p0 + 1e-9
    sl = window(ts, t0, t1 + 1)
    idx = np.arange(sl.start, sl.stop)
    cap = rows_per_bin * width
    if len(idx) > cap:
        idx = idx[np.linspace(0, len(idx) - 1, cap).astype(np.int64)]
    grid = np.zeros(width * height)
    if len(idx) == 0:
        return Grid(np.full((height, width), np.nan), t0, t1, p0, p1)
    tb = np.minimum(((ts[idx] - t0) * (width / (t1 - t0))).astype(np.int64), width - 1)
    rows_in_bin = np.bincount(tb, minlength=width).astype(np.float64)
    for px, sz in ((bid_px, bid_sz), (ask_px, ask_sz)):
        p, s = px[idx], sz[idx]
        pb = np.floor((p - p0) * (height / (p1 - p0)))
        ok = np.isfinite(pb) & (pb >= 0) & (pb < height) & (s > 0)
        cells = tb[:, None] * height + np.where(ok, pb, 0).astype(np.int64)
        grid += np.bincount(cells[ok], weights=s[ok], minlength=width * height)
    grid = grid.reshape(width, height)
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = grid / rows_in_bin[:, None]
    grid[grid <= 0] = np.nan
    return Grid(grid.T, t0, t1, p0, p1)


# ----------------------------------------------------------------------------- 24 h statistics

def range_position(last: float, low: float, high: float) -> float:
    """Where ``last`` sits in [low, high] as 0…1 (clipped); NaN when the range is unknown or empty."""
    if not all(map(np.isfinite, (last, low, high))) or high <= low:
        return math.nan
    return float(min(1.0, max(0.0, (last - low) / (high - low))))


def change_24h(ts: np.ndarray, mid: np.ndarray, t: int) -> float:
    """Percent change of ``mid`` from 24 h before ``t`` to ``t`` (last valid values); NaN without 24 h of data."""
    ok = np.isfinite(mid)
    ts, mid = ts[ok], mid[ok]
    i = last_at_or_before(ts, t)
    j = last_at_or_before(ts, t - 86_400 * NS_PER_S)
    if i < 0 or j < 0:
        return math.nan
    return float((mid[i] / mid[j] - 1) * 100)


def volume_bars(ts: np.ndarray, size: np.ndarray, side: np.ndarray, bin_ns: int,
                t0: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traded base volume per time bin split by aggressor: (bin starts, buy volume, sell volume)."""
    if len(ts) == 0:
        z = np.zeros(0)
        return np.zeros(0, np.int64), z, z
    t0 = int(ts[0]) // bin_ns * bin_ns if t0 is None else t0
    b = (ts - t0) // bin_ns
    nb = int(b.max()) + 1
    buy = np.bincount(b, weights=np.where(side > 0, size, 0.0), minlength=nb)
    sell = np.bincount(b, weights=np.where(side < 0, size, 0.0), minlength=nb)
    return t0 + np.arange(nb, dtype=np.int64) * bin_ns, buy, sell


# ----------------------------------------------------------------------------- data quality

def latency_stats(ts_recv: np.ndarray, ts_event: np.ndarray,
                  quantiles: Sequence[float] = LATENCY_QUANTILES) -> dict[str, float]:
    """Exchange-to-local latency (ts_recv − ts_event) in ms: the percentiles, mean, min and max."""
    lat = (np.asarray(ts_recv, np.int64) - np.asarray(ts_event, np.int64)) / NS_PER_MS
    keys = [f"p{q:g}" for q in quantiles] + ["mean", "min", "max"]
    if len(lat) == 0:
        return {k: math.nan for k in keys}
    qs = np.percentile(lat, list(quantiles))
    out = {f"p{q:g}": float(v) for q, v in zip(quantiles, qs)}
    out.update(mean=float(lat.mean()), min=float(lat.min()), max=float(lat.max()))
    return out


def binned_percentiles(ts: np.ndarray, values: np.ndarray, bin_ns: int,
                       quantiles: Sequence[float] = (50.0, 99.0)) -> tuple[np.ndarray, np.ndarray]:
    """Per time bin percentiles of ``values`` (nearest rank): (bin starts, array (len(quantiles), bins)).

    One sort for all bins; bins without rows are NaN.
    """
    if len(ts) == 0:
        return np.zeros(0, np.int64), np.zeros((len(quantiles), 0))
    t0 = int(ts[0]) // bin_ns * bin_ns
    b = (np.asarray(ts, np.int64) - t0) // bin_ns
    nb = int(b.max()) + 1
    order = np.lexsort((values, b))
    sorted_vals = np.asarray(values, np.float64)[order]
    counts = np.bincount(b, minlength=nb)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full((len(quantiles), nb), np.nan)
    has = counts > 0
    for k, q in enumerate(quantiles):
        rank = np.ceil(q / 100 * counts[has]).astype(np.int64) - 1
        out[k, has] = sorted_vals[starts[has] + np.clip(rank, 0, counts[has] - 1)]
    return t0 + np.arange(nb, dtype=np.int64) * bin_ns, out


def rate_per_second(ts: np.ndarray, bin_ns: int, t0: Optional[int] = None,
                    t1: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Messages per second in each time bin between t0 and t1 (bins without messages count 0)."""
    if len(ts) == 0 and (t0 is None or t1 is None):
        return np.zeros(0, np.int64), np.zeros(0)
    t0 = (int(ts[0]) if t0 is None else t0) // bin_ns * bin_ns
    t1 = int(ts[-1]) if t1 is None else t1
    nb = max(1, int((t1 - t0) // bin_ns) + 1)
    b = (np.asarray(ts, np.int64) - t0) // bin_ns
    b = b[(b >= 0) & (b < nb)]
    counts = np.bincount(b, minlength=nb).astype(np.float64)
    return t0 + np.arange(nb, dtype=np.int64) * bin_ns, counts / (bin_ns / NS_PER_S)


def event_counts(kinds: Sequence[str], known: Sequence[str]) -> dict[str, int]:
    """How many events of each kind (every ``known`` kind present, 0 when absent)."""
    out = {k: 0 for k in known}
    for k in kinds:
        out[k] = out.get(k, 0) + 1
    return out


# ----------------------------------------------------------------------------- signals and P&L

def signal_changes(signal: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Indices of valid rows whose signal differs from the previous valid row's (the first counts if non-zero)."""
    idx = np.flatnonzero(valid)
    s = signal[idx]
    change = np.ones(len(s), bool)
    change[1:] = s[1:] != s[:-1]
    if len(s):
        change[0] = s[0] != 0
    return idx[change]


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fall of equity from its running peak (≥ 0; NaN stays NaN)."""
    eq = np.asarray(equity, np.float64)
    filled = np.where(np.isfinite(eq), eq, -np.inf)
    peak = np.maximum.accumulate(filled)
    return np.where(np.isfinite(eq), peak - eq, np.nan)


# ----------------------------------------------------------------------------- arbitrage

class NetSpread(NamedTuple):
    """Net spread (bps, after fees) of both directions on the pair's joint timeline (SPEC 5)."""

    ts: np.ndarray
    buy_a_sell_b: np.ndarray
    buy_b_sell_a: np.ndarray


def net_spread(ts_a: np.ndarray, bid_a: np.ndarray, ask_a: np.ndarray,
               ts_b: np.ndarray, bid_b: np.ndarray, ask_b: np.ndarray,
               fee_a: float, fee_b: float, max_staleness_ns: int) -> NetSpread:
    """SPEC 5 net_bps at every point of the union of both valid-row timelines, vectorized.

    Inputs are the *valid* rows of A and B (best bid/ask) in time order; fees are fractions
    (fee_bps + slippage_bps) / 10^4. A point where either side has no row yet, or its last row
    is older than ``max_staleness_ns``, is NaN in both directions (SPEC: skipped).
    """
    t = np.concatenate([ts_a, ts_b])
    t.sort(kind="stable")  # two sorted runs: a linear merge
    if len(t) > 1:
        t = t[np.concatenate([[True], t[1:] != t[:-1]])]  # equal times are one point
    ia = np.searchsorted(ts_a, t, side="right") - 1
    ib = np.searchsorted(ts_b, t, side="right") - 1
    ok = (ia >= 0) & (ib >= 0)
    ia0, ib0 = np.maximum(ia, 0), np.maximum(ib, 0)
    if len(ts_a) and len(ts_b):
        ok &= (t - ts_a[ia0] <= max_staleness_ns) & (t - ts_b[ib0] <= max_staleness_ns)
        ask_a_t, bid_a_t, ask_b_t, bid_b_t = ask_a[ia0], bid_a[ia0], ask_b[ib0], bid_b[ib0]
        with np.errstate(invalid="ignore", divide="ignore"):
            ab = (bid_b_t * (1 - fee_b) - ask_a_t * (1 + fee_a)) / ask_a_t * 1e4
            ba = (bid_a_t * (1 - fee_a) - ask_b_t * (1 + fee_b)) / ask_b_t * 1e4
    else:
        ab = ba = np.full(len(t), np.nan)
    return NetSpread(t, np.where(ok, ab, np.nan), np.where(ok, ba, np.nan))


def positive_runs(net: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each maximal run of net > 0 (NaN ends a run), as SPEC 5 episodes."""
    pos = np.concatenate([[False], np.nan_to_num(net, nan=-1.0) > 0, [False]])
    edges = np.flatnonzero(pos[1:] != pos[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]
