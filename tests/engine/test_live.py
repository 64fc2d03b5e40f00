"""``qfreplay live``'s engine: rows one at a time give exactly the backtest's results.

Replay parity (a dataset fed row by row, also out of order across venues), results readable while
the session runs, manual fills and parameter changes, and the end-to-end check: a live session
against the local exchange with faults, then ``run_backtest`` over what it recorded.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import T0, random_book, write_book
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from qfreplay.engine.live import LiveEngine, LiveSession, ReplaySource, run_live
from qfreplay.errors import ConfigError, DataError
from qfreplay.live_results import FANOUT, LiveResults
from qfreplay.results import dump_summary
from qfreplay.schema import RESULT_TABLES, SIGNALS_SCHEMA, book_schema
from qfreplay.store import read_table

S = 1_000_000_000
BTC_A, BTC_B, ETH_A, ETH_B = "binance:BTC-USDT", "coinbase:BTC-USD", "binance:ETH-USDT", "coinbase:ETH-USD"


def assert_same_table(got: pa.Table, want: pa.Table, name: str) -> None:
    """Same schema, same rows in the same order, floats bit-for-bit (NaN equal to NaN)."""
    assert got.schema.equals(want.schema), name
    assert got.num_rows == want.num_rows, f"{name}: {got.num_rows} rows, backtest {want.num_rows}"
    for col in want.column_names:
        a = got.column(col).to_numpy(zero_copy_only=False)
        b = want.column(col).to_numpy(zero_copy_only=False)
        same = np.array_equal(a, b, equal_nan=True) if a.dtype.kind == "f" else np.array_equal(a, b)
        assert same, f"{name}.{col} differs from the backtest"


def assert_same_results(results_dir: Path, summary: dict, cfg) -> dict:
    """The live results folder and summary equal a backtest over the same dataset; returns the summary."""
    bt = run_backtest(cfg, write=False, collect=True)
    for name in RESULT_TABLES:
        assert_same_table(pq.read_table(results_dir / f"{name}.parquet"), bt.tables[name], name)
    assert dump_summary(summary) == dump_summary(bt.summary)
    assert json.loads((results_dir / "summary.json").read_text()) == json.loads(dump_summary(bt.summary))
    return bt.summary


@pytest.fixture
def four_books(tmp_path: Path) -> Path:
    """Two assets on two venues, crossing UTC midnight, with invalid and RESYNC rows."""
    rng = np.random.default_rng(7)
    root = tmp_path / "data"
    t0 = T0 - 40 * S  # 40 s before 2024-08-08T00:00Z: two UTC days
    write_book(root, "binance", "BTC-USDT", random_book(rng, 900, levels=5, t0=t0, mid0=100.0))
    write_book(root, "coinbase", "BTC-USD", random_book(rng, 900, levels=5, t0=t0, mid0=100.01))
    write_book(root, "binance", "ETH-USDT", random_book(rng, 700, levels=5, t0=t0, mid0=50.0))
    write_book(root, "coinbase", "ETH-USD", random_book(rng, 700, levels=5, t0=t0, mid0=50.01))
    return root


def config(root: Path, out: Path, **sections):
    data = {
        "data": str(root), "out": str(out),
        # ETH-USD only in a pair: its features decide validity, it has no results of its own
        "instruments": [BTC_A, BTC_B, ETH_A],
        "arbitrage": {"pairs": [[BTC_A, BTC_B], [ETH_A, ETH_B], [BTC_A, ETH_B]], "fee_bps": {"binance": 0, "coinbase": 0}},
        "execution": {"latency_ms": 30, "cooldown_ms": 50},
    }
    data.update(sections)
    return load_config_dict(data)


def replay_rows(cfg) -> list:
    needed = list(dict.fromkeys(cfg.instrument_list + [i for p in cfg.pair_list for i in p]))
    return list(ReplaySource(cfg.data, needed, cfg.start_ns, cfg.end_ns).rows())


# ----------------------------------------------------------------------------- replay parity


def test_replay_session_equals_backtest_exactly(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out")
    needed = [cfg.instrument_list[0], cfg.instrument_list[1], cfg.instrument_list[2], cfg.pair_list[1][1]]

    result = run_live(cfg, source=ReplaySource(four_books, needed), refresh_s=0.05)

    summary = assert_same_results(result.results_dir, result.summary, cfg)
    assert summary["data"]["rows"] == 900 + 900 + 700
    assert summary["arbitrage"]["episodes"] > 0
    assert sum(s["fills"] for s in summary["instruments"].values()) > 0
    assert not (result.results_dir / "parts").exists()
    assert json.loads((result.results_dir / "live.json").read_text())["state"] == "finished"


def test_rows_out_of_order_across_venues_still_match(four_books: Path, tmp_path: Path):
    """Rows of different instruments arrive up to 0.8 s out of ts_recv order; each instrument in order."""
    cfg = config(four_books, tmp_path / "out", start="2024-08-07T23:59:45Z", end="2024-08-08T00:01:00Z")
    rng = random.Random(3)
    arrival: dict = {}

    def arrives(item) -> int:  # a random delay of up to 0.8 s, never reordering one instrument's rows
        inst, row = item
        t = max(arrival.get(inst, 0), row.ts_recv + rng.randint(0, 800_000_000))
        arrival[inst] = t
        return t

    delayed = sorted(((arrives(r), k, r) for k, r in enumerate(replay_rows(cfg))))
    delayed = [r for _, _, r in delayed]
    engine = LiveEngine(cfg, reorder_ms=1000)
    results = LiveResults(tmp_path / "out", engine.summary(), refresh_s=0.0)

    now = 0
    for n, (inst, row) in enumerate(delayed):
        now = max(now, row.ts_recv)
        engine.on_book_row(inst, row)
        if n % 37 == 0:
            engine.commit(now_ns=now)
            results.write(engine.drain(), engine.window.episodes(), engine.summary(), engine.status())
    summary = engine.finish()
    results.write(engine.drain(), engine.window.episodes(), summary, engine.status(), snapshot=False)
    results.finish(summary, engine.status())

    assert engine.window.late == 0 and engine.out_of_order == 0
    assert_same_results(tmp_path / "out", summary, cfg)


def test_rows_later_than_the_reorder_window_are_counted(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out")
    rows = replay_rows(cfg)
    late = sorted(rows, key=lambda r: r[1].ts_recv + 3 * S * (r[0].venue == "coinbase"))
    engine = LiveEngine(cfg, reorder_ms=500)

    for inst, row in late:
        engine.on_book_row(inst, row)
        engine.commit(now_ns=row.ts_recv)

    assert engine.window.late > 0
    assert engine.status()["late_rows"] == engine.window.late


def test_rows_outside_start_end_are_skipped_like_the_backtest(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out", start="2024-08-08T00:00:00Z", end="2024-08-08T00:00:30Z")
    needed = list(dict.fromkeys(cfg.instrument_list + [i for p in cfg.pair_list for i in p]))
    source = ReplaySource(four_books, needed)  # every row: the engine applies start/end itself

    result = run_live(cfg, source=source)

    assert result.status["skipped_rows"] > 0
    assert_same_results(result.results_dir, result.summary, cfg)


# ----------------------------------------------------------------------------- results while running


def test_results_are_readable_while_the_session_runs(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out")
    out = tmp_path / "out"
    needed = list(dict.fromkeys(cfg.instrument_list + [i for p in cfg.pair_list for i in p]))
    seen: list[tuple[int, int, int]] = []

    def read_mid_session(_summary: dict) -> None:
        summary = json.loads((out / "summary.json").read_text())
        signals = pq.read_table(out / "signals.parquet")
        assert signals.schema.equals(SIGNALS_SCHEMA)
        con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
        try:
            (n_db,) = con.execute("SELECT count(*) FROM signals").fetchone()
        finally:
            con.close()
        status = json.loads((out / "live.json").read_text())
        assert status["state"] == "running"
        seen.append((summary["data"]["rows"], signals.num_rows, n_db))

    # ~90 s of market replayed at 25x: about 4 s of wall time, refreshed every 0.2 s
    source = ReplaySource(four_books, needed, speed=25.0)
    session = LiveSession(cfg, source=source, refresh_s=0.2)
    session.on_flush = read_mid_session
    result = asyncio.run(session.run())

    growing = [s[0] for s in seen]
    assert len(set(growing)) >= 2 and growing == sorted(growing) and growing[-1] < 2500
    assert all(rows == n and rows == n_db for rows, n, n_db in seen)  # summary.json describes the files beside it
    assert_same_results(result.results_dir, result.summary, cfg)


def test_part_files_are_merged_and_keep_their_order(tmp_path: Path):
    results = LiveResults(tmp_path / "out", {"instruments": {}, "arbitrage": {"episodes": 0, "total_duration_ms": 0.0, "top": []},
                                             "config": {}, "data": {"start": 0, "end": 0, "rows": 0}}, refresh_s=1e9)
    n_writes = FANOUT * FANOUT + 7
    for k in range(n_writes):
        t = SIGNALS_SCHEMA.empty_table()
        t = pa.Table.from_pylist([{"venue": "binance", "symbol": "BTC-USDT", "ts_recv": T0 + k, "seq": k, "signal": 0, "valid": True}],
                                 schema=SIGNALS_SCHEMA)
        results.write([("signals", "2024-08-08", 0, t)], None, {}, {}, snapshot=False)

    files = list((tmp_path / "out" / "parts" / "signals" / "2024-08-08" / "000").glob("*.parquet"))
    assert len(files) == 1 + 7  # one level-2 part of 256 writes, then 7 fresh ones
    folder = results.parts[("signals", "2024-08-08", 0)]
    seqs = pa.concat_tables(list(folder.tables())).column("seq").to_pylist()
    assert seqs == list(range(n_writes))


# ----------------------------------------------------------------------------- the dashboard's controls


def test_manual_fill_is_priced_like_a_strategy_fill_and_recorded(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out", execution={"min_confidence": 1.0, "slippage_bps": 5, "fee_bps": 10})
    engine = LiveEngine(cfg)
    rows = [r for r in replay_rows(cfg) if str(r[0]) == BTC_A][:50]
    for inst, row in rows:
        engine.on_book_row(inst, row)
    book = engine.last_book[cfg.instrument_list[0]]

    fill = engine.manual_fill(BTC_A, 0.5, ts=int(book.ts_recv[0]) + 1)
    close = engine.manual_fill(BTC_A, -0.5, ts=int(book.ts_recv[0]) + 2)

    assert fill["price"] == pytest.approx(book.ask_px[0, 0] * (1 + 5e-4), rel=1e-15)
    assert fill["fee"] == pytest.approx(0.5 * fill["price"] * 1e-3, rel=1e-12)
    assert fill["position"] == 0.5 and close["position"] == 0.0
    tables = {name: t for name, _, _, t in engine.drain() if name in ("fills", "round_trips")}
    assert tables["fills"].column("qty").to_pylist()[-2:] == [0.5, -0.5]
    assert tables["round_trips"].num_rows == 1
    s = engine.summary()["instruments"][BTC_A]
    assert s["fills"] == 2 and s["round_trips"] == 1
    assert [i["kind"] for i in engine.status()["interventions"]] == ["manual_fill", "manual_fill"]


def test_manual_fill_errors_name_the_problem(four_books: Path, tmp_path: Path):
    engine = LiveEngine(config(four_books, tmp_path / "out"))
    with pytest.raises(ConfigError, match="coinbase:ETH-USD is not run"):
        engine.manual_fill(ETH_B, 1.0)
    with pytest.raises(DataError, match="no valid book of binance:BTC-USDT"):
        engine.manual_fill(BTC_A, 1.0)
    with pytest.raises(ConfigError, match="non-zero"):
        engine.manual_fill(BTC_A, 0.0)


def test_dashboard_calls_from_another_thread_land_in_the_results(four_books: Path, tmp_path: Path):
    import threading

    cfg = config(four_books, tmp_path / "out")
    needed = list(dict.fromkeys(cfg.instrument_list + [i for p in cfg.pair_list for i in p]))
    session = LiveSession(cfg, source=ReplaySource(four_books, needed, speed=40.0), refresh_s=0.2)
    done: dict = {}

    def dashboard() -> None:  # what the Panel server thread does
        while session.engine.last_book.get(cfg.instrument_list[0]) is None:
            threading.Event().wait(0.05)
        done["params"] = session.set_params(min_confidence=0.99)
        done["fill"] = session.manual_fill(BTC_A, -0.25)

    thread = threading.Thread(target=dashboard)
    thread.start()
    result = asyncio.run(session.run())
    thread.join(10)

    assert done["params"] == {"execution.min_confidence": 0.99}
    fills = pq.read_table(result.results_dir / "fills.parquet").to_pylist()
    assert any(f["qty"] == -0.25 and f["ts_fill"] == done["fill"]["ts_fill"] for f in fills)
    status = json.loads((result.results_dir / "live.json").read_text())
    assert [i["kind"] for i in status["interventions"]] == ["set_params", "manual_fill"]
    assert json.loads((result.results_dir / "summary.json").read_text())["config"]["execution"]["min_confidence"] == 0.99
    assert session.now_ns() == max(row.ts_recv for _, row in replay_rows(cfg))  # a replay's clock is the replayed time
    assert session.unpublished("book", BTC_A) is None  # a replay has everything on disk


def test_set_params_applies_from_the_next_row(four_books: Path, tmp_path: Path):
    cfg = config(four_books, tmp_path / "out")
    rows = [r for r in replay_rows(cfg) if str(r[0]) == BTC_A]
    engine = LiveEngine(cfg)
    for inst, row in rows[:300]:
        engine.on_book_row(inst, row)
    fills_before = engine.summary()["instruments"][BTC_A]["fills"]

    applied = engine.set_params(min_confidence=1.0, position_size=0.02, imbalance_threshold=0.3)
    for inst, row in rows[300:]:
        engine.on_book_row(inst, row)

    assert applied == {"execution.min_confidence": 1.0, "execution.position_size": 0.02, "signal.imbalance_threshold": 0.3}
    assert engine.cfg.execution.min_confidence == 1.0
    assert fills_before > 0
    assert engine.summary()["instruments"][BTC_A]["fills"] <= fills_before + 1  # a pending order may still fill
    with pytest.raises(ConfigError, match="arbitrage.max_staleness_ms"):
        engine.set_params(**{"arbitrage.max_staleness_ms": 10})
    with pytest.raises(ConfigError, match="min_confidence"):
        engine.set_params(min_confidence=2.0)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_live_against_the_local_exchange_with_faults_equals_a_backtest_of_its_recording(tmp_path: Path):
    from qfreplay.venues.local import Faults, LocalExchange

    instruments = [BTC_A, BTC_B, ETH_A, ETH_B]

    async def session() -> tuple:
        faults = Faults(drop=0.01, disconnect=0.002, malformed=0.005, http_429=0.3, retry_after=0.2)
        async with LocalExchange(seed=11, instruments=instruments, faults=faults, speed=2.0) as ex:
            cfg = load_config_dict({
                "data": str(tmp_path / "data"), "out": str(tmp_path / "out"), "instruments": instruments,
                "arbitrage": {"pairs": [[BTC_A, BTC_B], [ETH_A, ETH_B]], "fee_bps": {"binance": 0, "coinbase": 0}},
                "execution": {"latency_ms": 20},
                "record": {"levels": 10, "interval_ms": 50}, "venues": ex.venue_config(),
            })
            live = LiveSession(cfg, reorder_ms=1500, refresh_s=0.5)
            live.on_flush = lambda _s: buffered.append((live.unpublished("book", BTC_A), live.now_ns(), time.time_ns()))
            result = await live.run(duration=12)
            return cfg, result, dict(ex.faults_done)

    buffered: list = []
    cfg, result, faults_done = asyncio.run(session())

    assert faults_done.get("drop", 0) + faults_done.get("malformed", 0) > 0
    events = pa.concat_tables([read_table(cfg.data, "events", i) for i in cfg.instrument_list]).column("kind").to_pylist()
    assert {"gap", "resync", "malformed"} & set(events)
    assert result.status["late_rows"] == 0 and result.status["out_of_order_rows"] == 0
    summary = assert_same_results(result.results_dir, result.summary, cfg)
    assert all(s["rows"] > 50 for s in summary["instruments"].values())
    assert summary["arbitrage"]["episodes"] > 0
    lat = result.status["latency"]["engine_ms"]
    assert lat["rows"] == summary["data"]["rows"] and lat["p50"] < 5
    # the dashboard's view of rows recorded but not yet published (the recorder publishes hourly)
    book, now, wall = buffered[-1]
    assert book.schema.equals(book_schema(10)) and book.num_rows > 50 and abs(now - wall) < 1e9


@pytest.mark.slow
def test_a_user_strategy_live_against_the_local_exchange_equals_its_backtest(tmp_path: Path):
    from qfreplay.venues.local import Faults, LocalExchange

    repo = Path(__file__).resolve().parents[2]
    strategy = f"{repo}/examples/strategies/imbalance_hysteresis.py:imbalance_hysteresis"  # keeps state, reads position

    async def session() -> tuple:
        faults = Faults(drop=0.01, malformed=0.005, http_429=0.3, retry_after=0.2)
        async with LocalExchange(seed=5, instruments=[BTC_A, BTC_B], faults=faults, speed=2.0) as ex:
            cfg = load_config_dict({
                "data": str(tmp_path / "data"), "out": str(tmp_path / "out"), "instruments": [BTC_A, BTC_B],
                "arbitrage": {"pairs": [[BTC_A, BTC_B]]},
                "signal": {"strategy": strategy, "params": {"enter": 0.05, "exit": 0.0}},
                "record": {"levels": 10, "interval_ms": 50}, "venues": ex.venue_config(),
            })
            live = LiveSession(cfg, reorder_ms=1500, refresh_s=0.5)
            return cfg, await live.run(duration=8)

    cfg, result = asyncio.run(session())

    summary = assert_same_results(result.results_dir, result.summary, cfg)
    assert all(s["rows"] > 30 for s in summary["instruments"].values())
    assert sum(s["fills"] for s in summary["instruments"].values()) > 0
