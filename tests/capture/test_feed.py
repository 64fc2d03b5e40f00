"""BinanceFeed.feed_many (normalize's batched path) writes what feed(), one record at a time, writes."""

import numpy as np
import orjson
import pytest

from qfreplay.capture.feed import make_feed
from qfreplay.capture.journal import Record
from qfreplay.capture.writer import DatasetWriter
from qfreplay.instruments import Instrument
from qfreplay.store import read_table
from qfreplay.venues import binance

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MS = 1_000_000


def _frame(stream: str, data: dict) -> bytes:
    return orjson.dumps({"stream": stream, "data": data})


def _journal(seed: int) -> list[Record]:
    """Two books on one connection: diffs with gaps, stale and crossing updates, malformed level
    lists, trades, snapshots, a reconnect."""
    rng = np.random.default_rng(seed)
    recs, ts, uid, trade_id = [], 1_700_000_000_000 * MS, {s: 1000 for s in SYMBOLS}, 1
    mid = {"BTCUSDT": 100.0, "ETHUSDT": 10.0}

    def snapshot(conn, symbols=SYMBOLS):
        for s in symbols:
            body = orjson.dumps(binance.encode_snapshot(uid[s], [(mid[s] - 0.5 - i, 1.0) for i in range(30)], [(mid[s] + 0.5 + i, 1.0) for i in range(30)]))
            recs.append(Record(ts, "rest", {"conn": conn, "symbol": s, "kind": "depth", "url": "x", "status": 200}, body))

    recs.append(Record(ts, "connect", {"conn": 1, "url": "ws://x"}, b""))
    snapshot(1)
    for _ in range(1500):
        ts += int(rng.integers(1, 60)) * MS
        s = SYMBOLS[int(rng.integers(0, 2))]
        r = rng.random()
        if r < 0.25:
            trade_id += 1
            recs.append(Record(ts, "", None, _frame(f"{s.lower()}@trade", binance.encode_trade(s, ts // MS, trade_id, mid[s], 0.1, bool(rng.integers(0, 2))))))
            continue
        if r < 0.26:
            recs.append(Record(ts, "disconnect", {"conn": 1, "reason": "test"}, b""))
            recs.append(Record(ts, "connect", {"conn": 1, "url": "ws://x"}, b""))
            snapshot(1)
            continue
        if r < 0.28:
            snapshot(1, [s])  # the answer to a request after a gap
            continue
        first = uid[s] + (3 if r < 0.3 else 1)  # sometimes a gap
        last = first + int(rng.integers(0, 3))
        if r > 0.97:
            first, last = uid[s] - 3, uid[s] - 1  # older than the book
        else:
            uid[s] = last
        bids = [(mid[s] - 0.5 - int(rng.integers(0, 40)), float(rng.integers(0, 3))) for _ in range(int(rng.integers(0, 5)))]
        asks = [(mid[s] + 0.5 + int(rng.integers(0, 40)), float(rng.integers(0, 3))) for _ in range(int(rng.integers(0, 5)))]
        if rng.random() < 0.01:
            bids.append((mid[s] + 5.0, 1.0))  # crosses the book
        data = binance.encode_depth(s, ts // MS, first, last, bids, asks)
        if rng.random() < 0.01:
            data["b"] = [["1e5", "1"]]  # refused by the fast parser, fine for msgspec
        if rng.random() < 0.005:
            data["a"] = [["abc", "1"]]  # malformed: an event of every book
        recs.append(Record(ts, "", None, _frame(f"{s.lower()}@depth@100ms", data)))
    return recs


def _tables(root):
    out = {}
    for s in ("BTC-USDT", "ETH-USDT"):
        for name in ("book", "trades", "events"):
            t = read_table(root, name, Instrument("binance", s))
            out[(s, name)] = [
                tuple(np.asarray(v).tobytes() if isinstance(v, (list, np.ndarray)) else v for v in row.values())
                for row in t.to_pylist()
            ]
    return out


@pytest.mark.parametrize("interval_ms", [0, 100])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_feed_many_writes_what_feed_writes(tmp_path, seed, interval_ms):
    recs = _journal(seed)
    one, many = DatasetWriter(tmp_path / "one", 5), DatasetWriter(tmp_path / "many", 5)
    a, b = (make_feed("binance", SYMBOLS, 5, interval_ms, w) for w in (one, many))

    for rec in recs:
        a.feed(rec)
    assert b.feed_many(recs) == len(recs)
    for feed, writer in ((a, one), (b, many)):
        feed.close()
        writer.publish()

    got, want = _tables(tmp_path / "many"), _tables(tmp_path / "one")
    assert len(want[("BTC-USDT", "book")]) > 50
    kinds = {row[1] for row in want[("BTC-USDT", "events")] + want[("ETH-USDT", "events")]}
    assert {"gap", "resync", "malformed", "connect", "disconnect"} <= kinds
    assert got == want
    assert (b.messages, b.gaps, b.malformed, b.last_ts) == (a.messages, a.gaps, a.malformed, a.last_ts)
