"""A tiny random-walk market with the simulator's API, for exchange and recorder tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading

from qfreplay.simulate import DepthUpdate, Trade


class FakeMarket:
    """Each product: 30 levels a side around a mid on a 0.01 tick; every 10 ms a few level changes."""

    STEP_NS = 10_000_000

    def __init__(self, seed: int = 0, instruments=None, start_ns: int = 1_700_000_000_000_000_000):
        self.rng = random.Random(seed)
        self.now = start_ns
        self.products = {}
        for text in instruments or ["binance:BTC-USDT", "coinbase:BTC-USD"]:
            venue, _, symbol = str(text).partition(":")
            mid = 1000 + self.rng.randrange(1000)
            bids = {round(mid - 0.01 * k, 2): round(self.rng.uniform(0.1, 2), 4) for k in range(1, 31)}
            asks = {round(mid + 0.01 * k, 2): round(self.rng.uniform(0.1, 2), 4) for k in range(1, 31)}
            self.products[(venue, symbol)] = {"bids": bids, "asks": asks, "trade_id": 1, "last": float(mid), "open": float(mid)}

    def book(self, venue, symbol):
        p = self.products[(venue, symbol)]
        return sorted(p["bids"].items(), reverse=True), sorted(p["asks"].items())

    def ticker(self, venue, symbol):
        p = self.products[(venue, symbol)]
        return {"last": p["last"], "open": p["open"], "high": p["last"] + 1, "low": p["last"] - 1, "volume": 10.0, "quote_volume": 10.0 * p["last"], "change_pct": 0.5}

    def _step(self, venue, symbol, p):
        r = self.rng
        bids, asks = p["bids"], p["asks"]
        bb, ba = max(bids), min(asks)
        ub, ua = [], []
        for _ in range(r.randint(1, 4)):
            if r.random() < 0.5:
                px = round(bb - 0.01 * r.randint(0, 25), 2)
                if r.random() < 0.2 and px < bb and len(bids) > 5:
                    bids.pop(px, None)
                    ub.append((px, 0.0))
                else:
                    sz = round(r.uniform(0.01, 3), 4)
                    bids[px] = sz
                    ub.append((px, sz))
            else:
                px = round(ba + 0.01 * r.randint(0, 25), 2)
                if r.random() < 0.2 and px > ba and len(asks) > 5:
                    asks.pop(px, None)
                    ua.append((px, 0.0))
                else:
                    sz = round(r.uniform(0.01, 3), 4)
                    asks[px] = sz
                    ua.append((px, sz))
        if r.random() < 0.1:  # the touch moves by one tick, never crossing
            if r.random() < 0.5 and ba - bb > 0.015:
                px = round(bb + 0.01, 2)
                bids[px] = 0.5
                ub.append((px, 0.5))
            elif bids[bb] and len(bids) > 5:
                bids.pop(bb)
                ub.append((bb, 0.0))
        return DepthUpdate(self.now, venue, symbol, ub, ua)

    def advance(self, until_ns):
        out = []
        while self.now + self.STEP_NS <= until_ns:
            self.now += self.STEP_NS
            for (venue, symbol), p in self.products.items():
                out.append(self._step(venue, symbol, p))
                if self.rng.random() < 0.05:
                    p["last"] = max(p["bids"])
                    out.append(Trade(self.now, venue, symbol, p["trade_id"], p["last"], 0.01, self.rng.choice([1, -1])))
                    p["trade_id"] += 1
        self.now = max(self.now, until_ns)
        return out


@contextlib.contextmanager
def served_in_thread(exchange, timeout: float = 20.0):
    """Run a LocalExchange on its own event loop in a background thread (for tests of processes)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(exchange.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(timeout), "the local exchange did not start"
    try:
        yield exchange
    finally:
        asyncio.run_coroutine_threadsafe(exchange.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
