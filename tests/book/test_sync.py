"""Binance snapshot + diff rules, Coinbase snapshots, crossed books and the row cadence."""

import numpy as np
import pytest

from qfreplay.book.cadence import RowCadence
from qfreplay.book.sync import BinanceBookSync, CoinbaseBookSync
from qfreplay.schema import FLAG_RESYNC
from qfreplay.venues.common import Depth

MS = 1_000_000


def depth(first, last, bids=(), asks=(), snapshot=False, ts_event=0):
    b = np.array(bids, float).reshape(-1, 2)
    a = np.array(asks, float).reshape(-1, 2)
    return Depth("BTCUSDT", snapshot, first, last, ts_event, b[:, 0], b[:, 1], a[:, 0], a[:, 1])


class Recorded:
    def __init__(self):
        self.rows, self.events, self.requests = [], [], []

    def sync(self, cls=BinanceBookSync, interval_ms=100, levels=2):
        return cls("BTCUSDT", levels, interval_ms, self.rows.append, lambda ts, k, d: self.events.append((ts, k)), self.requests.append)


def test_buffered_diffs_older_than_the_snapshot_are_dropped_and_the_rest_applied():
    rec = Recorded()
    sync = rec.sync()
    sync.on_diff(1 * MS, depth(90, 100, bids=[(10.0, 9.0)]))  # u <= lastUpdateId: dropped
    sync.on_diff(2 * MS, depth(101, 105, bids=[(10.0, 1.0)], ts_event=7))

    sync.on_snapshot(3 * MS, depth(103, 103, bids=[(10.0, 5.0), (9.0, 1.0)], asks=[(11.0, 2.0)], snapshot=True))
    sync.flush()

    assert [r.bid_sz[0] for r in rec.rows] == [1.0]
    row = rec.rows[0]
    assert (row.ts_recv, row.ts_event, row.seq, row.flags) == (3 * MS, 7, 105, FLAG_RESYNC)
    assert rec.events == [(3 * MS, "resync")]


def test_a_snapshot_older_than_the_first_buffered_diff_is_refetched():
    rec = Recorded()
    sync = rec.sync()
    sync.on_diff(1 * MS, depth(200, 210, bids=[(10.0, 1.0)]))

    sync.on_snapshot(2 * MS, depth(150, 150, bids=[(10.0, 5.0)], asks=[(11.0, 1.0)], snapshot=True))

    assert not sync.synced and rec.requests == ["BTCUSDT"] and rec.rows == []


def test_a_gap_emits_the_pending_row_logs_and_flags_the_first_row_after_the_rebuild():
    rec = Recorded()
    sync = rec.sync()
    sync.on_snapshot(1 * MS, depth(100, 100, bids=[(10.0, 5.0)], asks=[(11.0, 1.0)], snapshot=True))
    sync.on_diff(150 * MS, depth(101, 102, bids=[(10.0, 4.0)]))

    sync.on_diff(160 * MS, depth(110, 112, bids=[(10.0, 3.0)]))  # U > book id + 1
    sync.on_snapshot(400 * MS, depth(111, 111, bids=[(10.0, 2.0)], asks=[(11.0, 1.0)], snapshot=True))
    sync.on_diff(420 * MS, depth(113, 113, asks=[(11.0, 3.0)]))
    sync.flush()

    assert [(r.seq, r.flags, r.bid_sz[0]) for r in rec.rows] == [(100, 1, 5.0), (102, 0, 4.0), (113, 1, 3.0)]
    assert [k for _, k in rec.events] == ["resync", "gap", "resync"]
    assert rec.requests == ["BTCUSDT"]


def test_diffs_older_than_the_book_are_ignored():
    rec = Recorded()
    sync = rec.sync(interval_ms=0)
    sync.on_snapshot(1, depth(100, 100, bids=[(10.0, 5.0)], asks=[(11.0, 1.0)], snapshot=True))

    sync.on_diff(2, depth(95, 100, bids=[(10.0, 9.0)]))

    assert [r.bid_sz[0] for r in rec.rows] == [5.0]


def test_a_crossed_book_is_logged_never_emitted_and_rebuilt():
    rec = Recorded()
    sync = rec.sync(interval_ms=0)
    sync.on_snapshot(1, depth(100, 100, bids=[(10.0, 5.0)], asks=[(11.0, 1.0)], snapshot=True))

    sync.on_diff(2, depth(101, 101, bids=[(11.5, 1.0)]))

    assert len(rec.rows) == 1 and not sync.synced
    assert [k for _, k in rec.events] == ["resync", "resync"] and rec.requests == ["BTCUSDT"]


