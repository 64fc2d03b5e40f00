"""The local exchange: protocols, consistent snapshots, true books and faults (127.0.0.1 only)."""

import asyncio
import time

import httpx
import numpy as np
import orjson
import pytest
import websockets

from qfreplay.book.orderbook import OrderBook
from qfreplay.errors import ConfigError
from qfreplay.venues import binance, coinbase
from qfreplay.venues.local import Faults, LocalExchange
from tests.fakes import FakeMarket


def exchange(**kw):
    return LocalExchange(seed=3, market=FakeMarket(3, start_ns=time.time_ns()), **kw)


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_rest_snapshot_plus_stream_rebuilds_the_true_book():
    async def main():
        async with exchange() as ex:
            url = binance.combined_url(ex.binance_ws_url, binance.stream_names(["BTCUSDT"], trades=False, ticker=False))
            async with websockets.connect(url) as ws, httpx.AsyncClient() as http:
                first = orjson.loads(await ws.recv())["data"]
                snap = (await http.get(binance.depth_url(ex.binance_rest_url), params=binance.depth_params("BTCUSDT"))).json()
                book = OrderBook()
                b, a = np.array(snap["bids"], float), np.array(snap["asks"], float)
                book.load(b[:, 0], b[:, 1], a[:, 0], a[:, 1])
                book_id = snap["lastUpdateId"]
                assert book_id >= first["U"] - 1
                for _ in range(10):
                    d = binance.decode(await ws.recv())[0]
                    if d.last_id <= book_id:
                        continue
                    assert d.first_id == book_id + 1
                    book.apply(d.bid_px, d.bid_sz, d.ask_px, d.ask_sz)
                    book_id = d.last_id
                    truth = ex.true_book("binance", "BTC-USDT", book_id, 20)
                    for mine, true in zip(book.top(20), truth):
                        np.testing.assert_array_equal(mine, true)

    run(main())


def test_coinbase_snapshot_then_updates_with_consecutive_sequence_numbers():
    async def main():
        async with exchange() as ex:
            async with websockets.connect(ex.coinbase_ws_url, max_size=2**24) as ws:
                for m in coinbase.subscribe_messages(["BTC-USD"], ("level2", "heartbeats")):
                    await ws.send(m.decode())
                frames = [coinbase.decode(await ws.recv()) for _ in range(12)]
        seqs = [f.sequence_num for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + 12))
        depth = [m for f in frames for m in f.messages]
        assert depth[0].snapshot and len(depth[0].bid_px) >= 5 and not any(m.snapshot for m in depth[1:])

    run(main())


def test_rest_faults_429_with_retry_after_451_and_bad_symbol():
    async def main():
        async with exchange(faults=Faults(retry_after=2)) as ex, httpx.AsyncClient() as http:
            url = binance.depth_url(ex.binance_rest_url)
            ex.inject("429")
            limited = await http.get(url, params={"symbol": "BTCUSDT"})
            ok = await http.get(url, params={"symbol": "BTCUSDT", "limit": 5})
            bad = await http.get(url, params={"symbol": "NOPEUSDT"})
            ex.faults.restricted = True
            restricted = await http.get(url, params={"symbol": "BTCUSDT"})
        return limited, ok, bad, restricted

    limited, ok, bad, restricted = run(main())
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert ok.status_code == 200 and len(ok.json()["bids"]) == 5
    assert bad.status_code == 400 and bad.json()["code"] == -1121
    assert restricted.status_code == 451


def test_injected_drop_and_disconnect_on_the_stream():
    async def main():
        async with exchange() as ex:
            url = binance.combined_url(ex.binance_ws_url, binance.stream_names(["BTCUSDT"], trades=False, ticker=False))
            async with websockets.connect(url) as ws:
                a = binance.decode(await ws.recv())[0]
                ex.inject("drop", "binance")
                b = binance.decode(await ws.recv())[0]
                ex.inject("disconnect", "binance")
                with pytest.raises(websockets.ConnectionClosed):
                    for _ in range(50):
                        await ws.recv()
        return a, b, ex.faults_done

    a, b, done = run(main())
    assert b.first_id > a.last_id + 1  # the dropped diff shows as a gap in U/u
    assert done == {"drop": 1, "disconnect": 1}


def test_fault_spec_parsing():
    f = Faults.parse("drop=0.01, 429=0.5,stall_s=3,451")

    assert (f.drop, f.http_429, f.stall_s, f.restricted) == (0.01, 0.5, 3.0, True)
    with pytest.raises(ConfigError, match="unknown fault 'explode'"):
        Faults.parse("explode=1")
