"""Turn one venue's journal records into dataset rows: decode (venues/) → sync (book/) → sink.

The recorder feeds records here as they arrive and ``normalize`` feeds the same records from the
journal, so both write the same rows. A feed never does I/O; what it needs from the network
(a REST snapshot, a resubscription) it asks of its :class:`Actions`, which the recorder carries out
and ``normalize`` ignores (the answers are in the journal already).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Protocol

import numpy as np

from ..book.sync import BinanceBookSync, BookRow, BookSync, CoinbaseBookSync
from ..instruments import Instrument, normalize_symbol, venue_symbol
from ..venues import binance, coinbase
from ..venues.common import BestQuote, Depth, Malformed, Ticker, Trade, VenueMessage, restricted_message, snippet
from .journal import Record

#: Diff frames of one book decoded and applied together by :meth:`BinanceFeed.feed_many`.
RUN_LENGTH = 1024


class Sink(Protocol):
    """Where a feed's output goes (the dataset writer, plus live-mode hooks).

    A sink may also have ``book_rows(inst, scalars, levels)`` (many rows as arrays, see
    :data:`qfreplay.book.sync.RowsSink`); rows then come in blocks where a feed can batch them.
    """

    def book_row(self, inst: Instrument, row: BookRow) -> None: ...
    def trade(self, inst: Instrument, ts_recv: int, t: Trade) -> None: ...
    def ticker(self, inst: Instrument, ts_recv: int, t: Ticker) -> None: ...
    def event(self, inst: Instrument, ts_recv: int, kind: str, detail: str) -> None: ...


class NullSink:
    """A sink that drops everything: subclass it and override only what you want to see."""

    def book_row(self, inst: Instrument, row: BookRow) -> None:
        pass

    def trade(self, inst: Instrument, ts_recv: int, t: Trade) -> None:
        pass

    def ticker(self, inst: Instrument, ts_recv: int, t: Ticker) -> None:
        pass

    def event(self, inst: Instrument, ts_recv: int, kind: str, detail: str) -> None:
        pass


class Actions:
    """Requests a feed makes of the network side; the default does nothing (normalize)."""

    def request_snapshot(self, symbol: str) -> None:  # venue symbol
        pass

    def resubscribe(self) -> None:
        pass


class Feed:
    """Base of the per-venue feeds: connection bookkeeping, events, trades and tickers."""

    sync_class: type[BookSync] = BookSync

    def __init__(self, venue: str, symbols: Iterable[str], levels: int, interval_ms: int, sink: Sink, actions: Optional[Actions] = None):
        self.venue = venue
        self.sink = sink
        self.actions = actions or Actions()
        self.levels, self.interval_ms = levels, interval_ms
        self.instruments: dict[str, Instrument] = {}  # venue symbol -> instrument
        self.books: dict[str, BookSync] = {}
        for s in symbols:
            inst = Instrument(venue, normalize_symbol(s))
            vs = venue_symbol(venue, inst.symbol)
            self.instruments[vs] = inst
            self.books[vs] = self.sync_class(
                vs, levels, interval_ms, self._row_sink(inst), self._event_sink(inst), self._request_snapshot, self._rows_sink(inst)
            )
        self.conn: Optional[int] = None
        self.session: Optional[str] = None
        self.messages = 0
        self.gaps = 0
        self.malformed = 0
        self.last_ts = 0
        self.on_quote: Optional[Callable[[int, BestQuote], None]] = None  # tests: venue-reported top of book

    # -- sinks

    def _row_sink(self, inst: Instrument):
        book_row = self.sink.book_row
        return lambda row: book_row(inst, row)

    def _rows_sink(self, inst: Instrument):
        book_rows = getattr(self.sink, "book_rows", None)
        return None if book_rows is None else lambda scalars, levels: book_rows(inst, scalars, levels)

    def _event_sink(self, inst: Instrument):
        event = self.sink.event

        def emit(ts: int, kind: str, detail: str) -> None:
            if kind == "gap":
                self.gaps += 1
            event(inst, ts, kind, detail)

        return emit

    def _request_snapshot(self, symbol: str) -> None:
        self.actions.request_snapshot(symbol)

    def event_all(self, ts: int, kind: str, detail: str) -> None:
        """An event that concerns every instrument of the connection."""
        if kind == "gap":
            self.gaps += 1
        for inst in self.instruments.values():
            self.sink.event(inst, ts, kind, detail)

    # -- records

    def feed(self, rec: Record) -> None:
        """Process one journal record."""
        self.last_ts = rec.ts
        tag = rec.tag
        if tag == "":
            self.messages += 1
            self.on_frame(rec.ts, rec.payload)
        elif tag == "rest":
            self.on_rest(rec.ts, rec.meta, rec.payload)
        elif tag == "connect":
            self.on_connect(rec.ts, rec.meta)
        elif tag == "disconnect":
            self.on_disconnect(rec.ts, rec.meta)
        elif tag == "event":
            self.event_all(rec.ts, rec.meta.get("kind", "error"), rec.meta.get("detail", ""))
        elif tag == "binary":
            self._malformed(rec.ts, f"unexpected binary frame of {len(rec.payload)} bytes")
        elif tag == "session":
            self.session = rec.meta.get("session")

    def feed_many(self, records: Iterable[Record]) -> int:
        """Process journal records in order (``normalize``); returns how many there were."""
        n = 0
        for rec in records:
            n += 1
            self.feed(rec)
        return n

    def tick(self, now_ns: int) -> None:
        """Emit every row whose interval has ended (live mode's timer; optional in normalize)."""
        for b in self.books.values():
            if b.cadence.due_at is not None and now_ns >= b.cadence.due_at:
                b.flush()

    def close(self) -> None:
        """End of the stream: emit pending rows."""
        for b in self.books.values():
            b.flush()

    def on_connect(self, ts: int, meta: dict) -> None:
        self.conn = meta.get("conn")
        self.event_all(ts, "connect", f"connected to {meta.get('url', '?')} (connection {self.conn})")

    def on_disconnect(self, ts: int, meta: dict) -> None:
        for b in self.books.values():
            b.desync()
        self.event_all(ts, "disconnect", f"connection {meta.get('conn', '?')} closed: {meta.get('reason', '?')}")
        self.conn = None

    def _malformed(self, ts: int, detail: str) -> None:
        self.malformed += 1
        self.event_all(ts, "malformed", detail)

    def handle(self, ts: int, msg) -> None:
        """One decoded message that is not book data."""
        if isinstance(msg, Trade):
            inst = self.instruments.get(msg.symbol)
            if inst is not None:
                self.sink.trade(inst, ts, msg)
        elif isinstance(msg, Ticker):
            inst = self.instruments.get(msg.symbol)
            if inst is not None:
                self.sink.ticker(inst, ts, msg)
        elif isinstance(msg, BestQuote):
            if self.on_quote is not None:
                self.on_quote(ts, msg)
        elif isinstance(msg, Malformed):
            self._malformed(ts, msg.detail)
        elif isinstance(msg, VenueMessage):
            self.event_all(ts, msg.kind, msg.detail)

    def _rest_failure(self, ts: int, meta: dict, body: bytes) -> bool:
        """Log a non-200 REST answer; True when there was one."""
        status = meta.get("status", 0)
        if status == 200:
            return False
        what = f"{meta.get('kind', 'rest')} {meta.get('url', '')}"
        if status in (418, 429):
            self.event_all(ts, "rate_limited", f"HTTP {status} on {what}; retrying after {meta.get('retry_after')} s")
        elif status == 451:
            self.event_all(ts, "error", restricted_message(meta.get("url", "")))
        elif status == 0:
            self.event_all(ts, "error", f"{what} failed: {snippet(body)}")
        else:
            self.event_all(ts, "error", f"HTTP {status} on {what}: {binance.error_text(body)}")
        return True

    def on_frame(self, ts: int, payload: bytes) -> None:
        raise NotImplementedError

    def on_rest(self, ts: int, meta: dict, body: bytes) -> None:
        self._rest_failure(ts, meta, body)


class BinanceFeed(Feed):
    """binance / binanceus: combined diff-depth, trade and 24 h ticker streams + REST snapshots."""

    sync_class = BinanceBookSync

    def on_connect(self, ts: int, meta: dict) -> None:
        for b in self.books.values():
            b.reset()
        super().on_connect(ts, meta)
        for vs in self.books:
            self.actions.request_snapshot(vs)

    def on_frame(self, ts: int, payload: bytes) -> None:
        if payload[:15] == b'{"lastUpdateId"' and len(self.books) == 1:
            # hftbacktest's collector journals the REST snapshot as a bare line of its one-symbol file
            self._snapshot(ts, next(iter(self.books)), payload)
            return
        self._messages(ts, binance.decode(payload))

    def _messages(self, ts: int, msgs: list) -> None:
        for msg in msgs:
            if isinstance(msg, Depth):
                book = self.books.get(msg.symbol)
                if book is not None:
                    book.on_diff(ts, msg)
            else:
                self.handle(ts, msg)

    def feed_many(self, records: Iterable[Record]) -> int:
        """:meth:`feed` of every record, with the diff frames of each book gathered into runs
        that are decoded and applied in one go (:meth:`BinanceBookSync.on_diffs`).

        Same rows and events: the gathered frames are applied before any record that could touch
        a book or log an event; trades and tickers (their own tables) pass them. Needs a sink
        with ``book_rows``.
        """
        if getattr(self.sink, "book_rows", None) is None or self.on_quote is not None:
            return super().feed_many(records)
        pending: list[tuple[int, bytes, binance.DepthUpdateRaw]] = []  # diff frames in arrival order
        n = 0
        for rec in records:
            n += 1
            if rec.tag == "":
                payload = rec.payload
                if binance.is_depth_frame(payload):
                    d = binance.depth_event(payload)
                    if d is not None and d.s in self.books:
                        self.last_ts = rec.ts
                        self.messages += 1
                        pending.append((rec.ts, payload, d))
                        if len(pending) >= RUN_LENGTH:
                            self._apply_pending(pending)
                        continue
                elif payload[:15] != b'{"lastUpdateId"':
                    msgs = binance.decode(payload)
                    if not all(isinstance(m, (Trade, Ticker, BestQuote)) for m in msgs):
                        self._apply_pending(pending)
                    self.last_ts = rec.ts
                    self.messages += 1
                    self._messages(rec.ts, msgs)
                    continue
            self._apply_pending(pending)
            self.feed(rec)
        self._apply_pending(pending)
        return n

    def _apply_pending(self, pending: list) -> None:
        """Apply the gathered diff frames (one run per book) and forget them."""
        if not pending:
            return
        frames: dict[str, list] = {}
        for item in pending:
            frames.setdefault(item[2].s, []).append(item)
        runs = {symbol: binance.depth_run([d for _, _, d in items]) for symbol, items in frames.items()}
        if any(run is None for run in runs.values()):
            # a level list the fast parser refuses (the slow one may call it malformed, an event
            # of every book): frame by frame in arrival order, as feed() does
            for ts, payload, _ in pending:
                self._messages(ts, binance.decode(payload))
        else:
            for symbol, run in runs.items():
                self.books[symbol].on_diffs(np.array([ts for ts, _, _ in frames[symbol]], np.int64), run)
        pending.clear()

    def on_rest(self, ts: int, meta: dict, body: bytes) -> None:
        if self._rest_failure(ts, meta, body):
            return
        if meta.get("conn") != self.conn:
            return  # answer to a request made on an earlier connection
        kind, symbol = meta.get("kind"), meta.get("symbol", "")
        if kind == "depth" and symbol in self.books:
            self._snapshot(ts, symbol, body)
        elif kind == "ticker":
            t = binance.decode_rest_ticker(body)
            self.handle(ts, t)

    def _snapshot(self, ts: int, symbol: str, body: bytes) -> None:
        snap = binance.decode_snapshot(body, symbol)
        if isinstance(snap, Malformed):
            self._malformed(ts, snap.detail)
            self.actions.request_snapshot(symbol)
            return
        self.books[symbol].on_snapshot(ts, snap)


class CoinbaseFeed(Feed):
    """coinbase: level2 + market_trades + ticker + heartbeats on one connection."""

    sync_class = CoinbaseBookSync

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected_seq: Optional[int] = None
        self.last_trade_id: dict[str, int] = {}

    def on_connect(self, ts: int, meta: dict) -> None:
        for b in self.books.values():
            b.desync()
        self.expected_seq = None
        super().on_connect(ts, meta)

    def on_disconnect(self, ts: int, meta: dict) -> None:
        self.expected_seq = None
        super().on_disconnect(ts, meta)

    def on_frame(self, ts: int, payload: bytes) -> None:
        frame = coinbase.decode(payload)
        seq = frame.sequence_num
        if seq >= 0:
            if self.expected_seq is not None and seq != self.expected_seq:
                self._gap(ts, f"sequence_num jumped from {self.expected_seq - 1} to {seq}")
            self.expected_seq = seq + 1
        for msg in frame.messages:
            if isinstance(msg, Depth):
                book = self.books.get(msg.symbol)
                if book is not None:
                    book.on_depth(ts, msg)
            elif isinstance(msg, Trade):
                last = self.last_trade_id.get(msg.symbol)
                if msg.history and (last is None or msg.trade_id <= last):
                    continue  # recent history re-sent on subscribe: keep only what we missed
                if last is None or msg.trade_id > last:
                    self.last_trade_id[msg.symbol] = msg.trade_id
                self.handle(ts, msg)
            else:
                self.handle(ts, msg)

    def _gap(self, ts: int, detail: str) -> None:
        for b in self.books.values():
            b.gaps += 1
            b.desync()
        self.event_all(ts, "gap", f"{detail}; resubscribing for fresh snapshots")
        self.actions.resubscribe()


FEEDS: dict[str, type[Feed]] = {"binance": BinanceFeed, "binanceus": BinanceFeed, "coinbase": CoinbaseFeed}


def make_feed(venue: str, symbols: Iterable[str], levels: int, interval_ms: int, sink: Sink, actions: Optional[Actions] = None) -> Feed:
    """The feed class of ``venue`` set up for ``symbols`` (normalized or venue spelling)."""
    return FEEDS[venue](venue, symbols, levels, interval_ms, sink, actions)
