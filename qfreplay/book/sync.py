"""Keeping one local book in step with a venue (SPEC section 3) and emitting its rows (section 2).

:class:`BookSync` owns an :class:`OrderBook`, the row cadence, the ``RESYNC`` flag and the
crossed-book check; :class:`BinanceBookSync` adds the documented snapshot + diff procedure with
``U``/``u`` gap detection, :class:`CoinbaseBookSync` the snapshot/update stream whose gaps are
detected per connection (by the feed, from ``sequence_num``).

Everything here is driven by ``(ts_recv, message)`` pairs only, so the live recorder and
``normalize`` over its journal produce the same rows.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from ..schema import FLAG_RESYNC
from ..venues.common import Depth
from .cadence import RowCadence
from .orderbook import OrderBook

#: Diffs kept while waiting for a snapshot; older ones are dropped (a refetch follows anyway).
MAX_BUFFER = 10_000


class BookRow(NamedTuple):
    """One emitted book row (SPEC section 2); level arrays are float64 of length N, best first."""

    ts_recv: int
    ts_event: int
    seq: int
    flags: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray


RowSink = Callable[[BookRow], None]
EventSink = Callable[[int, str, str], None]  # (ts_recv, kind, detail)


def _nothing(*_args) -> None:
    return None


class BookSync:
    """One instrument's book: apply messages, emit rows at the cadence, detect crossed books."""

    def __init__(
        self,
        symbol: str,
        levels: int,
        interval_ms: int,
        on_row: RowSink,
        on_event: EventSink,
        request_snapshot: Optional[Callable[[str], None]] = None,
    ):
        self.symbol = symbol
        self.levels = levels
        self.book = OrderBook()
        self.cadence = RowCadence(interval_ms)
        self.on_row = on_row
        self.on_event = on_event
        self.request_snapshot = request_snapshot or _nothing
        self.synced = False
        self.resync_flag = False
        self.last_ts_recv = 0
        self.last_ts_event = 0
        self.last_seq = 0
        self.rows = 0
        self.gaps = 0

    # -- rows

    def flush_due(self, now_ns: int) -> None:
        """Emit the pending row if its interval has ended by ``now_ns``."""
        if self.cadence.due_at is not None and now_ns >= self.cadence.due_at:
            self._emit()

    def flush(self) -> None:
        """Emit the pending row now (before a gap, a disconnect, or at the end of the stream)."""
        if self.cadence.due_at is not None:
            self._emit()

    def _emit(self) -> None:
        self.cadence.clear()
        bp, bs, ap, as_ = self.book.top(self.levels)
        flags = FLAG_RESYNC if self.resync_flag else 0
        self.resync_flag = False
        self.rows += 1
        self.on_row(BookRow(self.last_ts_recv, self.last_ts_event, self.last_seq, flags, bp, bs, ap, as_))

    def _applied(self, ts_recv: int, ts_event: int, seq: int) -> bool:
        """Bookkeeping after a message was applied; False (and a resync) if the book crossed."""
        if self.book.crossed:
            bid, ask = self.book.best_bid, self.book.best_ask
            self.cadence.clear()  # the pending state is crossed: never emit it
            self.on_event(ts_recv, "resync", f"{self.symbol}: crossed book (bid {bid:g} >= ask {ask:g}) at seq {seq}; rebuilding")
            self.desync()
            self.request_snapshot(self.symbol)
            return False
        self.last_ts_recv, self.last_ts_event, self.last_seq = ts_recv, ts_event, seq
        if self.cadence.mark(ts_recv):
            self._emit()
        return True

    def _loaded(self, ts_recv: int, detail: str) -> None:
        self.synced = True
        self.resync_flag = True
        self.on_event(ts_recv, "resync", f"{self.symbol}: {detail}")

    def desync(self) -> None:
        """Forget the book (after a gap or disconnect); rows stop until the next snapshot."""
        self.flush()
        self.synced = False
        self.book.clear()


class BinanceBookSync(BookSync):
    """Binance diff stream + REST snapshot, exactly as Binance documents it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer: list[Depth] = []
        self.book_id = 0

    def reset(self) -> None:
        """A new connection: drop the book and the buffer, wait for a snapshot."""
        self.desync()
        self.buffer = []

    def on_diff(self, ts_recv: int, d: Depth) -> None:
        self.flush_due(ts_recv)
        if not self.synced:
            self.buffer.append(d)
            if len(self.buffer) > MAX_BUFFER:
                del self.buffer[: len(self.buffer) - MAX_BUFFER]
            return
        if d.last_id <= self.book_id:
            return  # older than the book
        if d.first_id > self.book_id + 1:
            self.gaps += 1
            self.on_event(
                ts_recv, "gap", f"{self.symbol}: expected update id {self.book_id + 1}, got U={d.first_id} u={d.last_id}; rebuilding"
            )
            self.desync()
            self.buffer = [d]
            self.request_snapshot(self.symbol)
            return
        self.book.apply(d.bid_px, d.bid_sz, d.ask_px, d.ask_sz)
        self.book_id = d.last_id
        self._applied(ts_recv, d.ts_event, d.last_id)

    def on_snapshot(self, ts_recv: int, snap: Depth) -> None:
        self.flush_due(ts_recv)
        if self.synced:
            return  # a late duplicate: the book is already good
        last_id = snap.last_id
        if self.buffer and last_id < self.buffer[0].first_id:
            self.on_event(
                ts_recv, "resync", f"{self.symbol}: snapshot lastUpdateId {last_id} is older than the first buffered U={self.buffer[0].first_id}; refetching"
            )
            self.request_snapshot(self.symbol)
            return
        newer = [d for d in self.buffer if d.last_id > last_id]
        self.book.load(snap.bid_px, snap.bid_sz, snap.ask_px, snap.ask_sz)
        book_id, ts_event = last_id, ts_recv  # REST snapshots carry no event time
        for i, d in enumerate(newer):
            if d.first_id > book_id + 1:  # the buffered stream itself has a hole after the snapshot
                self.gaps += 1
                self.on_event(ts_recv, "gap", f"{self.symbol}: expected update id {book_id + 1}, got U={d.first_id} u={d.last_id}; refetching")
                self.book.clear()
                self.buffer = newer[i:]
                self.request_snapshot(self.symbol)
                return
            self.book.apply(d.bid_px, d.bid_sz, d.ask_px, d.ask_sz)
            book_id, ts_event = d.last_id, d.ts_event
        self.buffer = []
        self.book_id = book_id
        self._loaded(ts_recv, f"book rebuilt from snapshot lastUpdateId={last_id} (+{len(newer)} buffered diffs)")
        self._applied(ts_recv, ts_event, book_id)


class CoinbaseBookSync(BookSync):
    """Coinbase level2: a snapshot replaces the book, updates set absolute sizes."""

    def on_depth(self, ts_recv: int, d: Depth) -> None:
        self.flush_due(ts_recv)
        if d.snapshot:
            self.book.load(d.bid_px, d.bid_sz, d.ask_px, d.ask_sz)
            nb, na = self.book.depth()
            self._loaded(ts_recv, f"book rebuilt from snapshot at sequence_num={d.last_id} ({nb} bids, {na} asks)")
        elif self.synced:
            self.book.apply(d.bid_px, d.bid_sz, d.ask_px, d.ask_sz)
        else:
            return  # waiting for a snapshot after a gap
        self._applied(ts_recv, d.ts_event, d.last_id)
