"""Coinbase Advanced Trade decoding, and books rebuilt from a real capture against its ticker channel."""

import io
from pathlib import Path

import orjson
import pytest

from qfreplay.capture.feed import NullSink, make_feed
from qfreplay.capture.journal import Record
from qfreplay.venues import coinbase
from qfreplay.venues.common import Depth, Malformed, Ticker, Trade, iso_to_ns

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
CB_FILE = REAL / "COINBASE.jsonl.zst"


def test_l2_update_splits_sides_and_keeps_sequence():
    frame = b'{"channel":"l2_data","timestamp":"2026-08-09T21:05:48.505350477Z","sequence_num":14,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"x","price_level":"65062.5","new_quantity":"0.00583"},{"side":"offer","event_time":"x","price_level":"65090","new_quantity":"0"}]}]}'

    f = coinbase.decode(frame)

    (d,) = f.messages
    assert f.sequence_num == 14 and isinstance(d, Depth) and not d.snapshot
    assert d.ts_event == iso_to_ns("2026-08-09T21:05:48.505350477Z") == 1786309548_505350477
    assert (d.bid_px.tolist(), d.bid_sz.tolist(), d.ask_px.tolist(), d.ask_sz.tolist()) == ([65062.5], [0.00583], [65090.0], [0.0])


def test_trades_ticker_heartbeats_and_errors():
    trades = b'{"channel":"market_trades","timestamp":"2026-08-09T21:05:48Z","sequence_num":3,"events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1068572091","price":"65083.67","size":"0.01","time":"t","side":"SELL"}]}]}'
    ticker = b'{"channel":"ticker","timestamp":"2026-08-09T21:05:48Z","sequence_num":4,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"ETH-USD","price":"1919.41","volume_24_h":"19975.9","low_24_h":"1911.04","high_24_h":"1925","price_percent_chg_24_h":"0.025","best_bid":"1919.44","best_ask":"1919.49","best_bid_quantity":"0.02","best_ask_quantity":"0.07"}]}]}'

    (t,) = coinbase.decode(trades).messages
    k, q = coinbase.decode(ticker).messages

    assert t == Trade("BTC-USD", 1786309548_000_000_000, 1068572091, 65083.67, 0.01, 1)  # maker sold: buyer aggressed
    assert isinstance(k, Ticker) and (k.last, k.high, k.low, k.volume, k.change_pct) == (1919.41, 1925.0, 1911.04, 19975.9, 0.025)
    assert (q.bid_px, q.ask_px) == (1919.44, 1919.49)
    assert coinbase.decode(b'{"channel":"heartbeats","sequence_num":5,"events":[]}').messages == []
    assert coinbase.decode(b'{"type":"error","message":"bad"}').messages[0].kind == "error"
    assert isinstance(coinbase.decode(b"[1,2").messages[0], Malformed)


def test_subscribe_messages_one_per_channel():
    msgs = [orjson.loads(m) for m in coinbase.subscribe_messages(["BTC-USD"])]

    assert [m["channel"] for m in msgs] == ["level2", "market_trades", "ticker", "heartbeats"]
    assert all(m["type"] == "subscribe" and m["product_ids"] == ["BTC-USD"] for m in msgs)


def cryptofeed_records(path: Path):
    """Frames of a cryptofeed v3 JSONL capture as journal records."""
    import zstandard

    with open(path, "rb") as fh:
        text = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh)).read()
    for line in text.splitlines():
        o = orjson.loads(line)
        ts = int(round(o.get("ts", 0) * 1e9))
        if o["t"] == "connect":
            yield Record(ts, "connect", {"conn": 1, "url": o["addr"]}, b"")
        elif o["t"] == "recv":
            yield Record(ts, "", None, o["data"].encode())


@pytest.mark.skipif(not CB_FILE.exists(), reason=f"real capture {CB_FILE} not present (../shared/data/real is optional)")
def test_real_capture_books_agree_with_the_ticker_channel():
    states = {"BTC-USD": [], "ETH-USD": []}
    quotes = []

    class Sink(NullSink):
        def book_row(self, inst, row):
            states[inst.symbol].append((row.bid_px[0], row.ask_px[0]))

    feed = make_feed("coinbase", ["BTC-USD", "ETH-USD"], 20, 0, Sink())
    feed.on_quote = lambda ts, q: quotes.append((q, len(states[q.symbol])))

    for rec in cryptofeed_records(CB_FILE):
        feed.feed(rec)

    # the ticker channel is not synchronized with l2_data: compare with the book at its arrival
    # and within three level2 messages of it
    exact = near = 0
    for q, i in quotes:
        hist = states[q.symbol]
        exact += hist[i - 1] == (q.bid_px, q.ask_px)
        near += (q.bid_px, q.ask_px) in hist[max(0, i - 4) : i + 3]
    assert len(quotes) == 160 and feed.gaps == 0
    assert exact >= 0.8 * len(quotes) and near >= 0.98 * len(quotes)
    assert len(states["BTC-USD"]) + len(states["ETH-USD"]) == 775