def test_coinbase_updates_wait_for_a_snapshot():
    rec = Recorded()
    sync = rec.sync(CoinbaseBookSync, interval_ms=0)

    sync.on_depth(1, depth(5, 5, bids=[(10.0, 1.0)]))
    sync.on_depth(2, depth(6, 6, bids=[(10.0, 2.0)], asks=[(12.0, 1.0)], snapshot=True, ts_event=9))
    sync.on_depth(3, depth(7, 7, asks=[(11.0, 4.0)], ts_event=10))

    assert [(r.seq, r.flags, r.ask_px[0], r.ts_event) for r in rec.rows] == [(6, 1, 12.0, 9), (7, 0, 11.0, 10)]


def test_cadence_emits_once_per_interval_at_its_end():
    c = RowCadence(100)

    assert c.mark(1_050 * MS) is False
    assert c.due_at == 1_100 * MS
    assert not c.due(1_099 * MS) and c.due(1_100 * MS)
    assert RowCadence(0).mark(5) is True


def _random_diffs(seed: int, n: int = 300):
    """A diff stream with stale messages, gaps, crossing updates and resnapshots."""
    rng = np.random.default_rng(seed)
    out, uid, ts = [], 100, 0
    for _ in range(n):
        ts += int(rng.integers(0, 80)) * MS
        r = rng.random()
        if r < 0.06:
            out.append(("snap", ts, depth(uid, uid, bids=[(99.0, 1.0), (98.0, 2.0)], asks=[(101.0, 1.0), (102.0, 3.0)], snapshot=True)))
            continue
        if r < 0.1:
            first, last = uid - 5, uid - 1  # older than the book
        else:
            first = uid + 1 if r > 0.12 else uid + 3  # a gap
            last = uid = first + int(rng.integers(0, 3))
        k = int(rng.integers(0, 6))
        bids = [(float(95 + rng.integers(0, 5) + 0.5 * rng.integers(0, 2)), float(rng.integers(0, 3))) for _ in range(k)]
        asks = [(float(101 + rng.integers(0, 5) + 0.5 * rng.integers(0, 2)), float(rng.integers(0, 3))) for _ in range(k)]
        if rng.random() < 0.02:
            bids.append((103.0, 1.0))  # crosses the book
        out.append(("diff", ts, depth(first, last, bids=bids, asks=asks, ts_event=ts + 7)))
    return out


def _run_of(diffs):
    from qfreplay.venues.common import DepthRun

    starts = [0]
    for d in diffs:
        starts += [starts[-1] + len(d.bid_px), starts[-1] + len(d.bid_px) + len(d.ask_px)]
    cat = lambda parts: np.concatenate([np.zeros(0), *parts])  # noqa: E731
    return DepthRun(
        "BTCUSDT", np.array([d.first_id for d in diffs], np.int64), np.array([d.last_id for d in diffs], np.int64),
        np.array([d.ts_event for d in diffs], np.int64), np.array(starts, np.int64),
        cat([np.concatenate([d.bid_px, d.ask_px]) for d in diffs]), cat([np.concatenate([d.bid_sz, d.ask_sz]) for d in diffs]),
    )


@pytest.mark.parametrize("interval_ms", [0, 100])
@pytest.mark.parametrize("seed", range(6))
def test_runs_of_diffs_give_the_rows_and_events_of_one_by_one(seed, interval_ms):
    stream = _random_diffs(seed)
    one, runs = Recorded(), Recorded()
    a, b = (
        BinanceBookSync("BTCUSDT", 3, interval_ms, rec.rows.append, lambda ts, k, d, rec=rec: rec.events.append((ts, k, d)), rec.requests.append)
        for rec in (one, runs)
    )
    rng = np.random.default_rng(seed + 100)

    pending: list = []
    for kind, ts, d in stream:
        if kind == "snap":
            a.on_snapshot(ts, d)
            if pending:
                b.on_diffs(np.array([t for t, _ in pending], np.int64), _run_of([x for _, x in pending]))
                pending = []
            b.on_snapshot(ts, d)
            continue
        a.on_diff(ts, d)
        pending.append((ts, d))
        if rng.random() < 0.2:
            b.on_diffs(np.array([t for t, _ in pending], np.int64), _run_of([x for _, x in pending]))
            pending = []
    if pending:
        b.on_diffs(np.array([t for t, _ in pending], np.int64), _run_of([x for _, x in pending]))
    a.flush()
    b.flush()

    def rows(rec):
        return [(r.ts_recv, r.ts_event, r.seq, r.flags, *(np.asarray(x).tobytes() for x in r[4:])) for r in rec.rows]

    assert len(one.rows) > 20 and {k for _, k, _ in one.events} >= {"gap", "resync"}
    assert any("crossed" in d for _, _, d in one.events) or seed == 2
    assert rows(runs) == rows(one)
    assert runs.events == one.events and runs.requests == one.requests
