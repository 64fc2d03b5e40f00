"""The recorder: WebSocket + REST → raw journal → feed (book sync) → dataset rows, live.

:class:`Recorder` is an asyncio library object; ``qfreplay record`` and ``qfreplay live`` drive
it. Every frame is journaled *before* it is processed, and every decision the feed takes depends
only on journaled records, so ``normalize`` over the journal writes the same rows.

Hooks (called synchronously, at the moment the row is appended for Parquet):

- ``on_book_row(instrument, row)`` — every emitted :class:`~qfreplay.book.sync.BookRow`
- ``on_event(instrument, ts_recv, kind, detail)`` — every events-table row
- ``on_trade(instrument, ts_recv, trade)`` / ``on_ticker(instrument, ts_recv, ticker)``
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from ..book.sync import BookRow
from ..config import Config
from ..errors import ConfigError, VenueError
from ..instruments import Instrument, venue_symbol
from ..venues import binance, coinbase
from ..venues.common import WS_MAX_SIZE, Backoff, RestReply, Ticker, Trade, rest_get, restricted_message
from .feed import Actions, Feed, make_feed
from .journal import JournalWriter, Record
from .writer import DatasetWriter


class _Sink:
    """The dataset writer plus the live hooks, called at the same moment."""

    def __init__(self, writer: DatasetWriter, on_book_row=None, on_event=None, on_trade=None, on_ticker=None):
        self.writer = writer
        self.hooks = (on_book_row, on_event, on_trade, on_ticker)

    def book_row(self, inst: Instrument, row: BookRow) -> None:
        self.writer.book_row(inst, row)
        if self.hooks[0] is not None:
            self.hooks[0](inst, row)

    def event(self, inst: Instrument, ts: int, kind: str, detail: str) -> None:
        self.writer.event(inst, ts, kind, detail)
        if self.hooks[1] is not None:
            self.hooks[1](inst, ts, kind, detail)

    def trade(self, inst: Instrument, ts: int, t: Trade) -> None:
        self.writer.trade(inst, ts, t)
        if self.hooks[2] is not None:
            self.hooks[2](inst, ts, t)

    def ticker(self, inst: Instrument, ts: int, t: Ticker) -> None:
        self.writer.ticker(inst, ts, t)
        if self.hooks[3] is not None:
            self.hooks[3](inst, ts, t)


@dataclass
class VenueStatus:
    """One venue's live figures for the status line."""

    venue: str
    connected: bool
    messages: int
    rate: float  # messages per second over the last status interval
    in_sync: int
    books: int
    gaps: int
    reconnects: int


