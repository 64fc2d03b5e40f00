"""Coinbase Advanced Trade public market data: subscriptions and decoding of every channel.

One connection carries ``level2`` (envelope channel ``l2_data``), ``market_trades``, ``ticker``
and ``heartbeats`` for all products; ``sequence_num`` counts every frame on the connection, so a
jump means a frame was lost and the books must be rebuilt from a fresh snapshot.
"""

from __future__ import annotations

from typing import Optional, Union

import msgspec
import numpy as np
import orjson

from .common import EMPTY, BestQuote, Depth, Malformed, Ticker, Trade, VenueMessage, iso_to_ns, snippet

VENUE_IDS = ("coinbase",)
CHANNELS = ("level2", "market_trades", "ticker", "heartbeats")
NAN = float("nan")


# ----------------------------------------------------------------------------- wire structs


class L2Update(msgspec.Struct):
    side: str
    price_level: float
    new_quantity: float


class L2Event(msgspec.Struct):
    type: str
    product_id: str
    updates: list[L2Update]


class MarketTrade(msgspec.Struct):
    product_id: str
    trade_id: int
    price: float
    size: float
    side: str


class TradesEvent(msgspec.Struct):
    type: str
    trades: list[MarketTrade]


class TickerItem(msgspec.Struct):
    product_id: str
    price: float = NAN
    volume_24_h: float = NAN
    low_24_h: float = NAN
    high_24_h: float = NAN
    price_percent_chg_24_h: float = NAN
    best_bid: float = NAN
    best_ask: float = NAN
    best_bid_quantity: float = NAN
    best_ask_quantity: float = NAN


class TickerEvent(msgspec.Struct):
    type: str
    tickers: list[TickerItem]


class Envelope(msgspec.Struct):
    channel: str = ""
    timestamp: str = ""
    sequence_num: int = -1
    events: msgspec.Raw = msgspec.Raw(b"[]")
    type: str = ""
    message: str = ""


_envelope = msgspec.json.Decoder(Envelope)
_l2 = msgspec.json.Decoder(list[L2Event], strict=False)
_trades = msgspec.json.Decoder(list[TradesEvent], strict=False)
_tickers = msgspec.json.Decoder(list[TickerEvent], strict=False)

Message = Union[Depth, Trade, Ticker, BestQuote, Malformed, VenueMessage]


class Frame(msgspec.Struct):
    """One decoded frame: its connection sequence number (-1 when absent) and messages."""

    sequence_num: int
    messages: list


# ----------------------------------------------------------------------------- subscriptions


def subscribe_messages(products: list[str], channels: tuple[str, ...] = CHANNELS, unsubscribe: bool = False) -> list[bytes]:
    """One ``subscribe`` (or ``unsubscribe``) request per channel, as Coinbase expects."""
    kind = "unsubscribe" if unsubscribe else "subscribe"
    return [orjson.dumps({"type": kind, "product_ids": list(products), "channel": ch}) for ch in channels]


# ----------------------------------------------------------------------------- decoding


def _l2_message(ev: L2Event, seq: int, ts_event: int) -> Depth:
    ups = ev.updates
    n = len(ups)
    if n == 0:
        return Depth(ev.product_id, ev.type == "snapshot", seq, seq, ts_event, EMPTY, EMPTY, EMPTY, EMPTY)
    px = np.fromiter((u.price_level for u in ups), np.float64, n)
    qty = np.fromiter((u.new_quantity for u in ups), np.float64, n)
    bid = np.fromiter((u.side == "bid" for u in ups), np.bool_, n)
    ask = ~bid
    return Depth(ev.product_id, ev.type == "snapshot", seq, seq, ts_event, px[bid], qty[bid], px[ask], qty[ask])


