"""The recorder against the local exchange with every fault kind on (127.0.0.1 only)."""

import asyncio
import time

import numpy as np
import polars as pl
import pytest

from qfreplay.capture.normalize import normalize
from qfreplay.capture.recorder import Recorder
from qfreplay.config import load_config_dict
from qfreplay.errors import VenueError
from qfreplay.schema import FLAG_RESYNC
from qfreplay.venues.local import Faults, LocalExchange
from tests.fakes import FakeMarket

INSTRUMENTS = ["binance:BTC-USDT", "binance:ETH-USDT", "coinbase:BTC-USD"]
LEVELS = 5


def read(root, table):
    return pl.read_parquet(f"{root}/{table}/**/*.parquet", hive_partitioning=True)


async def record(out, faults, seconds, inject=(), interval_ms=100):
    market = FakeMarket(7, instruments=INSTRUMENTS, start_ns=time.time_ns())
    async with LocalExchange(seed=7, instruments=INSTRUMENTS, market=market, faults=faults) as ex:
        cfg = load_config_dict({"venues": ex.venue_config(), "record": {"levels": LEVELS, "interval_ms": interval_ms}})
        hooked = []
        rec = Recorder(cfg, INSTRUMENTS, out, on_book_row=lambda inst, row: hooked.append((inst, row)), stall_timeout=1.0, backoff=(0.05, 0.3), seed=1)

        async def injector():
            # faults are injected only once every book is synchronized (a loaded machine may take a
            # while to connect), and the recording then runs `seconds` past the first injection
            deadline = time.monotonic() + 20
            while {str(i) for i, _ in hooked} < set(INSTRUMENTS) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            end = time.monotonic() + seconds
            for delay, kind, venue in inject:
                await asyncio.sleep(delay)
                ex.inject(kind, venue)
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            rec.stop()

        if not inject:
            stats = await asyncio.wait_for(rec.run(duration=seconds), seconds + 15)
            return ex, stats, hooked
        task = asyncio.create_task(injector())
        try:
            stats = await asyncio.wait_for(rec.run(), seconds + 40)
        finally:
            task.cancel()
        return ex, stats, hooked


@pytest.fixture(scope="module")
def faulty_recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    faults = Faults(drop=0.02, disconnect=0.004, malformed=0.03, http_429=0.3, stall=0.0, stall_s=1.6, retry_after=0.3)
    inject = [(0.8, "drop", "binance"), (0.4, "drop", "coinbase"), (0.6, "stall", "coinbase"), (2.0, "disconnect", "binance"), (0.5, "malformed", None)]
    ex, stats, hooked = asyncio.run(record(out, faults, 6.0, inject))
    return out, ex, stats, hooked


def test_every_row_equals_the_true_book_at_its_seq(faulty_recording):
    out, ex, stats, hooked = faulty_recording
    book = read(out, "book")

    assert set(ex.faults_done) >= {"drop", "disconnect", "malformed", "429", "stall"}
    assert book.height == len(hooked) and book.height > 100
    assert set(book["symbol"]) == {"BTC-USDT", "ETH-USDT", "BTC-USD"}
    for venue, symbol, seq, bp, bs, ap, as_ in book.select("venue", "symbol", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz").iter_rows():
        truth = ex.true_book(venue, symbol, seq, LEVELS)
        assert truth is not None, (venue, symbol, seq)
        for mine, true in zip((bp, bs, ap, as_), truth):
            np.testing.assert_array_equal(np.array(mine, float), true)


def test_each_gap_or_disconnect_is_logged_and_followed_by_a_resync_row(faulty_recording):
    out, *_ = faulty_recording
    book, events = read(out, "book"), read(out, "events")

    kinds = set(events["kind"])
    assert {"connect", "disconnect", "gap", "resync", "malformed", "rate_limited"} <= kinds
    assert any("stalled" in d for d in events.filter(pl.col("kind") == "disconnect")["detail"])
    for (venue, symbol), ev in events.filter(pl.col("kind").is_in(["gap", "disconnect"])).group_by("venue", "symbol"):
        rows = book.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol)).sort("ts_recv")
        for ts in ev["ts_recv"]:
            after = rows.filter(pl.col("ts_recv") >= ts)
            if after.height:  # the recording may end before the book is rebuilt
                assert after["flags"][0] & FLAG_RESYNC, (venue, symbol, ts)


def test_normalize_over_the_journal_reproduces_every_table(faulty_recording, tmp_path):
    out, _, stats, hooked = faulty_recording

    normalize([out / "raw"], tmp_path)

    for table in ("book", "trades", "ticker", "events"):
        a, b = read(out, table), read(tmp_path, table)
        keys = ["venue", "symbol", "ts_recv"] + [c for c in ("seq", "trade_id", "kind", "detail") if c in a.columns]
        assert a.sort(keys).drop("date").equals(b.sort(keys).drop("date")), table
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*.tmp"))


def test_hook_rows_are_the_written_rows(tmp_path):
    ex, stats, hooked = asyncio.run(record(tmp_path, Faults(), 1.5, interval_ms=0))
    book = read(tmp_path, "book").sort("venue", "symbol", "ts_recv", "seq")

    hooked_sorted = sorted(((i.venue, i.symbol, r.ts_recv, r.seq, r.flags, r.bid_px.tolist()) for i, r in hooked))
    assert [tuple(x) for x in book.select("venue", "symbol", "ts_recv", "seq", "flags", "bid_px").iter_rows()] == hooked_sorted
    assert stats.counts["book"] == len(hooked) > 20


def test_http_451_stops_with_a_clear_error(tmp_path):
    with pytest.raises(VenueError, match="HTTP 451"):
        asyncio.run(record(tmp_path, Faults(restricted=True), 5.0))
    events = read(tmp_path, "events")
    assert "error" in set(events["kind"])
