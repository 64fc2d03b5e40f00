"""The built-in local exchange: Binance spot and Coinbase Advanced Trade protocols on 127.0.0.1.

Driven by the simulator (:class:`qfreplay.simulate.Market`, or anything with its API), it keeps
the true full book of every product, so REST snapshots are consistent with the stream position,
and it remembers the true top of book at every sequence number it sent, so tests can check a
recorder row by row. Faults (dropped diffs, disconnects, malformed frames, HTTP 429, stalls) are
injected at random rates or on demand.

One port serves everything: Binance raw streams ``/ws/<stream>``, combined streams
``/stream?streams=a/b``, REST ``/api/v3/depth`` and ``/api/v3/ticker/24hr``, and Coinbase on
``/coinbase``.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from collections import OrderedDict, deque
from dataclasses import dataclass, fields
from typing import Any, Optional

import numpy as np
import orjson

from ..errors import ConfigError
from ..book.orderbook import OrderBook
from ..instruments import Instrument, venue_symbol
from . import binance, coinbase

DEFAULT_INSTRUMENTS = ("binance:BTC-USDT", "coinbase:BTC-USD")  # when the market does not say


@dataclass
class Faults:
    """Fault rates: the probability, per streamed message and connection (per request for 429),
    that the fault happens. ``stall_s`` is how long a stall withholds data."""

    drop: float = 0.0
    disconnect: float = 0.0
    malformed: float = 0.0
    http_429: float = 0.0
    stall: float = 0.0
    stall_s: float = 2.0
    retry_after: float = 1.0
    restricted: bool = False  # answer every REST request with HTTP 451

    @classmethod
    def parse(cls, text: str | None) -> "Faults":
        """``drop=0.01,disconnect=0.001,malformed=0.01,429=0.1,stall=0.001,stall_s=3``."""
        out = cls()
        if not text:
            return out
        names = {f.name for f in fields(cls)}
        for part in text.split(","):
            if not part.strip():
                continue
            key, _, value = part.partition("=")
            key = key.strip().replace("-", "_")
            key = {"429": "http_429", "451": "restricted"}.get(key, key)
            if key not in names:
                raise ConfigError(f"--faults: unknown fault {key!r}; allowed: drop, disconnect, malformed, 429, stall, stall_s, retry_after, 451")
            try:
                setattr(out, key, (value.strip().lower() in ("1", "true", "yes", "")) if key == "restricted" else float(value))
            except ValueError:
                raise ConfigError(f"--faults: {key} must be a number, got {value!r}") from None
        return out


class _Product:
    """One product's true book, its sequence (Binance update id) and top-of-book history."""

    def __init__(self, inst: Instrument, history: int, keep_levels: int):
        self.inst = inst
        self.vsym = venue_symbol(inst.venue, inst.symbol)
        self.book = OrderBook()
        self.version = 1_000_000
        self.keep_levels = keep_levels
        self.history: OrderedDict[int, tuple] = OrderedDict()
        self.history_max = history
        self.trades: deque = deque(maxlen=50)
        self.trade_id = 1
        self.ticker: dict = {}

    def remember(self) -> None:
        self.history[self.version] = self.book.top(self.keep_levels)
        while len(self.history) > self.history_max:
            self.history.popitem(last=False)


class _Client:
    def __init__(self, ws, rng: random.Random):
        self.ws = ws
        self.rng = rng
        self.stalled_until = 0.0
        self.closed = False


class _BinanceClient(_Client):
    def __init__(self, ws, rng, streams: set[str], combined: bool):
        super().__init__(ws, rng)
        self.streams = streams
        self.combined = combined


class _CoinbaseClient(_Client):
    def __init__(self, ws, rng, base: int):
        super().__init__(ws, rng)
        self.seq = base
        self.subs: dict[str, set[str]] = {}


def _level_list(book: OrderBook) -> tuple[list, list]:
    return book.levels()


