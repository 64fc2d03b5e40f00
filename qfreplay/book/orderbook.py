"""Local L2 order book: per side a sorted price array with the best level at the end.

Updates near the top of the book (almost all of them) shift only a few elements, top-N is a
reversed slice, and no dict is ever sorted. The numba kernels work on plain numpy arrays; the
:class:`OrderBook` wrapper grows them when a side fills up.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_NAN = np.nan


@njit(cache=True, nogil=True)
def _apply_side(px, sz, n, prices, sizes, is_bid):
    """Set absolute sizes (0 removes) of ``prices`` on one side; returns (count, levels applied).

    Fewer levels than given are applied only when the arrays are full: grow them and resume.

    Bids are stored ascending and asks descending, so the best level is always ``px[n - 1]``.
    """
    cap = px.shape[0]
    for k in range(prices.shape[0]):
        p = prices[k]
        s = sizes[k]
        # binary search for p in the sorted part px[:n] (ascending for bids, descending for asks)
        lo = 0
        hi = n
        if is_bid:
            while lo < hi:
                mid = (lo + hi) >> 1
                if px[mid] < p:
                    lo = mid + 1
                else:
                    hi = mid
        else:
            while lo < hi:
                mid = (lo + hi) >> 1
                if px[mid] > p:
                    lo = mid + 1
                else:
                    hi = mid
        found = lo < n and px[lo] == p
        if s > 0.0:
            if found:
                sz[lo] = s
            else:
                if n == cap:
                    return n, k  # full: the caller grows the arrays and resumes at level k
                for j in range(n, lo, -1):
                    px[j] = px[j - 1]
                    sz[j] = sz[j - 1]
                px[lo] = p
                sz[lo] = s
                n += 1
        elif found:
            for j in range(lo, n - 1):
                px[j] = px[j + 1]
                sz[j] = sz[j + 1]
            n -= 1
    return n, prices.shape[0]


@njit(cache=True, nogil=True)
def _top(px, sz, n, out_px, out_sz):
    """Copy the best ``len(out_px)`` levels (best first); missing levels are NaN / 0."""
    m = out_px.shape[0]
    for i in range(m):
        if i < n:
            out_px[i] = px[n - 1 - i]
            out_sz[i] = sz[n - 1 - i]
        else:
            out_px[i] = _NAN
            out_sz[i] = 0.0


class OrderBook:
    """One instrument's full L2 book (absolute sizes per price)."""

    __slots__ = ("_bpx", "_bsz", "_apx", "_asz", "_nb", "_na")

    def __init__(self, capacity: int = 1024):
        self._bpx = np.empty(capacity)
        self._bsz = np.empty(capacity)
        self._apx = np.empty(capacity)
        self._asz = np.empty(capacity)
        self._nb = 0
        self._na = 0

    def clear(self) -> None:
        self._nb = self._na = 0

    def load(self, bid_px, bid_sz, ask_px, ask_sz) -> None:
        """Replace the whole book with a snapshot (any order; zero sizes are dropped)."""
        self.clear()
        self.apply(bid_px, bid_sz, ask_px, ask_sz)

    def apply(self, bid_px, bid_sz, ask_px, ask_sz) -> None:
        """Apply absolute level sizes (float64 arrays) to both sides."""
        if len(bid_px):
            self._nb = self._apply(True, np.asarray(bid_px, np.float64), np.asarray(bid_sz, np.float64))
        if len(ask_px):
            self._na = self._apply(False, np.asarray(ask_px, np.float64), np.asarray(ask_sz, np.float64))

    def _apply(self, is_bid: bool, prices: np.ndarray, sizes: np.ndarray) -> int:
        while True:
            if is_bid:
                n, done = _apply_side(self._bpx, self._bsz, self._nb, prices, sizes, True)
                self._nb = n
            else:
                n, done = _apply_side(self._apx, self._asz, self._na, prices, sizes, False)
                self._na = n
            if done == len(prices):
                return n
            prices, sizes = prices[done:], sizes[done:]
            self._grow(is_bid)

    def _grow(self, is_bid: bool) -> None:
        if is_bid:
            cap = 2 * len(self._bpx)
            self._bpx = np.resize(self._bpx, cap)
            self._bsz = np.resize(self._bsz, cap)
        else:
            cap = 2 * len(self._apx)
            self._apx = np.resize(self._apx, cap)
            self._asz = np.resize(self._asz, cap)

    def top(self, n: int, out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None):
        """The best ``n`` levels as (bid_px, bid_sz, ask_px, ask_sz), level 0 best, NaN/0 padded."""
        if out is None:
            out = (np.empty(n), np.empty(n), np.empty(n), np.empty(n))
        _top(self._bpx, self._bsz, self._nb, out[0], out[1])
        _top(self._apx, self._asz, self._na, out[2], out[3])
        return out

    @property
    def best_bid(self) -> float:
        return float(self._bpx[self._nb - 1]) if self._nb else _NAN

    @property
    def best_ask(self) -> float:
        return float(self._apx[self._na - 1]) if self._na else _NAN

    @property
    def crossed(self) -> bool:
        """Best bid ≥ best ask (both sides present)."""
        return self._nb > 0 and self._na > 0 and self._bpx[self._nb - 1] >= self._apx[self._na - 1]

    def depth(self) -> tuple[int, int]:
        """Number of bid and ask levels held."""
        return self._nb, self._na

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Every level, bids descending and asks ascending (for tests and REST snapshots)."""
        bids = list(zip(self._bpx[: self._nb][::-1].tolist(), self._bsz[: self._nb][::-1].tolist()))
        asks = list(zip(self._apx[: self._na][::-1].tolist(), self._asz[: self._na][::-1].tolist()))
        return bids, asks
