"""What Binance and Coinbase share: normalized messages, timestamps, WebSocket and REST plumbing."""

from __future__ import annotations

import asyncio
import calendar
import random
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import numpy as np

#: Coinbase level2 snapshots are several MB in one frame; allow far more.
WS_MAX_SIZE = 64 * 2**20

EMPTY = np.zeros(0)


class Depth(NamedTuple):
    """Absolute level sizes (0 removes) for one symbol; a snapshot replaces the whole book.

    ``first_id``/``last_id`` are Binance ``U``/``u`` (a snapshot has ``first_id == last_id ==
    lastUpdateId``); on Coinbase both are the envelope ``sequence_num``.
    """

    symbol: str
    snapshot: bool
    first_id: int
    last_id: int
    ts_event: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


class DepthRun(NamedTuple):
    """Consecutive diffs of one symbol decoded together (``normalize``): message ``i`` sets the
    bids ``px/sz[starts[2i]:starts[2i+1]]`` and the asks ``px/sz[starts[2i+1]:starts[2i+2]]``."""

    symbol: str
    first_id: np.ndarray  # int64, one per message
    last_id: np.ndarray
    ts_event: np.ndarray
    starts: np.ndarray  # int64, 2 * messages + 1
    px: np.ndarray
    sz: np.ndarray

    def depth(self, i: int) -> Depth:
        """Message ``i`` as a :class:`Depth` (its level arrays are views of the run's)."""
        b, a, end = self.starts[2 * i : 2 * i + 3]
        return Depth(
            self.symbol, False, int(self.first_id[i]), int(self.last_id[i]), int(self.ts_event[i]),
            self.px[b:a], self.sz[b:a], self.px[a:end], self.sz[a:end],
        )


class Trade(NamedTuple):
    symbol: str
    ts_event: int
    trade_id: int
    price: float
    size: float
    side: int  # +1 buyer aggressor, -1 seller aggressor
    history: bool = False  # recent trade re-sent on subscribe (Coinbase market_trades snapshot)


class Ticker(NamedTuple):
    symbol: str
    ts_event: int
    last: float
    open: float
    high: float
    low: float
    volume: float
    quote_volume: float
    change_pct: float


class BestQuote(NamedTuple):
    """Top of book as the venue reports it (Binance bookTicker, Coinbase ticker); for checks."""

    symbol: str
    update_id: int
    bid_px: float
    bid_sz: float
    ask_px: float
    ask_sz: float


class Malformed(NamedTuple):
    """A frame we could not decode; logged and skipped."""

    detail: str


class VenueMessage(NamedTuple):
    """A venue-level notice (error frame, subscription ack we do not expect, ...)."""

    kind: str  # an events kind: 'error', ...
    detail: str


def levels_array(levels: list) -> tuple[np.ndarray, np.ndarray]:
    """``[[px, sz], ...]`` (already floats) to two float64 arrays."""
    if not levels:
        return EMPTY, EMPTY
    a = np.array(levels, dtype=np.float64)
    return a[:, 0], a[:, 1]


def snippet(payload: bytes | str, limit: int = 160) -> str:
    """A short printable excerpt of a frame for event details."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, (bytes, bytearray, memoryview)) else str(payload)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "…"


_SECONDS_CACHE: dict[str, int] = {}


def iso_to_ns(text: str) -> int:
    """``2026-08-09T21:05:48.483587501Z`` (any fraction length, Z or +00:00) to int ns UTC."""
    head = text[:19]
    secs = _SECONDS_CACHE.get(head)
    if secs is None:
        secs = calendar.timegm(
            (int(head[0:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]), int(head[14:16]), int(head[17:19]))
        )
        if len(_SECONDS_CACHE) > 100_000:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[head] = secs
    frac = 0
    if len(text) > 20 and text[19] == ".":
        end = 20
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[20:end][:9]
        frac = int(digits.ljust(9, "0")) if digits else 0
    return secs * 1_000_000_000 + frac


class Backoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**attempt))``."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: Optional[random.Random] = None):
        self.base, self.cap = base, cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class RestReply:
    """One REST answer as received (the journal keeps it verbatim)."""

    url: str
    status: int
    body: bytes
    retry_after: Optional[float]


def retry_after_seconds(headers: Any, default: float = 1.0) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (numeric form), else ``default``."""
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


def restricted_message(url: str) -> str:
    """The one-line explanation of HTTP 451 (restricted location); retrying cannot help."""
    return (
        f"{url} answered HTTP 451: the venue refuses connections from this location "
        "(binance.com blocks some countries; try venue 'binanceus' or another endpoint)"
    )


async def rest_get(client, url: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> RestReply:
    """GET ``url``; network failures become status 0 so that callers handle one type."""
    import httpx

    try:
        resp = await client.get(url, params=params, timeout=timeout)
    except (httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
        return RestReply(url, 0, f"{type(exc).__name__}: {exc}".encode(), None)
    retry = retry_after_seconds(resp.headers) if resp.status_code in (418, 429) else None
    return RestReply(str(resp.url), resp.status_code, resp.content, retry)