class LocalExchange:
    """``async with LocalExchange(seed=1, faults=Faults(drop=0.01)) as ex:`` … ``ex.binance_ws_url``."""

    def __init__(
        self,
        seed: int = 0,
        instruments: Optional[list[str]] = None,
        faults: Optional[Faults] = None,
        market: Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_ms: int = 50,
        speed: float = 1.0,
        ticker_ms: int = 1000,
        history: int = 200_000,
        keep_levels: int = 50,
    ):
        self.seed = seed
        self._asked = instruments
        self.instruments = [Instrument.parse(i) if isinstance(i, str) else i for i in (instruments or DEFAULT_INSTRUMENTS)]
        self.faults = faults or Faults()
        self.market = market
        self.host, self.port = host, port
        self.tick_s, self.speed, self.ticker_ns = tick_ms / 1000, speed, ticker_ms * 1_000_000
        self.rng = random.Random(seed)
        self.products: dict[tuple[str, str], _Product] = {}
        self.binance_clients: list[_BinanceClient] = []
        self.coinbase_clients: list[_CoinbaseClient] = []
        self.coinbase_seq: OrderedDict[int, tuple[str, int]] = OrderedDict()  # sequence_num -> (symbol, version)
        self._history, self._keep = history, keep_levels
        self._one_shot: list[tuple[str, Optional[str]]] = []
        self._server = None
        self._clock: Optional[asyncio.Task] = None
        self._connections = 0
        self.sent = {"binance": 0, "coinbase": 0}
        self.faults_done: dict[str, int] = {}
        self.rest_requests = 0

    # -- lifecycle

    async def __aenter__(self) -> "LocalExchange":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        if self.market is None:
            from ..simulate import Market

            self.market = Market(self.seed, instruments=self._asked and list(self.instruments), start_ns=time.time_ns())
        if not self._asked and getattr(self.market, "instruments", None):
            self.instruments = [Instrument.parse(i) if isinstance(i, str) else Instrument(*i) for i in self.market.instruments]
        # warm the market up (a first advance may compile kernels) before anyone can connect
        self.market.advance(int(self.market.now) + int(self.tick_s * 1e9))
        for inst in self.instruments:
            p = _Product(inst, self._history, self._keep)
            bids, asks = self._market_book(inst)
            p.book.load(*_arrays(bids), *_arrays(asks))
            p.remember()
            self.products[(self._proto(inst.venue), p.vsym)] = p
        self._server = await serve(
            self._handler, self.host, self.port, process_request=self._http, max_size=2**20, ping_interval=20, close_timeout=1
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._clock = asyncio.create_task(self._run_clock())

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            try:
                await self._clock
            except (asyncio.CancelledError, Exception):
                pass
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 3)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _proto(venue: str) -> str:
        return "coinbase" if venue == "coinbase" else "binance"

    def _market_book(self, inst: Instrument):
        book = self.market.book(inst.venue, inst.symbol)
        if isinstance(book, dict):
            return book.get("bids", []), book.get("asks", [])
        return book[0], book[1]

    # -- URLs

    @property
    def binance_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def binance_rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def coinbase_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/coinbase"

    def venue_config(self) -> dict:
        """The ``venues:`` config section pointing every venue at this exchange."""
        b = {"ws_url": self.binance_ws_url, "rest_url": self.binance_rest_url}
        return {"binance": b, "binanceus": b, "coinbase": {"ws_url": self.coinbase_ws_url}}

    # -- truth for tests

    def true_book(self, venue: str, symbol: str, seq: int, levels: int = 20):
        """The true (bid_px, bid_sz, ask_px, ask_sz) top ``levels`` at a row's ``seq``
        (Binance update id ``u``; Coinbase ``sequence_num``), NaN/0 padded; None if unknown."""
        inst = Instrument(venue, symbol)
        key = (self._proto(venue), venue_symbol(venue, inst.symbol))
        p = self.products.get(key)
        if p is None:
            return None
        if venue == "coinbase":
            hit = self.coinbase_seq.get(seq)
            if hit is None or hit[0] != p.vsym:
                return None
            seq = hit[1]
        top = p.history.get(seq)
        if top is None:
            return None
        if levels <= p.keep_levels:
            return tuple(a[:levels] for a in top)
        raise ValueError(f"only {p.keep_levels} levels are kept")

    def inject(self, kind: str, venue: Optional[str] = None) -> None:
        """Make one fault happen on the next streamed message (of ``venue``'s protocol, if given).

        kinds: drop, disconnect, malformed, stall, 429 (next REST request)."""
        if kind not in ("drop", "disconnect", "malformed", "stall", "429"):
            raise ValueError(f"unknown fault {kind!r}")
        self._one_shot.append((kind, self._proto(venue) if venue else None))

    def _count(self, kind: str) -> None:
        self.faults_done[kind] = self.faults_done.get(kind, 0) + 1

    def _fault(self, client: _Client, proto: str) -> Optional[str]:
        """The fault to apply to this message on this connection, if any."""
        for i, (kind, v) in enumerate(self._one_shot):
            if kind != "429" and (v is None or v == proto):
                del self._one_shot[i]
                return kind
        f, r = self.faults, client.rng.random()
        for kind in ("drop", "disconnect", "malformed", "stall"):
            rate = getattr(f, kind)
            if r < rate:
                return kind
            r -= rate
        return None

    # -- the clock: advance the market and stream what changed

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        t0, sim0 = loop.time(), int(self.market.now)
        last_ticker = sim0
        while True:
            await asyncio.sleep(self.tick_s)
            until = sim0 + int((loop.time() - t0) * self.speed * 1e9)
            events = self.market.advance(until)
            await self._dispatch(events, until)
            if until - last_ticker >= self.ticker_ns:
                last_ticker = until
                await self._send_tickers(until)

    async def _dispatch(self, events: list, now_ns: int) -> None:
        changes: dict[tuple[str, str], tuple[dict, dict, int]] = {}
        trades: list[tuple[_Product, Any]] = []
        for ev in events:
            inst = Instrument(ev.venue, ev.symbol)
            p = self.products.get((self._proto(inst.venue), venue_symbol(inst.venue, inst.symbol)))
            if p is None:
                continue
            if hasattr(ev, "bids"):
                bids, asks, n = changes.get((p.inst.venue, p.vsym), ({}, {}, 0))
                for px, sz in ev.bids:
                    bids[float(px)] = float(sz)
                for px, sz in ev.asks:
                    asks[float(px)] = float(sz)
                changes[(p.inst.venue, p.vsym)] = (bids, asks, n + 1)
                p.book.apply(*_arrays(ev.bids), *_arrays(ev.asks))
            else:
                trades.append((p, ev))
        for key, (bids, asks, n) in changes.items():
            p = self.products[(self._proto(key[0]), key[1])]
            first = p.version + 1
            p.version += n
            p.remember()
            b, a = sorted(bids.items(), reverse=True), sorted(asks.items())
            if p.inst.venue == "coinbase":
                await self._coinbase_l2(p, now_ns, b, a)
            else:
                await self._binance_depth(p, now_ns, first, b, a)
        for p, ev in trades:
            await self._trade(p, ev)

    # -- Binance

    async def _binance_send(self, stream: str, data: bytes, proto_fault: bool) -> None:
        wrapped = None
        for c in list(self.binance_clients):
            if c.closed or stream not in c.streams:
                continue
            if proto_fault:
                kind = self._fault(c, "binance")
                if kind is not None and not await self._apply_fault(c, kind, "binance"):
                    continue
            if time.monotonic() < c.stalled_until:
                continue
            if c.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"
                await self._send(c, wrapped)
            else:
                await self._send(c, data)
            self.sent["binance"] += 1

    async def _binance_depth(self, p: _Product, now_ns: int, first: int, bids, asks) -> None:
        data = orjson.dumps(binance.encode_depth(p.vsym, now_ns // 1_000_000, first, p.version, bids, asks))
        await self._binance_send(f"{p.vsym.lower()}@depth@100ms", data, True)
        await self._binance_send(f"{p.vsym.lower()}@depth", data, True)

    async def _trade(self, p: _Product, ev) -> None:
        ts = int(getattr(ev, "ts", 0))
        side = int(getattr(ev, "side", 1))
        tid = int(getattr(ev, "trade_id", p.trade_id))
        p.trade_id = tid + 1
        p.trades.append((p.vsym, tid, float(ev.price), float(ev.size), side, ts))
        if p.inst.venue == "coinbase":
            await self._coinbase_send("market_trades", p.vsym, [coinbase.encode_trade_event("update", [p.trades[-1]])], ts)
        else:
            data = orjson.dumps(binance.encode_trade(p.vsym, ts // 1_000_000, tid, float(ev.price), float(ev.size), side < 0))
            await self._binance_send(f"{p.vsym.lower()}@trade", data, False)

    def _ticker(self, p: _Product) -> dict:
        t = dict(self.market.ticker(p.inst.venue, p.inst.symbol))
        for k in ("last", "open", "high", "low", "volume", "quote_volume", "change_pct"):
            t[k] = float(t.get(k, float("nan")))
        return t

    async def _send_tickers(self, now_ns: int) -> None:
        for p in self.products.values():
            t = self._ticker(p)
            if p.inst.venue == "coinbase":
                bp, bs, ap, as_ = p.book.top(1)
                ev = coinbase.encode_ticker_event("update", p.vsym, t, (bp[0], bs[0], ap[0], as_[0]))
                await self._coinbase_send("ticker", p.vsym, [ev], now_ns)
            else:
                data = orjson.dumps(binance.encode_ticker(p.vsym, now_ns // 1_000_000, t))
                await self._binance_send(f"{p.vsym.lower()}@ticker", data, False)
        await self._coinbase_heartbeats(now_ns)

    # -- Coinbase

    def _next_seq(self, c: _CoinbaseClient) -> int:
        seq = c.seq
        c.seq += 1
        return seq

    async def _coinbase_frame(self, c: _CoinbaseClient, channel: str, events: list, ts_ns: int, l2: Optional[tuple[str, int]] = None) -> None:
        seq = self._next_seq(c)
        if l2 is not None:
            self.coinbase_seq[seq] = l2
            while len(self.coinbase_seq) > self._history * 4:
                self.coinbase_seq.popitem(last=False)
        await self._send(c, coinbase.encode_envelope(channel, ts_ns, seq, events))
        self.sent["coinbase"] += 1

    async def _coinbase_send(self, channel: str, product: str, events: list, ts_ns: int) -> None:
        sub = "level2" if channel == "l2_data" else channel
        for c in list(self.coinbase_clients):
            if c.closed or product not in c.subs.get(sub, ()):
                continue
            if time.monotonic() < c.stalled_until:
                self._next_seq(c)
                continue
            await self._coinbase_frame(c, channel, events, ts_ns)

    async def _coinbase_l2(self, p: _Product, now_ns: int, bids, asks) -> None:
        ev = [coinbase.encode_l2_event("update", p.vsym, now_ns, bids, asks)]
        for c in list(self.coinbase_clients):
            if c.closed or p.vsym not in c.subs.get("level2", ()):
                continue
            kind = self._fault(c, "coinbase")
            if kind is not None and not await self._apply_fault(c, kind, "coinbase"):
                self._next_seq(c)  # the frame is lost: its sequence number is skipped
                continue
            if time.monotonic() < c.stalled_until:
                self._next_seq(c)
                continue
            await self._coinbase_frame(c, "l2_data", ev, now_ns, (p.vsym, p.version))

    async def _coinbase_heartbeats(self, now_ns: int) -> None:
        for c in list(self.coinbase_clients):
            if c.closed or not c.subs.get("heartbeats"):
                continue
            if time.monotonic() < c.stalled_until:
                self._next_seq(c)
                continue
            await self._coinbase_frame(c, "heartbeats", [{"current_time": coinbase.iso(now_ns), "heartbeat_counter": c.seq}], now_ns)

    async def _coinbase_subscribe(self, c: _CoinbaseClient, msg: dict) -> None:
        kind, channel = msg.get("type"), msg.get("channel")
        products = [s for s in msg.get("product_ids", []) if ("coinbase", s) in self.products]
        if channel not in coinbase.CHANNELS or kind not in ("subscribe", "unsubscribe"):
            await self._send(c, orjson.dumps({"type": "error", "message": f"unknown channel or type: {channel!r} {kind!r}"}))
            return
        now = int(self.market.now)
        subs = c.subs.setdefault(channel, set())
        if kind == "unsubscribe":
            subs.difference_update(products)
        else:
            subs.update(products)
            for prod in products:
                p = self.products[("coinbase", prod)]
                if channel == "level2":
                    bids, asks = p.book.levels()
                    ev = [coinbase.encode_l2_event("snapshot", prod, now, bids, asks)]
                    await self._coinbase_frame(c, "l2_data", ev, now, (prod, p.version))
                elif channel == "market_trades":
                    await self._coinbase_frame(c, "market_trades", [coinbase.encode_trade_event("snapshot", list(p.trades)[::-1])], now)
                elif channel == "ticker":
                    bp, bs, ap, as_ = p.book.top(1)
                    await self._coinbase_frame(c, "ticker", [coinbase.encode_ticker_event("snapshot", prod, self._ticker(p), (bp[0], bs[0], ap[0], as_[0]))], now)
        await self._coinbase_frame(c, "subscriptions", [{"subscriptions": {k: sorted(v) for k, v in c.subs.items() if v}}], now)

    # -- faults and sending

    async def _apply_fault(self, c: _Client, kind: str, proto: str) -> bool:
        """Carry out a fault; True if the message should still be sent."""
        self._count(kind)
        if kind == "drop":
            return False
        if kind == "malformed":
            garbage = self.rng.choice([b'{"stream":"x@depth@100ms","data":{"e":"depthUpdate","E":', b"\x7fnot json at all", b'{"channel":"l2_data","events":[{"type":"update","updates":7}]}', b"[]"])
            await self._send(c, garbage)
            return True
        if kind == "stall":
            c.stalled_until = time.monotonic() + self.faults.stall_s
            return False
        if kind == "disconnect":
            c.closed = True
            try:
                c.ws.transport.abort() if self.rng.random() < 0.5 else await c.ws.close(1011, "local exchange fault: disconnect")
            except Exception:
                pass
            return False
        return True

    async def _send(self, c: _Client, data: bytes) -> None:
        if c.closed:
            return
        try:
            await c.ws.send(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
        except Exception:
            c.closed = True

    # -- connections

    async def _handler(self, ws) -> None:
        path = ws.request.path
        self._connections += 1
        rng = random.Random((self.seed << 20) + self._connections)
        if path.startswith("/ws") or path.startswith("/stream"):
            await self._binance_conn(ws, path, rng)
        else:
            await self._coinbase_conn(ws, rng)

    async def _binance_conn(self, ws, path: str, rng) -> None:
        parts = urllib.parse.urlsplit(path)
        if parts.path.startswith("/stream"):
            q = urllib.parse.parse_qs(parts.query)
            streams = set(q.get("streams", [""])[0].split("/")) - {""}
            combined = True
        else:
            streams = set(parts.path[len("/ws") :].strip("/").split("/")) - {""}
            combined = False
        c = _BinanceClient(ws, rng, streams, combined)
        self.binance_clients.append(c)
        try:
            async for msg in ws:
                try:
                    req = orjson.loads(msg)
                    method, params, rid = req["method"], req.get("params", []), req.get("id")
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    await self._send(c, b'{"code":2,"msg":"Invalid request"}')
                    continue
                if method == "SUBSCRIBE":
                    c.streams.update(params)
                elif method == "UNSUBSCRIBE":
                    c.streams.difference_update(params)
                await self._send(c, orjson.dumps({"result": None if method != "LIST_SUBSCRIPTIONS" else sorted(c.streams), "id": rid}))
        except Exception:
            pass
        finally:
            c.closed = True
            self.binance_clients.remove(c)

    async def _coinbase_conn(self, ws, rng) -> None:
        c = _CoinbaseClient(ws, rng, base=self._connections * 1_000_000_000)
        self.coinbase_clients.append(c)
        try:
            async for msg in ws:
                try:
                    req = orjson.loads(msg)
                    if not isinstance(req, dict):
                        raise TypeError
                except (orjson.JSONDecodeError, TypeError):
                    await self._send(c, b'{"type":"error","message":"malformed request"}')
                    continue
                await self._coinbase_subscribe(c, req)
        except Exception:
            pass
        finally:
            c.closed = True
            self.coinbase_clients.remove(c)

    # -- REST

    def _http(self, connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        self.rest_requests += 1
        parts = urllib.parse.urlsplit(request.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        if self.faults.restricted:
            return _json(connection, 451, {"code": 0, "msg": "Service unavailable from a restricted location."})
        one = [i for i, (k, _) in enumerate(self._one_shot) if k == "429"]
        if one or (self.faults.http_429 and self.rng.random() < self.faults.http_429):
            if one:
                del self._one_shot[one[0]]
            self._count("429")
            resp = _json(connection, 429, {"code": -1003, "msg": "Too many requests; local exchange fault."})
            resp.headers["Retry-After"] = f"{self.faults.retry_after:g}"
            return resp
        p = self.products.get(("binance", q.get("symbol", "")))
        if parts.path in ("/api/v3/depth", "/api/v3/ticker/24hr") and p is None:
            return _json(connection, 400, {"code": -1121, "msg": "Invalid symbol."})
        if parts.path == "/api/v3/depth":
            try:
                limit = int(q.get("limit", 100))
            except ValueError:
                return _json(connection, 400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
            bids, asks = p.book.levels()
            return _json(connection, 200, binance.encode_snapshot(p.version, bids[:limit], asks[:limit]))
        if parts.path == "/api/v3/ticker/24hr":
            return _json(connection, 200, binance.encode_rest_ticker(p.vsym, int(self.market.now) // 1_000_000, self._ticker(p)))
        return _json(connection, 404, {"code": -1, "msg": f"no such endpoint {parts.path}"})


def _json(connection, status: int, body: dict):
    resp = connection.respond(status, orjson.dumps(body).decode())
    resp.headers["Content-Type"] = "application/json"
    return resp


def _arrays(levels) -> tuple[np.ndarray, np.ndarray]:
    if len(levels) == 0:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(levels, dtype=np.float64).reshape(-1, 2)
    return a[:, 0].copy(), a[:, 1].copy()
