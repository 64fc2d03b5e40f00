"""Parse ``[["price","size"], ...]`` level lists straight from JSON bytes (numba).

Binance sends every price and size as a decimal string; turning them into Python floats one by
one costs more than everything else the recorder does with a message. Each number is parsed as
an integer mantissa ``m`` and ``e`` decimal places, then ``m / 10**e``: with ``m < 2**53`` and
``e ≤ 22`` both are exact doubles, so the one division is correctly rounded and the result is
bit-identical to ``float(text)`` (trailing zeros change neither: ``m·10^z / 10^(e+z)`` is the same
rational). Anything else (exponents, signs, long mantissas) reports failure and the caller falls
back to msgspec, which gives the same floats, only slower.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0**i for i in range(23)])
_MAX_EXACT = 2**53
_MAX_DIGITS = 18  # more digits could overflow int64 before the trailing zeros are stripped


@njit(cache=True, nogil=True)
def _parse_into(buf, pow10, px, sz, start):
    """Parse the pairs of ``buf`` into ``px[start:]``/``sz[start:]``; (pairs, ok)."""
    length = len(buf)
    i = 0
    k = 0
    while i < length:
        if buf[i] != 34:  # '"'
            i += 1
            continue
        i += 1
        m = 0
        first = i
        while i < length:  # integer part
            d = buf[i] - 48
            if d < 0 or d > 9:
                break
            m = m * 10 + d
            i += 1
        digits = i - first
        e = 0
        if i < length and buf[i] == 46:  # '.' and the fraction
            i += 1
            first = i
            while i < length:
                d = buf[i] - 48
                if d < 0 or d > 9:
                    break
                m = m * 10 + d
                i += 1
            e = i - first
            digits += e
        if i >= length or buf[i] != 34:  # anything but the closing quote: not a plain decimal
            return k // 2, False
        i += 1
        if digits == 0 or digits > _MAX_DIGITS:
            return k // 2, False
        while (m >= _MAX_EXACT or e > 22) and e > 0 and m % 10 == 0:
            m //= 10
            e -= 1
        if m >= _MAX_EXACT or e > 22:
            return k // 2, False
        v = m / pow10[e]
        if k % 2 == 0:
            px[start + k // 2] = v
        else:
            sz[start + k // 2] = v
        k += 1
    return k // 2, k % 2 == 0


@njit(cache=True, nogil=True)
def parse_levels(buf, pow10):
    """(prices, sizes, ok) from the bytes of a JSON array of ``["p","q"]`` string pairs."""
    cap = len(buf) // 10 + 1  # a pair takes at least ten bytes: ["1","2"],
    px = np.empty(cap)
    sz = np.empty(cap)
    n, ok = _parse_into(buf, pow10, px, sz, 0)
    return px[:n], sz[:n], ok


def levels_from_json(raw) -> tuple[np.ndarray, np.ndarray] | None:
    """Prices and sizes of a raw JSON level list, or None when it needs the slow path."""
    px, sz, ok = parse_levels(np.frombuffer(raw, np.uint8), _POW10)
    return (px, sz) if ok else None


@njit(cache=True, nogil=True)
def parse_two(buf_a, buf_b, pow10):
    """:func:`parse_levels` of two lists in one call (bids and asks of one message), in one
    allocation: the four arrays are rows of one ``(2, n)`` block."""
    cap_a = len(buf_a) // 10 + 1
    block = np.empty((2, cap_a + len(buf_b) // 10 + 1))
    na, ok_a = _parse_into(buf_a, pow10, block[0], block[1], 0)
    nb, ok_b = _parse_into(buf_b, pow10, block[0], block[1], cap_a)
    return block[0, :na], block[1, :na], block[0, cap_a : cap_a + nb], block[1, cap_a : cap_a + nb], ok_a and ok_b


def sides_from_json(raw_bids, raw_asks):
    """(bid_px, bid_sz, ask_px, ask_sz) of two raw JSON level lists (any buffer: bytes,
    ``msgspec.Raw``), or None for the slow path."""
    bp, bs, ap, as_, ok = parse_two(raw_bids, raw_asks, _POW10)
    return (bp, bs, ap, as_) if ok else None


@njit(cache=True, nogil=True)
def parse_lists(buf, lens, pow10):
    """Many level lists stored back to back in ``buf`` (list ``j`` is ``lens[j]`` bytes long), in
    one call: (px, sz, starts, ok) with list ``j``'s pairs at ``px/sz[starts[j]:starts[j+1]]``."""
    px = np.empty(len(buf) // 10 + len(lens))
    sz = np.empty(len(buf) // 10 + len(lens))
    starts = np.zeros(len(lens) + 1, np.int64)
    off = 0
    n = 0
    for j in range(len(lens)):
        count, ok = _parse_into(buf[off : off + lens[j]], pow10, px, sz, n)
        if not ok:
            return px[:0], sz[:0], starts, False
        n += count
        off += lens[j]
        starts[j + 1] = n
    return px[:n], sz[:n], starts, True


def lists_from_json(raws: list) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(px, sz, starts) of raw JSON level lists (:func:`parse_lists`), or None for the slow path."""
    lens = np.fromiter(map(len, raws), np.int64, len(raws))
    px, sz, starts, ok = parse_lists(np.frombuffer(b"".join(raws), np.uint8), lens, _POW10)
    return (px, sz, starts) if ok else None
