"""What the app reads: results per instrument, re-runs, the dataset (cached per file), the data path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from qfreplay.app.source import Params, ResultsSource
from qfreplay.errors import DataError
from qfreplay.instruments import Instrument
from qfreplay.store import load_book, read_table, write_partitioned

BTC = Instrument("binance", "BTC-USDT")


def test_run_with_the_runs_own_parameters_reads_the_folder(market):
    source = ResultsSource(market["results"])

    run = source.run(source.defaults(BTC))

    assert run.origin == "results folder"
    assert run.summary == market["summary"]["instruments"]["binance:BTC-USDT"]
    assert len(run.signals["ts_recv"]) == run.summary["rows"]
    assert run.fills.num_rows == run.summary["fills"]
    assert set(run.fills.column("venue").to_pylist()) == {"binance"}


def test_rerun_with_the_same_parameters_reproduces_the_folder(market):
    source = ResultsSource(market["results"])
    ex = source.config.execution
    t0, t1 = source.span

    # an explicit full range is not the run's own Params, so this goes through the engine
    run = source.run(Params(BTC, t0, t1 + 1, ex.min_confidence, ex.position_size))

    assert run.origin == "re-run"
    assert run.summary == market["summary"]["instruments"]["binance:BTC-USDT"]


def test_rerun_with_other_parameters_changes_the_result(market):
    source = ResultsSource(market["results"])
    base = source.run(source.defaults(BTC)).summary

    strict = source.run(Params(BTC, None, None, 1.0, 0.01)).summary  # confidence never reaches 1.0
    bigger = source.run(Params(BTC, None, None, 0.6, 0.02)).summary
    t0, t1 = source.span
    half = source.run(Params(BTC, None, (t0 + t1) // 2, 0.6, 0.01)).summary

    assert base["fills"] > 0
    assert strict["fills"] == 0 and strict["total_pnl"] == 0.0
    assert bigger["fills"] == base["fills"]
    assert bigger["fees"] == pytest.approx(2 * base["fees"], rel=1e-3)
    assert 0 < half["rows"] < base["rows"]


def test_book_and_tables_come_from_the_dataset_named_in_the_config(market):
    source = ResultsSource(market["results"])

    book = source.book(BTC)
    trades = source.table("trades", BTC)

    expected = load_book(market["data"], BTC)
    assert np.array_equal(book.ts_recv, expected.ts_recv)
    assert np.array_equal(book.bid_px, expected.bid_px, equal_nan=True)
    assert trades.equals(read_table(market["data"], "trades", BTC))
    assert source.table("events", BTC).column("kind").to_pylist().count("gap") == 1


def test_new_dataset_files_are_picked_up_and_old_ones_not_reread(market, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(market["data"], data)
    source = ResultsSource(market["results"], data_dir=data)
    first = source.book(BTC)
    cache = source._files[("book", BTC)]
    old_parts = dict(cache.parts)

    later = first.slice(len(first) - 5, len(first))
    shifted = pa.Table.from_arrays(
        [pa.array(later.ts_recv + 3_600 * 10**9), pa.array(later.ts_event + 3_600 * 10**9), pa.array(later.seq + 10**6),
         *(pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), a.shape[1])
           for a in (later.bid_px, later.bid_sz, later.ask_px, later.ask_sz)), pa.array(later.flags)],
        names=["ts_recv", "ts_event", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz", "flags"])
    write_partitioned(data, "book", "binance", "BTC-USDT", shifted)

    grown = source.book(BTC)

    assert len(grown) == len(first) + 5
    assert np.all(np.diff(grown.ts_recv) >= 0)
    assert all(cache.parts[f] is old_parts[f] for f in old_parts)  # the earlier file was not read again


def test_relative_data_path_resolves_beside_the_results(market, tmp_path):
    # a project laid out like the repository: <root>/data/x and <root>/results/demo, config data: data/x
    root = tmp_path / "project"
    shutil.copytree(market["data"], root / "data" / "x")
    shutil.copytree(market["results"], root / "results" / "demo")
    summary_path = root / "results" / "demo" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["config"]["data"] = "data/x"
    summary_path.write_text(json.dumps(summary))

    source = ResultsSource(root / "results" / "demo")

    assert source.data_root == root / "data" / "x"


def test_missing_dataset_leaves_the_results_readable(market, tmp_path):
    shutil.copytree(market["results"], tmp_path / "r")
    summary_path = tmp_path / "r" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["config"]["data"] = str(tmp_path / "gone")
    summary_path.write_text(json.dumps(summary))

    source = ResultsSource(tmp_path / "r")

    assert source.data_root is None and source.book(BTC) is None
    assert source.run(source.defaults(BTC)).summary["fills"] == market["summary"]["instruments"]["binance:BTC-USDT"]["fills"]
    with pytest.raises(DataError, match="dataset"):
        source.run(Params(BTC, None, None, 0.9, 0.01))


def test_not_a_results_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a qfreplay results folder"):
        ResultsSource(tmp_path)


def test_reload_notices_a_rewritten_summary(market, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(market["results"], folder)
    source = ResultsSource(folder)
    assert source.reload() is False

    summary = json.loads((folder / "summary.json").read_text())
    summary["instruments"]["binance:BTC-USDT"]["fills"] += 1
    (folder / "summary.json").write_text(json.dumps(summary))

    assert source.reload() is True
    assert source.summary["instruments"]["binance:BTC-USDT"]["fills"] == summary["instruments"]["binance:BTC-USDT"]["fills"]
