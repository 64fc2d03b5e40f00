"""Parse ``[["price","size"], ...]`` level lists straight from JSON bytes (numba).

Binance sends every price and size as a decimal string; turning them into Python floats one by
one costs more than everything else the recorder does with a message. Each number is parsed as
an integer mantissa ``m`` and ``e`` decimal places, then ``m / 10**e``: with ``m < 2**53`` and
``e ≤ 22`` both are exact doubles, so the one division is correctly rounded and the result is
bit-identical to ``float(text)``. Anything else (exponents, signs, long mantissas) reports
failure and the caller falls back to msgspec.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0**i for i in range(23)])
_MAX_EXACT = 2**53


@njit(cache=True, nogil=True)
def parse_levels(buf, pow10):
    """(prices, sizes, ok) from the bytes of a JSON array of ``["p","q"]`` string pairs."""
    cap = buf.shape[0] // 10 + 1  # a pair takes at least ten bytes: ["1","2"],
    px = np.empty(cap)
    sz = np.empty(cap)
    i = 0
    k = 0
    length = buf.shape[0]
    while i < length:
        if buf[i] != 34:
            i += 1
            continue
        i += 1
        m = 0
        e = 0
        digits = 0
        zeros = 0  # trailing zeros after the point, not yet taken into m
        dot = False
        while i < length and buf[i] != 34:
            c = buf[i]
            if c == 48 and dot:
                zeros += 1
                digits += 1
            elif 48 <= c <= 57:
                for _ in range(zeros):
                    m = m * 10
                m = m * 10 + (c - 48)
                digits += 1
                if dot:
                    e += zeros + 1
                zeros = 0
                if m >= 9007199254740992:
                    return px, sz, False
            elif c == 46 and not dot:  # '.'
                dot = True
            else:
                return px, sz, False
            i += 1
        i += 1
        if digits == 0 or e > 22:
            return px, sz, False
        v = m / pow10[e]
        if k % 2 == 0:
            px[k // 2] = v
        else:
            sz[k // 2] = v
        k += 1
    return px[: k // 2], sz[: k // 2], k % 2 == 0


def levels_from_json(raw) -> tuple[np.ndarray, np.ndarray] | None:
    """Prices and sizes of a raw JSON level list, or None when it needs the slow path."""
    px, sz, ok = parse_levels(np.frombuffer(raw, np.uint8), _POW10)
    return (px, sz) if ok else None


@njit(cache=True, nogil=True)
def parse_two(buf_a, buf_b, pow10):
    """:func:`parse_levels` of two lists in one call (bids and asks of one message)."""
    ap, asz, ok_a = parse_levels(buf_a, pow10)
    bp, bsz, ok_b = parse_levels(buf_b, pow10)
    return ap, asz, bp, bsz, ok_a and ok_b


def sides_from_json(raw_bids, raw_asks):
    """(bid_px, bid_sz, ask_px, ask_sz) of two raw JSON level lists, or None for the slow path."""
    bp, bs, ap, as_, ok = parse_two(np.frombuffer(raw_bids, np.uint8), np.frombuffer(raw_asks, np.uint8), _POW10)
    return (bp, bs, ap, as_) if ok else None
