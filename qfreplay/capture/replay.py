"""A market that replays a raw journal (qfreplay or hftbacktest layout) with the simulator's API,
so that ``qfreplay exchange --replay FILE`` serves a real capture over the venue protocols.

The journal is run through the recorder's own feed; every change the feed makes to a book
becomes a depth update (a rebuild from a snapshot becomes the difference between the two
books), and trades are replayed as they were. Times are shifted to start at ``start_ns``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..book.orderbook import OrderBook
from ..errors import DataError
from ..instruments import Instrument
from ..simulate import DepthUpdate, Trade
from .feed import NullSink, make_feed
from .journal import read_header, read_journal


class _RecordingBook(OrderBook):
    """An order book that remembers what was done to it since the last :meth:`take`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list = []

    def load(self, *sides) -> None:
        super().load(*sides)
        self.log.append(None)

    def apply(self, bid_px, bid_sz, ask_px, ask_sz) -> None:
        super().apply(bid_px, bid_sz, ask_px, ask_sz)
        self.log.append((np.asarray(bid_px), np.asarray(bid_sz), np.asarray(ask_px), np.asarray(ask_sz)))


def _pairs(px, sz) -> list:
    return list(zip(np.asarray(px).tolist(), np.asarray(sz).tolist()))


def _difference(old: list, new: list) -> list:
    """Level updates turning ``old`` into ``new`` (absolute sizes, 0 removes)."""
    new_map = dict(new)
    out = [(p, 0.0) for p, _ in old if p not in new_map]
    old_map = dict(old)
    out += [(p, s) for p, s in new if old_map.get(p) != s]
    return out


class ReplayMarket:
    """Replay of one journal file; ``advance``/``book``/``ticker``/``now`` as in the simulator."""

    def __init__(self, path: str | Path, venue: str = "binance", symbol: Optional[str] = None, start_ns: Optional[int] = None):
        head = read_header(path)
        if head is not None:
            venue, symbols = head.meta["venue"], head.meta["symbols"]
        else:
            symbols = [symbol] if symbol else [self._first_symbol(path)]
        self.instruments = [Instrument(venue, Instrument.parse(f"{venue}:{s}").symbol) for s in symbols]
        self._events: list = []
        self._trades: dict[str, list] = {}

        replay = self

        class Sink(NullSink):
            def trade(self, inst, ts, t):
                replay._events.append(Trade(ts, inst.venue, inst.symbol, t.trade_id, t.price, t.size, t.side))

        feed = make_feed(venue, [i.symbol for i in self.instruments], 20, 0, Sink())
        published = {vs: ([], []) for vs in feed.books}
        for b in feed.books.values():
            b.book = _RecordingBook(20)
        first = None
        for rec in read_journal(path):
            first = rec.ts if first is None else first
            feed.feed(rec)
            for vs, b in feed.books.items():
                log, b.book.log = b.book.log, []
                if not log:
                    continue
                inst = feed.instruments[vs]
                old_b, old_a = published[vs]
                new_b, new_a = b.book.levels()
                if any(x is None for x in log):
                    bids, asks = _difference(old_b, new_b), _difference(old_a, new_a)
                else:
                    bids = [lv for bp, bs, _, _ in log for lv in _pairs(bp, bs)]
                    asks = [lv for _, _, ap, as_ in log for lv in _pairs(ap, as_)]
                published[vs] = (new_b, new_a)
                self._events.append(DepthUpdate(rec.ts, inst.venue, inst.symbol, bids, asks))
        if first is None or not self._events:
            raise DataError(f"raw journal {str(path)!r} holds no book data to replay")
        start = time.time_ns() if start_ns is None else start_ns
        shift = start - first
        self._events = sorted((dataclasses.replace(ev, ts=ev.ts + shift) for ev in self._events), key=lambda e: e.ts)
        self.now = start
        self._i = 0
        self._last: dict[tuple[str, str], list] = {}

    @staticmethod
    def _first_symbol(path) -> str:
        import orjson

        for rec in read_journal(path):
            if rec.tag == "" and b'"s":"' in rec.payload:
                try:
                    doc = orjson.loads(rec.payload)
                    return (doc.get("data") or doc)["s"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
        raise DataError(f"cannot tell the symbol of {str(path)!r}; pass it explicitly")

    def advance(self, until_ns: int) -> list:
        out = []
        while self._i < len(self._events) and self._events[self._i].ts <= until_ns:
            ev = self._events[self._i]
            self._i += 1
            if isinstance(ev, Trade):
                self._last.setdefault((ev.venue, ev.symbol), []).append(ev.price)
            out.append(ev)
        self.now = max(self.now, until_ns)
        return out

    def book(self, venue: str, symbol: str):
        return [], []  # the first replayed update builds the book

    def ticker(self, venue: str, symbol: str) -> dict:
        prices = self._last.get((venue, symbol)) or [float("nan")]
        last, first = prices[-1], prices[0]
        return {"last": last, "open": first, "high": max(prices), "low": min(prices), "volume": float("nan"),
                "quote_volume": float("nan"), "change_pct": (last / first - 1) * 100 if first == first else float("nan")}
