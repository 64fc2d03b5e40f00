"""The synthetic market (``Market``) and the dataset ``simulate`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from qfreplay import simulate as sim
from qfreplay.errors import ConfigError
from qfreplay.instruments import Instrument
from qfreplay.schema import EVENTS_SCHEMA, FLAG_RESYNC, TICKER_SCHEMA, TRADES_SCHEMA, book_schema
from qfreplay.simulate import DepthUpdate, Market, Trade, simulate
from qfreplay.store import load_book, read_table

SECOND = 1_000_000_000
T0 = sim.START_NS
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
BTC_PAIR = [Instrument("binance", "BTC-USDT"), Instrument("coinbase", "BTC-USD")]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _valid(b) -> np.ndarray:
    return ~np.isnan(b.bid_px[:, 0]) & ~np.isnan(b.ask_px[:, 0]) & (b.bid_sz[:, 0] > 0) & (b.ask_sz[:, 0] > 0)


def _asof(b, ts: np.ndarray) -> np.ndarray:
    return np.searchsorted(b.ts_recv, ts, side="right") - 1


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    """Ninety seconds of the default market, recorded once for the dataset tests."""
    root = tmp_path_factory.mktemp("sim") / "data"
    counts = simulate(root, minutes=1.5, seed=3)
    return root, counts


# ----------------------------------------------------------------------------- Market


def test_same_seed_same_events_and_another_seed_differs():
    # Arrange
    a, b, c = Market(5), Market(5), Market(6)

    # Act
    ea, eb, ec = (m.advance(T0 + 5 * SECOND) for m in (a, b, c))

    # Assert
    assert ea == eb
    assert ea != ec
    assert a.book("coinbase", "ETH-USD") == b.book("coinbase", "ETH-USD")


def test_advance_in_any_chunks_gives_the_same_events_and_book():
    # Arrange
    whole, pieces = Market(9, BTC_PAIR), Market(9, BTC_PAIR)
    end = T0 + 8 * SECOND

    # Act
    events = whole.advance(end)
    chunked: list = []
    t = T0
    while t < end:
        t = min(t + 137_000_000, end)
        chunked += pieces.advance(t)

    # Assert
    assert chunked == events
    assert pieces.now == whole.now == end
    assert pieces.book("binance", "BTC-USDT") == whole.book("binance", "BTC-USDT")


def test_events_are_time_ordered_and_replaying_them_rebuilds_the_book():
    # Arrange
    market = Market(2, BTC_PAIR)
    start = {i: market.book(*i) for i in BTC_PAIR}
    books = {i: ({p: s for p, s in bids}, {p: s for p, s in asks}) for i, (bids, asks) in start.items()}

    # Act
    events = market.advance(T0 + 10 * SECOND)
    for ev in events:
        if isinstance(ev, DepthUpdate):
            for side, levels in zip(books[(ev.venue, ev.symbol)], (ev.bids, ev.asks)):
                for price, size in levels:
                    side.pop(price, None) if size == 0 else side.__setitem__(price, size)

    # Assert
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    assert all(T0 < e.ts <= T0 + 10 * SECOND for e in events)
    for inst in BTC_PAIR:
        bids, asks = market.book(*inst)
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert [p for p, _ in asks] == sorted(p for p, _ in asks)
        assert bids[0][0] < asks[0][0]
        assert dict(bids) == books[inst][0] and dict(asks) == books[inst][1]


def test_binance_sends_one_diff_per_100ms_and_coinbase_many_smaller_ones():
    # Arrange
    market = Market(4, BTC_PAIR)

    # Act
    events = market.advance(T0 + 20 * SECOND)

    # Assert
    diffs = {v: [e for e in events if isinstance(e, DepthUpdate) and e.venue == v] for v in ("binance", "coinbase")}
    gaps = np.diff([e.ts for e in diffs["binance"]])
    assert set(gaps.tolist()) == {100_000_000}
    assert all(e.ts % 1_000_000 == 0 for e in diffs["binance"])  # Binance stamps in ms
    assert 150 <= len(diffs["coinbase"]) <= 500  # about 16 a second
    size = lambda es: np.median([len(e.bids) + len(e.asks) for e in es])  # noqa: E731
    assert size(diffs["coinbase"]) < size(diffs["binance"])
    trades = [e for e in events if isinstance(e, Trade)]
    assert {t.side for t in trades} == {1, -1}
    assert all(np.diff([t.trade_id for t in trades if t.venue == "binance"]) > 0)


def test_books_are_deep_with_realistic_prices_and_spreads():
    # Arrange
    market = Market(8)

    # Act
    market.advance(T0 + 3 * SECOND)

    # Assert
    for inst in market.instruments:
        bids, asks = market.book(*inst)
        assert len(bids) >= 150 and len(asks) >= 150
        mid = (bids[0][0] + asks[0][0]) / 2
        assert 55_000 < mid < 70_000 if inst.symbol.startswith("BTC") else 2_300 < mid < 2_900
        assert 0 < asks[0][0] - bids[0][0] < 0.5
    bid_px, bid_sz, ask_px, ask_sz = market.top("binance", "BTC-USDT", 20)
    assert bid_px.shape == (20,) and np.all(np.diff(bid_px) < 0) and np.all(np.diff(ask_px) > 0)


def test_ticker_looks_like_a_24h_ticker_from_the_start():
    # Arrange
    market = Market(1)

    # Act
    t = market.ticker("binance", "BTC-USDT")

    # Assert
    assert set(t) == {"last", "open", "high", "low", "volume", "quote_volume", "change_pct"}
    assert t["low"] <= t["last"] <= t["high"]
    assert t["volume"] > 1_000 and t["quote_volume"] > 1e7
    assert t["change_pct"] == pytest.approx((t["last"] / t["open"] - 1) * 100, abs=1e-3)


def test_a_dislocation_opens_more_than_20_bps_between_venues():
    # Arrange: seed 12 dislocates Binance BTC by 49 bps after 26 s
    market = Market(12, BTC_PAIR)
    first = market.dislocations(T0 + 30 * 60 * SECOND)[0]

    # Act
    edges = []
    for step in range(1, 21):  # the first second of it
        market.advance(first["start"] + step * 50_000_000)
        (bb, _), (ba, _) = (side[0] for side in market.book("binance", "BTC-USDT"))
        (cb, _), (ca, _) = (side[0] for side in market.book("coinbase", "BTC-USD"))
        edges.append(max((cb - ba) / ba, (bb - ca) / ca) * 1e4)

    # Assert
    assert max(edges) > 20
    assert max(edges[:1]) < 20  # it opens, it was not there before


def test_unknown_instrument_is_a_config_error():
    with pytest.raises(ConfigError, match="SOL-USDT"):
        Market(1, [Instrument("binance", "SOL-USDT")])


# ----------------------------------------------------------------------------- the dataset


def test_every_table_has_the_contract_schema(dataset):
    # Arrange
    root, counts = dataset
    expected = {"book": book_schema(20), "trades": TRADES_SCHEMA, "ticker": TICKER_SCHEMA, "events": EVENTS_SCHEMA}

    # Act
    files = {name: sorted((root / name).rglob("*.parquet")) for name in expected}

    # Assert
    for name, schema in expected.items():
        assert len(files[name]) == 4  # one per instrument
        for f in files[name]:
            assert pq.read_schema(f).remove_metadata().equals(schema)
        assert sum(pq.ParquetFile(f).metadata.num_rows for f in files[name]) == counts[name]


def test_book_rows_follow_the_cadence_and_valid_rows_are_sorted_and_uncrossed(dataset):
    root, _ = dataset
    for inst in sim.DEFAULT_INSTRUMENTS:
        # Act
        b = load_book(root, inst)
        valid = _valid(b)

        # Assert
        assert np.all(np.diff(b.ts_recv) > 0) and np.all(np.diff(b.seq) > 0)
        intervals = b.ts_recv // 100_000_000
        assert len(np.unique(intervals)) == len(intervals)  # at most one row per 100 ms
        latency = b.ts_recv - b.ts_event
        assert latency.min() > 0 and np.median(latency) < 10_000_000
        assert (~valid).sum() == 1  # one injected glitch per book
        bp, ap = b.bid_px[valid], b.ask_px[valid]
        assert np.all(bp[:, 0] < ap[:, 0])
        assert np.all(np.diff(bp, axis=1) < 0) and np.all(np.diff(ap, axis=1) > 0)
        assert b.flags[0] == FLAG_RESYNC


def test_gaps_and_reconnects_are_logged_and_flag_the_next_row(dataset):
    root, _ = dataset
    for inst in sim.DEFAULT_INSTRUMENTS:
        # Act
        events = read_table(root, "events", inst).to_pylist()
        b = load_book(root, inst)
        kinds = [e["kind"] for e in events]

        # Assert
        assert kinds[0] == "connect"
        assert kinds.count("disconnect") == 1 and kinds.count("connect") == 2
        assert kinds.count("resync") == 1 + kinds.count("gap") + 1  # start, every gap, the reconnect
        assert int((b.flags & FLAG_RESYNC).astype(bool).sum()) == kinds.count("resync")
        for e in (e for e in events if e["kind"] == "resync"):
            after = np.searchsorted(b.ts_recv, e["ts_recv"])
            assert b.flags[after] == FLAG_RESYNC
    gaps = sum(read_table(root, "events", i).to_pandas()["kind"].eq("gap").sum() for i in sim.DEFAULT_INSTRUMENTS)
    assert gaps == 4  # two per venue


def test_cross_venue_mids_stay_close(dataset):
    root, _ = dataset
    for a, c in ((sim.DEFAULT_INSTRUMENTS[0], sim.DEFAULT_INSTRUMENTS[2]), (sim.DEFAULT_INSTRUMENTS[1], sim.DEFAULT_INSTRUMENTS[3])):
        # Arrange
        A, C = load_book(root, a), load_book(root, c)
        later = C.ts_recv > A.ts_recv[0]

        # Act
        ia = _asof(A, C.ts_recv[later])
        mid_a = (A.bid_px[ia, 0] + A.ask_px[ia, 0]) / 2
        mid_c = (C.bid_px[later, 0] + C.ask_px[later, 0]) / 2
        diff_bps = np.abs(mid_a - mid_c) / mid_c * 1e4

        # Assert
        assert np.nanmedian(diff_bps) < 3
        assert np.nanpercentile(diff_bps, 95) < 8


def test_trades_and_ticker_look_like_the_venues(dataset):
    root, _ = dataset
    for inst in sim.DEFAULT_INSTRUMENTS:
        # Act
        trades = read_table(root, "trades", inst)
        ticker = read_table(root, "ticker", inst)
        mid = np.nanmedian((load_book(root, inst).bid_px[:, 0] + load_book(root, inst).ask_px[:, 0]) / 2)

        # Assert
        side = trades.column("side").to_numpy()
        assert set(np.unique(side)) == {-1, 1}
        assert np.all(np.diff(trades.column("trade_id").to_numpy()) > 0)
        assert np.all(np.abs(trades.column("price").to_numpy() / mid - 1) < 0.01)
        assert 80 <= ticker.num_rows <= 90  # one a second, less the reconnect
        published = not np.isnan(ticker.column("open").to_numpy()).any()
        assert published == (inst.venue == "binance")  # Coinbase's ticker has no 24 h open


def test_the_same_arguments_write_the_same_bytes(tmp_path):
    # Act
    simulate(tmp_path / "a", minutes=0.25, seed=11)
    simulate(tmp_path / "b", minutes=0.25, seed=11)

    # Assert
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert list(a) == list(b) and a == b
    assert all(name.endswith("-sim11.parquet") for name in a)


def test_an_error_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    # Arrange
    real, calls = sim.write_partitioned, []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(sim, "write_partitioned", failing)

    # Act
    with pytest.raises(OSError, match="disk full"):
        simulate(tmp_path / "out", minutes=0.1)

    # Assert
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_config_errors_naming_the_option(tmp_path):
    with pytest.raises(ConfigError, match="minutes"):
        simulate(tmp_path / "x", minutes=0)
    with pytest.raises(ConfigError, match="levels"):
        simulate(tmp_path / "x", levels=0)
    with pytest.raises(ConfigError, match="2024-13"):
        sim.parse_time("2024-13-01")


def test_the_sample_dataset_has_arbitrage_after_fees():
    """The committed 30-minute sample: at least one point where one venue's bid beats the other's ask by > 2 × 10 bps."""
    if not SAMPLE.exists():
        pytest.skip("data/sample is not generated (qfreplay simulate --out data/sample --minutes 30 --seed 7)")
    for a, c in ((sim.DEFAULT_INSTRUMENTS[0], sim.DEFAULT_INSTRUMENTS[2]), (sim.DEFAULT_INSTRUMENTS[1], sim.DEFAULT_INSTRUMENTS[3])):
        # Arrange
        A, C = load_book(SAMPLE, a), load_book(SAMPLE, c)
        ts = np.union1d(A.ts_recv, C.ts_recv)
        ia, ic = _asof(A, ts), _asof(C, ts)
        ok = (ia >= 0) & (ic >= 0)
        ia, ic = ia[ok], ic[ok]

        # Act
        buy_a = (C.bid_px[ic, 0] - A.ask_px[ia, 0]) / A.ask_px[ia, 0]
        buy_c = (A.bid_px[ia, 0] - C.ask_px[ic, 0]) / C.ask_px[ic, 0]

        # Assert
        assert np.nanmax(np.fmax(buy_a, buy_c)) * 1e4 > 20


# ----------------------------------------------------------------------------- the command


def test_cli_writes_a_dataset_and_refuses_to_overwrite_it(tmp_path):
    # Arrange
    from qfreplay.cli import cli

    runner = CliRunner()
    out = tmp_path / "data"
    args = ["simulate", "--out", str(out), "--minutes", "0.1", "--seed", "2"]

    # Act
    first = runner.invoke(cli, args)
    again = runner.invoke(cli, args)
    forced = runner.invoke(cli, args + ["--force", "--quiet"])

    # Assert
    assert first.exit_code == 0, first.output
    assert f"wrote {out}" in first.output and "book" in first.output
    assert again.exit_code == 2
    assert again.output.strip().splitlines() == [f"error: output folder {str(out)!r} is not empty; pass --force to replace it"]
    assert forced.exit_code == 0 and forced.output == ""
    assert (out / "book" / "venue=coinbase" / "symbol=ETH-USD").is_dir()


def test_cli_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    # Arrange
    from qfreplay.cli import cli

    (tmp_path / "notes.txt").write_text("keep me")

    # Act
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path), "--minutes", "0.1", "--force"])

    # Assert
    assert result.exit_code == 2
    assert "notes.txt" in result.output
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_cli_rejects_a_bad_start_time(tmp_path):
    from qfreplay.cli import cli

    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "d"), "--start", "yesterday"])

    assert result.exit_code == 2
    assert "'yesterday' is not ISO 8601" in result.output
    assert not (tmp_path / "d").exists()



def test_interval_zero_writes_a_row_per_update(tmp_path):
    # Act
    simulate(tmp_path / "every", minutes=0.2, seed=4, interval_ms=0, levels=5)
    simulate(tmp_path / "cadence", minutes=0.2, seed=4, interval_ms=100, levels=5)

    # Assert
    every, cadence = (load_book(tmp_path / name, Instrument("coinbase", "BTC-USD")) for name in ("every", "cadence"))
    assert every.levels == 5
    assert len(every) > 1.3 * len(cadence)  # Coinbase sends ~13 updates a second, some 100 ms hold several
    assert len(np.unique(every.ts_recv // 100_000_000)) == len(cadence)  # the same intervals have rows
    assert np.all(np.diff(every.ts_recv) > 0)
