"""Local L2 order book: per side a short sorted array of the levels near the touch plus a hash
map of the rest.

Updates near the touch (almost all of them) shift a few elements of a small array; updates far
from it are O(1) hash-map writes; top-N is a reversed slice, and no dict is ever sorted on a
snapshot. When the near part runs low (the price moved through it) it is refilled with the best
far levels. All of it runs in numba kernels over plain numpy arrays and a typed dict.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

_NAN = np.nan
_FLOAT = types.float64


@njit(cache=True, nogil=True)
def _is_better(a, b, is_bid):
    return a > b if is_bid else a < b


@njit(cache=True, nogil=True)
def _refill(px, sz, n, far, want, is_bid):
    """Move the best ``want - n`` far levels into the near array (they are all worse than it)."""
    m = len(far)
    if m == 0:
        return n
    keys = np.empty(m)
    i = 0
    for k in far.keys():
        keys[i] = k
        i += 1
    take = min(want - n, m, px.shape[0] - n)
    if take <= 0:
        return n
    if take < m:  # only the best ``take`` keys need sorting
        keys = np.partition(keys, m - take)[m - take :] if is_bid else np.partition(keys, take - 1)[:take]
        m = take
    keys.sort()  # ascending
    # shift the near part up by ``take`` and put the taken ones (worst first) below it
    for j in range(n - 1, -1, -1):
        px[j + take] = px[j]
        sz[j + take] = sz[j]
    for j in range(take):
        # bids: best far = largest keys; near is ascending with the best at the end
        k = keys[m - take + j] if is_bid else keys[take - 1 - j]
        px[j] = k
        sz[j] = far.pop(k)
    return n + take


@njit(cache=True, nogil=True)
def _apply_side(px, sz, n, far, prices, sizes, is_bid, low, high):
    """Set absolute sizes (0 removes) of ``prices`` on one side; returns the new near count.

    The near array ``px[:n]`` is sorted worst → best (ascending for bids, descending for asks);
    every far price is worse than ``px[0]``.
    """
    for k in range(prices.shape[0]):
        p = prices[k]
        s = sizes[k]
        if n == 0 and len(far) > 0:
            n = _refill(px, sz, n, far, high // 2, is_bid)
        if n > 0 and _is_better(px[0], p, is_bid):  # worse than every near level: far
            if s > 0.0:
                far[p] = s
            elif p in far:
                far.pop(p)
            continue
        lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) >> 1
            if _is_better(p, px[mid], is_bid):
                lo = mid + 1
            else:
                hi = mid
        found = lo < n and px[lo] == p
        if s > 0.0:
            if found:
                sz[lo] = s
            else:
                for j in range(n, lo, -1):
                    px[j] = px[j - 1]
                    sz[j] = sz[j - 1]
                px[lo] = p
                sz[lo] = s
                n += 1
                if n >= high:  # too many near levels: push the worse half to the far map
                    cut = n - high // 2
                    for j in range(cut):
                        far[px[j]] = sz[j]
                    for j in range(cut, n):
                        px[j - cut] = px[j]
                        sz[j - cut] = sz[j]
                    n -= cut
        elif found:
            for j in range(lo, n - 1):
                px[j] = px[j + 1]
                sz[j] = sz[j + 1]
            n -= 1
    if n < low and len(far) > 0:
        n = _refill(px, sz, n, far, high // 2, is_bid)
    return n


@njit(cache=True, nogil=True)
def apply_both(bpx, bsz, far_b, apx, asz, far_a, near, bid_px, bid_sz, ask_px, ask_sz, low, high):
    """Both sides in one call (one dispatch per message); ``near`` holds the two near counts and
    is updated in place. Returns True when the book is crossed afterwards."""
    if bid_px.shape[0]:
        near[0] = _apply_side(bpx, bsz, near[0], far_b, bid_px, bid_sz, True, low, high)
    if ask_px.shape[0]:
        near[1] = _apply_side(apx, asz, near[1], far_a, ask_px, ask_sz, False, low, high)
    return near[0] > 0 and near[1] > 0 and bpx[near[0] - 1] >= apx[near[1] - 1]


@njit(cache=True, nogil=True)
def top_both(bpx, bsz, nb, apx, asz, na, out):
    """Rows 0..3 of ``out``: bid_px, bid_sz, ask_px, ask_sz of the best ``out.shape[1]`` levels."""
    _top(bpx, bsz, nb, out[0], out[1])
    _top(apx, asz, na, out[2], out[3])


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


def _f64(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) and a.dtype == np.float64 else np.asarray(a, np.float64)


def _new_far():
    return Dict.empty(_FLOAT, _FLOAT)


class OrderBook:
    """One instrument's full L2 book (absolute sizes per price).

    Args:
        levels: the most levels ever asked of :meth:`top`; the near part keeps at least
            ``max(near_min, 2 * levels)`` levels whenever the book has them.
        near_min: lower bound of the near part (small values exercise the far map in tests).
    """

    __slots__ = ("_px", "_sz", "_n", "_far", "_low", "_high")

    def __init__(self, levels: int = 50, near_min: int = 64):
        self._low = max(near_min, 2 * levels)
        self._high = 4 * self._low
        self._px = (np.empty(self._high + 1), np.empty(self._high + 1))
        self._sz = (np.empty(self._high + 1), np.empty(self._high + 1))
        self._n = np.zeros(2, np.int64)  # near counts (bids, asks), updated in place by the kernels
        self._far = (_new_far(), _new_far())

    def clear(self) -> None:
        self._n[:] = 0
        self._far = (_new_far(), _new_far())

    @property
    def max_top(self) -> int:
        """The most levels :meth:`top` (and :func:`top_both`) reads from the near part alone."""
        return self._low

    def kernel_args(self) -> tuple:
        """The book's state for compiled callers of :func:`apply_both` / :func:`top_both`:
        ``(bid px, bid sz, bid far, ask px, ask sz, ask far, near counts, low, high)``."""
        return (self._px[0], self._sz[0], self._far[0], self._px[1], self._sz[1], self._far[1], self._n, self._low, self._high)

    def load(self, bid_px, bid_sz, ask_px, ask_sz) -> None:
        """Replace the whole book with a snapshot (any order; zero sizes are dropped)."""
        self.clear()
        for side, px, sz in ((0, bid_px, bid_sz), (1, ask_px, ask_sz)):
            px = np.asarray(px, np.float64)
            if len(px) > self._high // 2:
                # bulk: the best levels go near, the rest straight into the far map
                sz = np.asarray(sz, np.float64)
                keep = sz > 0
                px, sz = px[keep], sz[keep]
                order = np.argsort(-px if side == 0 else px, kind="stable")
                px, sz = px[order], sz[order]
                near = self._high // 2
                self._apply(side, px[near:][::-1].copy(), sz[near:][::-1].copy())
                self._apply(side, px[:near][::-1].copy(), sz[:near][::-1].copy())
            else:
                self._apply(side, px, sz)

    def apply(self, bid_px, bid_sz, ask_px, ask_sz) -> None:
        """Apply absolute level sizes (float64 arrays) to both sides."""
        px, sz, far = self._px, self._sz, self._far
        apply_both(
            px[0], sz[0], far[0], px[1], sz[1], far[1], self._n,
            _f64(bid_px), _f64(bid_sz), _f64(ask_px), _f64(ask_sz), self._low, self._high,
        )

    def _apply(self, side: int, prices, sizes) -> None:
        self._n[side] = _apply_side(
            self._px[side], self._sz[side], self._n[side], self._far[side],
            np.asarray(prices, np.float64), np.asarray(sizes, np.float64), side == 0, self._low, self._high,
        )

    def top(self, n: int, out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None):
        """The best ``n`` levels as (bid_px, bid_sz, ask_px, ask_sz), level 0 best, NaN/0 padded."""
        if out is None and n <= self._low:
            block = np.empty((4, n))
            top_both(self._px[0], self._sz[0], self._n[0], self._px[1], self._sz[1], self._n[1], block)
            return block[0], block[1], block[2], block[3]
        if out is None:
            out = (np.empty(n), np.empty(n), np.empty(n), np.empty(n))
        if n > self._low:
            bids, asks = self.levels()
            for (px, sz), levels in (((out[0], out[1]), bids), ((out[2], out[3]), asks)):
                px[:] = _NAN
                sz[:] = 0.0
                k = min(n, len(levels))
                if k:
                    a = np.array(levels[:k])
                    px[:k], sz[:k] = a[:, 0], a[:, 1]
            return out
        _top(self._px[0], self._sz[0], self._n[0], out[0], out[1])
        _top(self._px[1], self._sz[1], self._n[1], out[2], out[3])
        return out

    @property
    def best_bid(self) -> float:
        n = self._n[0]
        return float(self._px[0][n - 1]) if n else _NAN

    @property
    def best_ask(self) -> float:
        n = self._n[1]
        return float(self._px[1][n - 1]) if n else _NAN

    @property
    def crossed(self) -> bool:
        """Best bid ≥ best ask (both sides present)."""
        nb, na = self._n
        return nb > 0 and na > 0 and self._px[0][nb - 1] >= self._px[1][na - 1]

    def depth(self) -> tuple[int, int]:
        """Number of bid and ask levels held."""
        return int(self._n[0]) + len(self._far[0]), int(self._n[1]) + len(self._far[1])

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Every level, bids descending and asks ascending (for tests and REST snapshots)."""
        out = []
        for side in (0, 1):
            n = int(self._n[side])
            near = list(zip(self._px[side][:n][::-1].tolist(), self._sz[side][:n][::-1].tolist()))
            far = sorted(self._far[side].items(), reverse=(side == 0))
            out.append(near + far)
        return out[0], out[1]
