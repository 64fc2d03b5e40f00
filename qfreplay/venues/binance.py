"""Binance spot (binance.com and binance.us): stream names, URLs, and decoding of every message.

Wire structs use the venue's own field names. Prices and sizes arrive as decimal strings and are
decoded straight to float by msgspec (``strict=False``).
"""

from __future__ import annotations

from typing import Iterable, Optional, Union

import msgspec
import numpy as np
import orjson

from .decimal import lists_from_json, sides_from_json
from .common import BestQuote, Depth, DepthRun, Malformed, Ticker, Trade, VenueMessage, levels_array, snippet

VENUE_IDS = ("binance", "binanceus")
SNAPSHOT_LIMIT = 1000  # levels a side in REST snapshots (weight 50 on binance.com)


# ----------------------------------------------------------------------------- wire structs


class DepthUpdate(msgspec.Struct):
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]


class DepthUpdateRaw(msgspec.Struct):
    """``depthUpdate`` with the level lists kept as raw JSON for the numba parser."""

    E: int
    s: str
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw


class TradeEvent(msgspec.Struct):
    E: int
    s: str
    t: int
    p: float
    q: float
    m: bool


class Ticker24hEvent(msgspec.Struct):
    E: int
    s: str
    c: float
    o: float
    h: float
    l: float  # noqa: E741 - the venue's name
    v: float
    q: float
    P: float


class BookTickerEvent(msgspec.Struct):
    u: int
    s: str
    b: float
    B: float
    a: float
    A: float


class DepthSnapshot(msgspec.Struct):
    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


class RestTicker(msgspec.Struct):
    symbol: str
    lastPrice: float
    openPrice: float
    highPrice: float
    lowPrice: float
    volume: float
    quoteVolume: float
    priceChangePercent: float
    closeTime: int


class _CombinedDepth(msgspec.Struct):
    stream: str
    data: DepthUpdateRaw


class _Head(msgspec.Struct):
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")
    e: str = ""
    code: Optional[int] = None
    msg: str = ""
    result: Optional[msgspec.Raw] = None
    id: Optional[int] = None


_head = msgspec.json.Decoder(_Head, strict=False)
_depth = msgspec.json.Decoder(DepthUpdate, strict=False)
_depth_raw = msgspec.json.Decoder(DepthUpdateRaw)
_combined_depth = msgspec.json.Decoder(_CombinedDepth)
_levels = msgspec.json.Decoder(list[tuple[float, float]], strict=False)
_trade = msgspec.json.Decoder(TradeEvent, strict=False)
_ticker = msgspec.json.Decoder(Ticker24hEvent, strict=False)
_book_ticker = msgspec.json.Decoder(BookTickerEvent, strict=False)
_snapshot = msgspec.json.Decoder(DepthSnapshot, strict=False)
_rest_ticker = msgspec.json.Decoder(RestTicker, strict=False)

Message = Union[Depth, Trade, Ticker, BestQuote, Malformed, VenueMessage]


# ----------------------------------------------------------------------------- URLs and subscriptions


def stream_names(symbols: Iterable[str], depth: bool = True, trades: bool = True, ticker: bool = True) -> list[str]:
    """Stream names for venue symbols (``BTCUSDT``): diff depth at 100 ms, trades, 24 h ticker."""
    out = []
    for s in symbols:
        s = s.lower()
        if depth:
            out.append(f"{s}@depth@100ms")
        if trades:
            out.append(f"{s}@trade")
        if ticker:
            out.append(f"{s}@ticker")
    return out


def combined_url(ws_base: str, streams: list[str]) -> str:
    """``<ws_base>/stream?streams=a/b/c`` (combined-stream envelopes ``{"stream", "data"}``)."""
    return f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"


def subscribe_message(streams: list[str], request_id: int = 1) -> bytes:
    """The live ``SUBSCRIBE`` request for more streams on an open connection."""
    return orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": request_id})


def depth_url(rest_base: str) -> str:
    return f"{rest_base.rstrip('/')}/api/v3/depth"


def depth_params(symbol: str, limit: int = SNAPSHOT_LIMIT) -> dict:
    return {"symbol": symbol, "limit": limit}


def ticker_url(rest_base: str) -> str:
    return f"{rest_base.rstrip('/')}/api/v3/ticker/24hr"


# ----------------------------------------------------------------------------- decoding


def is_depth_frame(payload: bytes) -> bool:
    """A combined-stream diff-depth frame (the hot path: decoded in one pass)."""
    return b"@depth" in payload[:48]


def depth_event(payload: bytes) -> Optional[DepthUpdateRaw]:
    """The diff event of a combined-stream depth frame, its levels still raw JSON; None when the
    frame does not decode (then :func:`decode` tells what is wrong with it)."""
    try:
        return _combined_depth.decode(payload).data
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def depth_message(d: DepthUpdateRaw) -> Depth:
    """One diff event as a :class:`Depth`."""
    sides = sides_from_json(d.b, d.a)
    if sides is None:
        sides = (*levels_array(_levels.decode(d.b)), *levels_array(_levels.decode(d.a)))
    return Depth(d.s, False, d.U, d.u, d.E * 1_000_000, *sides)


def depth_run(events: list[DepthUpdateRaw]) -> Optional[DepthRun]:
    """Diff events of one symbol as one :class:`DepthRun` (every level list parsed in one call);
    None when a list needs the slow path (then take them one by one with :func:`depth_message`)."""
    raws = []
    for d in events:
        raws.append(d.b)
        raws.append(d.a)
    levels = lists_from_json(raws)
    if levels is None:
        return None
    px, sz, starts = levels
    k = len(events)
    return DepthRun(
        events[0].s,
        np.fromiter([d.U for d in events], np.int64, k),
        np.fromiter([d.u for d in events], np.int64, k),
        np.fromiter([d.E * 1_000_000 for d in events], np.int64, k),
        starts,
        px,
        sz,
    )


