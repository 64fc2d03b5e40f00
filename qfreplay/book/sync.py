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
from numba import njit

from ..schema import FLAG_RESYNC
from ..venues.common import Depth, DepthRun
from .cadence import NO_ROW, RowCadence, row_due_at_nb
from .orderbook import OrderBook, apply_both, top_both

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
#: Many rows at once: ``scalars`` (rows, 4) int64 = ts_recv, ts_event, seq, flags; ``levels``
#: (rows, 4, N) float64 = bid_px, bid_sz, ask_px, ask_sz.
RowsSink = Callable[[np.ndarray, np.ndarray], None]
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
        on_rows: Optional[RowsSink] = None,
    ):
        self.symbol = symbol
        self.levels = levels
        self.book = OrderBook(levels)
        self.cadence = RowCadence(interval_ms)
        self.on_row = on_row
        self.on_rows = on_rows or self._rows_one_by_one
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

    def _rows_one_by_one(self, scalars: np.ndarray, levels: np.ndarray) -> None:
        for (ts_recv, ts_event, seq, flags), (bp, bs, ap, as_) in zip(scalars.tolist(), levels):
            self.on_row(BookRow(ts_recv, ts_event, seq, flags, bp, bs, ap, as_))

    def _crossed(self, ts_recv: int, seq: int) -> None:
        """The message just applied crossed the book: log it, drop the book, ask for a snapshot."""
        bid, ask = self.book.best_bid, self.book.best_ask
        self.cadence.clear()  # the pending state is crossed: never emit it
        self.on_event(ts_recv, "resync", f"{self.symbol}: crossed book (bid {bid:g} >= ask {ask:g}) at seq {seq}; rebuilding")
        self.desync()
        self.request_snapshot(self.symbol)

    def _applied(self, ts_recv: int, ts_event: int, seq: int) -> bool:
        """Bookkeeping after a message was applied; False (and a resync) if the book crossed."""
        if self.book.crossed:
            self._crossed(ts_recv, seq)
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


_RUN_DONE, _RUN_GAP, _RUN_CROSSED = 0, 1, 2


@njit(cache=True, nogil=True)
def _diff_run(bpx, bsz, far_b, apx, asz, far_a, near, low, high,
              ts_recv, first_id, last_id, ts_event, starts, px, sz, i, state, interval_ns, out_sc, out_lv):
    """:meth:`BinanceBookSync.on_diff` of a synced book for messages ``i``, ``i + 1``, ... of a run.

    ``state`` = [book_id, due_at (``NO_ROW``: none), last ts_recv, last ts_event, last seq,
    resync flag], read and written. Rows go to ``out_sc`` / ``out_lv`` (at most one a message).
    Stops at the end of the run, before a gap (``_RUN_GAP``) or after a message that crossed the
    book (``_RUN_CROSSED``, its ``book_id`` taken); Python handles those. Returns (i, status, rows).
    """
    book_id, due_at, last_recv, last_event, last_seq, resync = state[0], state[1], state[2], state[3], state[4], state[5]
    rows = 0
    status = _RUN_DONE
    k = ts_recv.shape[0]
    while i < k:
        ts = ts_recv[i]
        if due_at != NO_ROW and ts >= due_at:  # flush_due
            out_sc[rows, 0], out_sc[rows, 1], out_sc[rows, 2], out_sc[rows, 3] = last_recv, last_event, last_seq, FLAG_RESYNC if resync else 0
            top_both(bpx, bsz, near[0], apx, asz, near[1], out_lv[rows])
            resync = 0
            due_at = NO_ROW
            rows += 1
        if last_id[i] <= book_id:
            i += 1
            continue  # older than the book
        if first_id[i] > book_id + 1:
            status = _RUN_GAP
            break
        b, a, end = starts[2 * i], starts[2 * i + 1], starts[2 * i + 2]
        crossed = apply_both(bpx, bsz, far_b, apx, asz, far_a, near, px[b:a], sz[b:a], px[a:end], sz[a:end], low, high)
        book_id = last_id[i]
        if crossed:
            status = _RUN_CROSSED
            break
        last_recv, last_event, last_seq = ts, ts_event[i], last_id[i]
        if interval_ns == 0:  # RowCadence.mark: emit right away
            out_sc[rows, 0], out_sc[rows, 1], out_sc[rows, 2], out_sc[rows, 3] = last_recv, last_event, last_seq, FLAG_RESYNC if resync else 0
            top_both(bpx, bsz, near[0], apx, asz, near[1], out_lv[rows])
            resync = 0
            rows += 1
        elif due_at == NO_ROW:
            due_at = row_due_at_nb(ts, interval_ns)
        i += 1
    state[0], state[1], state[2], state[3], state[4], state[5] = book_id, due_at, last_recv, last_event, last_seq, resync
    return i, status, rows


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

    def on_diffs(self, ts_recv: np.ndarray, run: DepthRun) -> None:
        """:meth:`on_diff` of every message of ``run`` (``ts_recv``: int64, one each), the same
        rows and events, with the synced stretches applied by one compiled call."""
        i, k = 0, len(ts_recv)
        while i < k:
            if not self.synced or self.levels > self.book.max_top:
                self.on_diff(int(ts_recv[i]), run.depth(i))
                i += 1
                continue
            i, status = self._diff_run(ts_recv, run, i)
            if status == _RUN_GAP:
                self.on_diff(int(ts_recv[i]), run.depth(i))
                i += 1
            elif status == _RUN_CROSSED:
                self._crossed(int(ts_recv[i]), int(run.last_id[i]))
                i += 1

    def _diff_run(self, ts_recv: np.ndarray, run: DepthRun, i: int) -> tuple[int, int]:
        due_at = self.cadence.due_at
        state = np.array(
            [self.book_id, NO_ROW if due_at is None else due_at, self.last_ts_recv, self.last_ts_event, self.last_seq, self.resync_flag],
            np.int64,
        )
        out_sc = np.empty((len(ts_recv) - i, 4), np.int64)
        out_lv = np.empty((len(ts_recv) - i, 4, self.levels))
        i, status, rows = _diff_run(
            *self.book.kernel_args(), ts_recv, run.first_id, run.last_id, run.ts_event, run.starts, run.px, run.sz,
            i, state, self.cadence.interval_ns, out_sc, out_lv,
        )
        book_id, due_at, self.last_ts_recv, self.last_ts_event, self.last_seq, resync = state.tolist()
        self.book_id = book_id
        self.cadence.due_at = None if due_at == NO_ROW else due_at
        self.resync_flag = bool(resync)
        if rows:
            self.rows += rows
            self.on_rows(out_sc[:rows], out_lv[:rows])
        return i, status

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
