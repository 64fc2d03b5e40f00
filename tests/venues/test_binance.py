"""Binance wire decoding, and the book rebuilt from a real capture against its bookTicker stream."""

from pathlib import Path

import numpy as np
import pytest

from qfreplay.capture.feed import NullSink, make_feed
from qfreplay.capture.journal import read_journal
from qfreplay.venues import binance
from qfreplay.venues.common import Depth, Malformed, Ticker, Trade, VenueMessage

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
BTC_FILE = REAL / "btcusdt_20240808.gz"


def test_combined_depth_frame_decodes_to_floats():
    frame = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":5,"u":7,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"]]}}'

    (msg,) = binance.decode(frame)

    assert isinstance(msg, Depth)
    assert (msg.symbol, msg.first_id, msg.last_id, msg.ts_event) == ("BTCUSDT", 5, 7, 1723161255308_000_000)
    assert msg.bid_px.tolist() == [55653.87] and msg.bid_sz.tolist() == [0.0]
    assert msg.ask_px.tolist() == [61838.04] and msg.ask_sz.tolist() == [0.32332]


def test_raw_trade_and_ticker_frames():
    trade = b'{"e":"trade","E":1000,"s":"BTCUSDT","t":42,"p":"100.5","q":"0.25","T":999,"m":true,"M":true}'
    ticker = b'{"e":"24hrTicker","E":2000,"s":"BTCUSDT","p":"1","P":"1.010","c":"100","o":"99","h":"101","l":"98","v":"10","q":"1000"}'

    (t,) = binance.decode(trade)
    (k,) = binance.decode(ticker)

    assert t == Trade("BTCUSDT", 1_000_000_000, 42, 100.5, 0.25, -1)  # buyer was maker: seller aggressed
    assert k == Ticker("BTCUSDT", 2_000_000_000, 100.0, 99.0, 101.0, 98.0, 10.0, 1000.0, 1.01)


def test_acks_errors_and_garbage():
    assert binance.decode(b'{"result":null,"id":1}') == []
    assert binance.decode(b'{"code":-1121,"msg":"Invalid symbol."}') == [VenueMessage("error", "binance error -1121: Invalid symbol.")]
    (bad,) = binance.decode(b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"')
    assert isinstance(bad, Malformed)
    (bad,) = binance.decode(b"\x00not json")
    assert isinstance(bad, Malformed)


def test_urls_and_snapshot():
    streams = binance.stream_names(["BTCUSDT"])

    assert binance.combined_url("wss://stream.binance.com:9443/", streams) == (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@ticker"
    )
    snap = binance.decode_snapshot(b'{"lastUpdateId":9,"bids":[["1.5","2"]],"asks":[]}', "BTCUSDT")
    assert snap.snapshot and snap.last_id == 9 and snap.bid_px.tolist() == [1.5] and len(snap.ask_px) == 0


@pytest.mark.skipif(not BTC_FILE.exists(), reason=f"real capture {BTC_FILE} not present (../shared/data/real is optional)")
def test_real_capture_book_matches_every_book_ticker_it_reaches():
    rows, quotes = {}, []

    class Sink(NullSink):
        def book_row(self, inst, row):
            rows[row.seq] = row

    feed = make_feed("binance", ["BTC-USDT"], 20, 0, Sink())
    feed.on_quote = lambda ts, q: quotes.append(q)

    for rec in read_journal(BTC_FILE):
        feed.feed(rec)

    reached = [q for q in quotes if q.update_id in rows]
    assert len(quotes) == 28040 and len(reached) >= 500
    for q in reached:
        r = rows[q.update_id]
        assert (r.bid_px[0], r.bid_sz[0], r.ask_px[0], r.ask_sz[0]) == (q.bid_px, q.bid_sz, q.ask_px, q.ask_sz), q
        assert np.all(np.diff(r.bid_px) < 0) and np.all(np.diff(r.ask_px) > 0)
    assert feed.gaps == 0 and feed.malformed == 0