class _Venue(Actions):
    """One venue: its connection loop, REST fetches, journal and feed."""

    def __init__(self, rec: "Recorder", venue: str, instruments: list[Instrument]):
        self.rec, self.venue = rec, venue
        cfg = rec.config
        endpoints = cfg.venues.get(venue)
        if endpoints is None:
            raise ConfigError(f"config key 'venues.{venue}' is missing")
        self.ws_base, self.rest_base = endpoints.ws_url, endpoints.rest_url
        if venue != "coinbase" and not self.rest_base:
            raise ConfigError(f"config key 'venues.{venue}.rest_url' is required for book snapshots")
        self.symbols = [venue_symbol(venue, i.symbol) for i in instruments]
        levels, interval = cfg.record.levels, cfg.record.interval_ms
        self.feed: Feed = make_feed(venue, [i.symbol for i in instruments], levels, interval, rec.sink, self)
        self.journal: Optional[JournalWriter] = None
        if cfg.record.raw:
            header = {"venue": venue, "symbols": [i.symbol for i in instruments], "levels": levels, "interval_ms": interval, "session": rec.session}
            self.journal = JournalWriter(rec.out, venue, header)
        self.conn = 0
        self.ws = None
        self.connected = False
        self.reconnects = 0
        self.inflight: set[tuple[str, int]] = set()
        self.last_fetch: dict[str, float] = {}
        self.tasks: set[asyncio.Task] = set()
        self._counted = (0, time.monotonic())
        self.rate = 0.0

    # -- journal then feed: the one path every record takes

    def frame(self, payload) -> None:
        ts = self.rec.now()
        if self.journal is not None:
            self.journal.frame(ts, payload)
        if isinstance(payload, str):
            self.feed.feed(Record(ts, "", None, payload.encode()))
        else:
            self.feed.feed(Record(ts, "binary", None, bytes(payload)))

    def note(self, tag: str, meta: dict) -> None:
        ts = self.rec.now()
        if self.journal is not None:
            self.journal.note(ts, tag, meta)
        if tag == "connect":
            self.feed.on_connect(ts, meta)
        elif tag == "disconnect":
            self.feed.on_disconnect(ts, meta)
        elif tag == "event":
            self.feed.event_all(ts, meta["kind"], meta["detail"])

    def rest(self, meta: dict, reply: RestReply) -> None:
        ts = self.rec.now()
        if self.journal is not None:
            self.journal.rest(ts, meta, reply.body)
        self.feed.on_rest(ts, meta, reply.body)

    # -- Actions asked for by the feed

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.rec.fail(task.exception())

    def request_snapshot(self, symbol: str) -> None:
        key = (symbol, self.conn)
        if key in self.inflight or not self.connected:
            return
        self.inflight.add(key)
        self._spawn(self._fetch_snapshot(symbol, self.conn))

    def resubscribe(self) -> None:
        if self.ws is not None and self.venue == "coinbase":
            self._spawn(self._resubscribe(self.ws))

    async def _resubscribe(self, ws) -> None:
        try:
            for msg in coinbase.subscribe_messages(self.symbols, ("level2",), unsubscribe=True) + coinbase.subscribe_messages(self.symbols, ("level2",)):
                await ws.send(msg.decode())
        except Exception:  # the connection loop notices a dead connection by itself
            pass

    async def _fetch_snapshot(self, symbol: str, conn: int) -> None:
        key = (symbol, conn)
        backoff = Backoff(0.25, 10.0, self.rec.rng)
        try:
            since = time.monotonic() - self.last_fetch.get(symbol, -1e9)
            if since < 1.0:  # a refetch right after a stale snapshot: give the stream a moment
                await asyncio.sleep(0.2)
            while self.conn == conn and self.connected and not self.rec.stopping:
                self.last_fetch[symbol] = time.monotonic()
                reply = await rest_get(self.rec.http, binance.depth_url(self.rest_base), binance.depth_params(symbol))
                meta = {"conn": conn, "symbol": symbol, "kind": "depth", "url": reply.url, "status": reply.status, "retry_after": reply.retry_after}
                self.inflight.discard(key)  # before the feed sees it: it may ask again
                self.rest(meta, reply)
                if reply.status == 200:
                    return
                if reply.status == 451:
                    raise VenueError(restricted_message(reply.url))
                self.inflight.add(key)
                await asyncio.sleep(reply.retry_after if reply.retry_after is not None else backoff.next())
        finally:
            self.inflight.discard(key)

    # -- the connection loop

    def url(self) -> str:
        if self.venue == "coinbase":
            return self.ws_base
        return binance.combined_url(self.ws_base, binance.stream_names(self.symbols))

    async def run(self) -> None:
        import websockets
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        backoff = Backoff(self.rec.backoff[0], self.rec.backoff[1], self.rec.rng)
        while not self.rec.stopping:
            url = self.url()
            reason = "closed"
            try:
                async with websockets.connect(
                    url, max_size=WS_MAX_SIZE, open_timeout=10, ping_interval=20, ping_timeout=20, close_timeout=2
                ) as ws:
                    self.conn += 1
                    self.ws, self.connected = ws, True
                    self.note("connect", {"conn": self.conn, "url": url})
                    if self.venue == "coinbase":
                        for msg in coinbase.subscribe_messages(self.symbols):
                            await ws.send(msg.decode())
                    got_data = False
                    while True:
                        try:
                            async with asyncio.timeout(self.rec.stall_timeout):
                                payload = await ws.recv()
                        except TimeoutError:
                            reason = f"no data for {self.rec.stall_timeout:g} s (stalled); reconnecting"
                            break
                        self.frame(payload)
                        if not got_data:
                            got_data = True
                            backoff.reset()
            except ConnectionClosed as exc:
                reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'}: {exc.rcvd.reason if exc.rcvd else ''})".replace(": )", ")")
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 451:
                    self.note("event", {"kind": "error", "detail": restricted_message(url)})
                    raise VenueError(restricted_message(url)) from None
                kind = "rate_limited" if status in (418, 429) else "error"
                self.note("event", {"kind": kind, "detail": f"WebSocket handshake with {url} answered HTTP {status}"})
            except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
                self.note("event", {"kind": "error", "detail": f"cannot connect to {url}: {type(exc).__name__}: {exc}"})
            finally:
                if self.connected:
                    self.connected, self.ws = False, None
                    if self.rec.stopping:
                        reason = "recorder stopped"
                    self.note("disconnect", {"conn": self.conn, "reason": reason})
                    self.reconnects += 1
            if self.rec.stopping:
                break
            await self.rec.sleep(backoff.next())

    def status(self) -> VenueStatus:
        now = time.monotonic()
        n, t = self._counted
        if now - t >= 0.5:
            self.rate = (self.feed.messages - n) / (now - t)
            self._counted = (self.feed.messages, now)
        books = self.feed.books.values()
        return VenueStatus(
            self.venue, self.connected, self.feed.messages, self.rate, sum(b.synced for b in books), len(self.feed.books), self.feed.gaps,
            max(0, self.reconnects),
        )