def decode(payload: bytes | str) -> Frame:
    """Decode one frame into normalized messages (Depth, Trade, Ticker, BestQuote, ...).

    ``market_trades`` snapshots (recent history sent on subscribe) are returned as trades too;
    the caller decides whether to keep them. Coinbase's ``side`` is the maker's side, so
    ``SELL`` means the buyer was the aggressor (+1).
    """
    try:
        env = _envelope.decode(payload)
        if env.type == "error" or (not env.channel and env.message):
            return Frame(env.sequence_num, [VenueMessage("error", f"coinbase error: {env.message or snippet(payload)}")])
        ch = env.channel
        if ch in ("heartbeats", "subscriptions", "candles", "status"):
            return Frame(env.sequence_num, [])
        if not ch:
            return Frame(env.sequence_num, [Malformed(f"no channel; frame: {snippet(payload)}")])
        ts_event = iso_to_ns(env.timestamp) if env.timestamp else 0
        seq = env.sequence_num
        out: list = []
        if ch == "l2_data":
            for ev in _l2.decode(env.events):
                out.append(_l2_message(ev, seq, ts_event))
        elif ch == "market_trades":
            for ev in _trades.decode(env.events):
                trades = ev.trades if ev.type != "snapshot" else sorted(ev.trades, key=lambda t: t.trade_id)
                for t in trades:
                    side = 1 if t.side == "SELL" else -1
                    out.append(Trade(t.product_id, ts_event, t.trade_id, t.price, t.size, side, ev.type == "snapshot"))
        elif ch == "ticker":
            for ev in _tickers.decode(env.events):
                for t in ev.tickers:
                    out.append(Ticker(t.product_id, ts_event, t.price, NAN, t.high_24_h, t.low_24_h, t.volume_24_h, NAN, t.price_percent_chg_24_h))
                    out.append(BestQuote(t.product_id, seq, t.best_bid, t.best_bid_quantity, t.best_ask, t.best_ask_quantity))
        return Frame(seq, out)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, IndexError) as exc:
        return Frame(-1, [Malformed(f"{exc}; frame: {snippet(payload)}")])


# ----------------------------------------------------------------------------- encoding (local exchange)


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x)) if abs(x) < 1e15 else repr(float(x))


def iso(ns: int) -> str:
    import datetime as dt

    secs, frac = divmod(int(ns), 1_000_000_000)
    return dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def encode_envelope(channel: str, ts_ns: int, seq: int, events: list) -> bytes:
    return orjson.dumps({"channel": channel, "client_id": "", "timestamp": iso(ts_ns), "sequence_num": seq, "events": events})


def encode_l2_event(kind: str, product: str, ts_ns: int, bids, asks) -> dict:
    t = iso(ts_ns)
    ups = [{"side": "bid", "event_time": t, "price_level": _num(p), "new_quantity": _num(s)} for p, s in bids]
    ups += [{"side": "offer", "event_time": t, "price_level": _num(p), "new_quantity": _num(s)} for p, s in asks]
    return {"type": kind, "product_id": product, "updates": ups}


def encode_trade_event(kind: str, trades: list[tuple[str, int, float, float, int, int]]) -> dict:
    """trades: (product, trade_id, price, size, aggressor side ±1, ts_ns)."""
    return {
        "type": kind,
        "trades": [
            {"product_id": p, "trade_id": str(i), "price": _num(px), "size": _num(sz), "side": "SELL" if side > 0 else "BUY", "time": iso(ts)}
            for p, i, px, sz, side, ts in trades
        ],
    }


def encode_ticker_event(kind: str, product: str, t: dict, best: Optional[tuple[float, float, float, float]] = None) -> dict:
    item = {
        "type": "ticker", "product_id": product, "price": _num(t["last"]), "volume_24_h": _num(t["volume"]),
        "low_24_h": _num(t["low"]), "high_24_h": _num(t["high"]), "price_percent_chg_24_h": _num(t["change_pct"]),
    }
    if best is not None:
        item.update(best_bid=_num(best[0]), best_bid_quantity=_num(best[1]), best_ask=_num(best[2]), best_ask_quantity=_num(best[3]))
    return {"type": kind, "tickers": [item]}