def _decode_data(kind: str, data: bytes) -> Message:
    if kind == "depth":
        return depth_message(_depth_raw.decode(data))
    if kind == "trade":
        t = _trade.decode(data)
        return Trade(t.s, t.E * 1_000_000, t.t, t.p, t.q, -1 if t.m else 1)
    if kind == "ticker":
        t = _ticker.decode(data)
        return Ticker(t.s, t.E * 1_000_000, t.c, t.o, t.h, t.l, t.v, t.q, t.P)
    if kind == "bookTicker":
        t = _book_ticker.decode(data)
        return BestQuote(t.s, t.u, t.b, t.B, t.a, t.A)
    raise ValueError(f"unknown stream kind {kind!r}")


_STREAM_KIND = {"depth": "depth", "trade": "trade", "ticker": "ticker", "bookTicker": "bookTicker"}
_EVENT_KIND = {"depthUpdate": "depth", "trade": "trade", "24hrTicker": "ticker"}


def decode(payload: bytes | str) -> list[Message]:
    """Decode one WebSocket frame (raw or combined stream) into normalized messages.

    Subscription acks give nothing; error frames give a :class:`VenueMessage`; anything that does
    not decode gives a :class:`Malformed` naming what was wrong.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    try:
        if is_depth_frame(payload):
            return [depth_message(_combined_depth.decode(payload).data)]
        head = _head.decode(payload)
        if head.stream:
            kind = _STREAM_KIND.get(head.stream.split("@", 2)[1].split("_")[0] if "@" in head.stream else "")
            if kind is None:
                return []
            return [_decode_data(kind, head.data)]
        if head.e:
            kind = _EVENT_KIND.get(head.e)
            return [_decode_data(kind, payload)] if kind else []
        if head.code is not None:
            return [VenueMessage("error", f"binance error {head.code}: {head.msg}")]
        if head.id is not None:
            return []  # {"result": null, "id": n}: subscription ack
        return [_decode_data("bookTicker", payload)]
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, IndexError) as exc:
        return [Malformed(f"{exc}; frame: {snippet(payload)}")]


def decode_snapshot(body: bytes, symbol: str) -> Depth | Malformed:
    """A REST ``/api/v3/depth`` answer as a snapshot :class:`Depth` (``ts_event`` 0: none sent)."""
    try:
        s = _snapshot.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Malformed(f"depth snapshot of {symbol}: {exc}; body: {snippet(body)}")
    bp, bs = levels_array(s.bids)
    ap, as_ = levels_array(s.asks)
    return Depth(symbol, True, s.lastUpdateId, s.lastUpdateId, 0, bp, bs, ap, as_)


def decode_rest_ticker(body: bytes) -> Ticker | Malformed:
    """A REST ``/api/v3/ticker/24hr?symbol=`` answer as a :class:`Ticker`."""
    try:
        t = _rest_ticker.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Malformed(f"24hr ticker: {exc}; body: {snippet(body)}")
    return Ticker(t.symbol, t.closeTime * 1_000_000, t.lastPrice, t.openPrice, t.highPrice, t.lowPrice, t.volume, t.quoteVolume, t.priceChangePercent)


def error_text(body: bytes) -> str:
    """``msg`` of a Binance error body, or a snippet of it."""
    try:
        return str(orjson.loads(body).get("msg", snippet(body)))
    except (orjson.JSONDecodeError, AttributeError):
        return snippet(body)


# ----------------------------------------------------------------------------- encoding (local exchange)


def _fmt(x: float) -> str:
    return f"{x:.8f}"


def _encode_levels(levels: list[tuple[float, float]]) -> list[list[str]]:
    return [[_fmt(p), _fmt(s)] for p, s in levels]


def encode_depth(symbol: str, event_ms: int, first_id: int, last_id: int, bids, asks) -> dict:
    return {"e": "depthUpdate", "E": event_ms, "s": symbol, "U": first_id, "u": last_id, "b": _encode_levels(bids), "a": _encode_levels(asks)}


def encode_trade(symbol: str, event_ms: int, trade_id: int, price: float, size: float, buyer_maker: bool) -> dict:
    return {"e": "trade", "E": event_ms, "s": symbol, "t": trade_id, "p": _fmt(price), "q": _fmt(size), "T": event_ms, "m": buyer_maker, "M": True}


def encode_ticker(symbol: str, event_ms: int, t: dict) -> dict:
    last, opn = t["last"], t["open"]
    return {
        "e": "24hrTicker", "E": event_ms, "s": symbol, "p": _fmt(last - opn), "P": f"{t['change_pct']:.3f}",
        "c": _fmt(last), "o": _fmt(opn), "h": _fmt(t["high"]), "l": _fmt(t["low"]),
        "v": _fmt(t["volume"]), "q": _fmt(t["quote_volume"]),
    }


def encode_rest_ticker(symbol: str, close_ms: int, t: dict) -> dict:
    last, opn = t["last"], t["open"]
    return {
        "symbol": symbol, "priceChange": _fmt(last - opn), "priceChangePercent": f"{t['change_pct']:.3f}",
        "lastPrice": _fmt(last), "openPrice": _fmt(opn), "highPrice": _fmt(t["high"]), "lowPrice": _fmt(t["low"]),
        "volume": _fmt(t["volume"]), "quoteVolume": _fmt(t["quote_volume"]),
        "openTime": close_ms - 86_400_000, "closeTime": close_ms,
    }


def encode_snapshot(last_id: int, bids, asks) -> dict:
    return {"lastUpdateId": last_id, "bids": _encode_levels(bids), "asks": _encode_levels(asks)}