@dataclass
class RecordStats:
    """What a recording wrote."""

    counts: dict
    files: list
    raw_files: list
    status: list


class Recorder:
    """Record the configured instruments until :meth:`stop` (or ``duration``) — see module doc."""

    def __init__(
        self,
        config: Config,
        instruments: Iterable[Instrument | str],
        out: str | Path,
        on_book_row: Optional[Callable[[Instrument, BookRow], None]] = None,
        on_event: Optional[Callable[[Instrument, int, str, str], None]] = None,
        on_trade: Optional[Callable] = None,
        on_ticker: Optional[Callable] = None,
        stall_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        clock: Callable[[], int] = time.time_ns,
        seed: Optional[int] = None,
    ):
        self.config = config
        self.out = Path(out)
        self.instruments = [Instrument.parse(i) if isinstance(i, str) else i for i in instruments]
        if not self.instruments:
            raise ConfigError("nothing to record: give at least one instrument (--venue/--symbol or config 'instruments')")
        self.writer = DatasetWriter(self.out, config.record.levels)
        self.sink = _Sink(self.writer, on_book_row, on_event, on_trade, on_ticker)
        self.stall_timeout, self.backoff, self.clock = stall_timeout, backoff, clock
        self.rng = random.Random(seed)
        self.session = uuid.uuid4().hex[:12]
        self.stopping = False
        self._last_ts = 0
        self._stop_event: Optional[asyncio.Event] = None
        self._failure: Optional[BaseException] = None
        self.http = None
        by_venue: dict[str, list[Instrument]] = defaultdict(list)
        for inst in self.instruments:
            by_venue[inst.venue].append(inst)
        self.venues = [_Venue(self, v, insts) for v, insts in by_venue.items()]

    def now(self) -> int:
        """``ts_recv`` for the next record: the clock, never going backwards."""
        ts = self.clock()
        if ts < self._last_ts:
            ts = self._last_ts
        self._last_ts = ts
        return ts

    def stop(self) -> None:
        """Ask the recorder to flush, close everything and return from :meth:`run` (signal-safe)."""
        self.stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    def fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self.stop()

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early when the recorder stops."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def status(self) -> list[VenueStatus]:
        return [v.status() for v in self.venues]

    async def run(self, duration: Optional[float] = None, on_status: Optional[Callable[[list[VenueStatus]], None]] = None) -> RecordStats:
        """Record until :meth:`stop`, ``duration`` seconds, or a fatal error (HTTP 451)."""
        import httpx

        self._stop_event = asyncio.Event()
        if self.stopping:
            self._stop_event.set()
        interval_ms = self.config.record.interval_ms
        tick = 0.02 if interval_ms == 0 else min(0.05, interval_ms / 2000)
        async with httpx.AsyncClient(headers={"User-Agent": "qfreplay-recorder"}) as http:
            self.http = http
            tasks = [asyncio.create_task(v.run()) for v in self.venues]
            for t in tasks:
                t.add_done_callback(lambda t: (not t.cancelled() and t.exception() is not None) and self.fail(t.exception()))
            started = time.monotonic()
            last_house = started
            try:
                while not self.stopping:
                    try:
                        await asyncio.wait_for(self._stop_event.wait(), tick)
                    except asyncio.TimeoutError:
                        pass
                    now = self.now()
                    for v in self.venues:
                        v.feed.tick(now)
                    mono = time.monotonic()
                    if mono - last_house >= 1.0:
                        last_house = mono
                        self._housekeeping(now)
                        if on_status is not None:
                            on_status(self.status())
                    if duration is not None and mono - started >= duration:
                        break
            finally:
                self.stopping = True
                self._stop_event.set()
                for v in self.venues:
                    if v.ws is not None:
                        try:
                            await asyncio.wait_for(v.ws.close(1000, "recorder stopped"), 2)
                        except Exception:
                            pass
                await asyncio.wait(tasks, timeout=5)
                pending = [t for v in self.venues for t in v.tasks] + [t for t in tasks if not t.done()]
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                self._close()
        if self._failure is not None:
            raise self._failure
        return RecordStats(dict(self.writer.counts), list(self.writer.files), [f for v in self.venues if v.journal for f in v.journal.files], self.status())

    def _housekeeping(self, now: int) -> None:
        for v in self.venues:
            if v.journal is not None:
                v.journal.flush()
        self.writer.rotate(now)

    def _close(self) -> None:
        for v in self.venues:
            if v.connected:  # the loop was cancelled before it could log its own disconnect
                v.connected = False
                v.note("disconnect", {"conn": v.conn, "reason": "recorder stopped"})
            v.feed.close()
            if v.journal is not None:
                v.journal.close()
        self.writer.publish()
