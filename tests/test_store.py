"""Dataset layer: hive paths, atomic writes, Parquet round trips of every table, loading into numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from hypothesis import given, settings, strategies as st

from qfreplay.instruments import Instrument, normalize_symbol
from qfreplay.schema import EVENTS_SCHEMA, TICKER_SCHEMA, TRADES_SCHEMA
from qfreplay.store import (book_arrays, date_of, list_instruments, load_book, partition_dates, read_table,
                            write_partitioned)
from tests.factories import T0, book_table

DAY = 86_400_000_000_000
settings.register_profile("store", max_examples=25, deadline=None)


def test_symbols_normalize_to_base_quote():
    assert normalize_symbol("BTCUSDT") == "BTC-USDT"
    assert normalize_symbol("btc-usd") == "BTC-USD"
    assert normalize_symbol("ETHFDUSD") == "ETH-FDUSD"
    assert str(Instrument.parse("binance:ethusdt")) == "binance:ETH-USDT"


def test_rows_are_split_by_utc_date_of_ts_recv(tmp_path: Path):
    ts = [T0 + DAY - 1, T0 + DAY, T0 + DAY + 5]
    px = np.array([[100.0, 99.0]] * 3)
    table = book_table(ts, px, np.ones((3, 2)), px + 2, np.ones((3, 2)))

    files = write_partitioned(tmp_path, "book", "binance", "BTC-USDT", table)

    assert [f.parent.name for f in files] == ["date=2024-08-08", "date=2024-08-09"]
    assert partition_dates(tmp_path, "book", "binance", "BTC-USDT") == ["2024-08-08", "2024-08-09"]
    assert partition_dates(tmp_path, "book", "binance", "BTC-USDT", start=T0 + DAY) == ["2024-08-09"]
    assert list_instruments(tmp_path) == [Instrument("binance", "BTC-USDT")]
    assert not list(tmp_path.rglob(".*"))  # no temp files left
    assert date_of(T0) == "2024-08-08"


def test_load_book_sorts_by_ts_then_seq_and_applies_bounds(tmp_path: Path):
    px = np.array([[100.0], [101.0], [102.0], [103.0]])
    write_partitioned(tmp_path, "book", "coinbase", "BTC-USD",
                      book_table([T0 + 30, T0 + 10, T0 + 10, T0 + 40], px, np.ones((4, 1)), px + 1, np.ones((4, 1)),
                                 seq=[4, 3, 2, 5]))

    book = load_book(tmp_path, Instrument("coinbase", "BTC-USD"), start=T0 + 10, end=T0 + 40)

    assert book.ts_recv.tolist() == [T0 + 10, T0 + 10, T0 + 30]
    assert book.seq.tolist() == [2, 3, 4]
    assert book.bid_px[:, 0].tolist() == [102.0, 101.0, 100.0]
    assert book.bid_px.flags["C_CONTIGUOUS"] and book.bid_px.shape == (3, 1)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
maybe_nan = st.one_of(finite, st.just(float("nan")))


@settings(settings.get_profile("store"))
@given(n=st.integers(1, 30), levels=st.integers(1, 6), data=st.data())
def test_book_round_trip(tmp_path_factory, n, levels, data):
    root = tmp_path_factory.mktemp("rt")
    ts = sorted(data.draw(st.lists(st.integers(T0, T0 + DAY // 2), min_size=n, max_size=n)))
    arrs = [np.array(data.draw(st.lists(maybe_nan, min_size=n * levels, max_size=n * levels))).reshape(n, levels)
            for _ in range(4)]
    flags = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    table = book_table(ts, *arrs, seq=np.arange(n), flags=flags)

    write_partitioned(root, "book", "binance", "BTC-USDT", table)
    back = book_arrays(read_table(root, "book", Instrument("binance", "BTC-USDT")))

    assert back.ts_recv.tolist() == ts
    assert back.flags.tolist() == flags
    for got, want in zip((back.bid_px, back.bid_sz, back.ask_px, back.ask_sz), arrs):
        np.testing.assert_array_equal(got, want)


def _table_strategy(schema: pa.Schema):
    cols = {}
    for f in schema:
        if f.name == "ts_recv":
            cols[f.name] = st.integers(T0, T0 + DAY - 1)
        elif pa.types.is_integer(f.type):
            lo = -1 if f.type == pa.int8() else 0
            cols[f.name] = st.integers(lo, 1 if f.type == pa.int8() else 2**40)
        elif pa.types.is_floating(f.type):
            cols[f.name] = maybe_nan
        else:
            cols[f.name] = st.text(max_size=20)
    return st.lists(st.fixed_dictionaries(cols), min_size=1, max_size=20)


@settings(settings.get_profile("store"))
@given(data=st.data())
def test_trades_ticker_events_round_trip(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("rt")
    for name, schema in (("trades", TRADES_SCHEMA), ("ticker", TICKER_SCHEMA), ("events", EVENTS_SCHEMA)):
        rows = sorted(data.draw(_table_strategy(schema)), key=lambda r: r["ts_recv"])
        table = pa.Table.from_pylist(rows, schema=schema)

        write_partitioned(root, name, "coinbase", "ETH-USD", table)
        back = read_table(root, name, Instrument("coinbase", "ETH-USD"))

        assert back.schema == schema
        assert back.to_pylist() == [r for r in rows] or _nan_equal(back.to_pylist(), rows)


def _nan_equal(a: list[dict], b: list[dict]) -> bool:
    def norm(v):
        return "nan" if isinstance(v, float) and v != v else v
    return [{k: norm(v) for k, v in r.items()} for r in a] == [{k: norm(v) for k, v in r.items()} for r in b]
