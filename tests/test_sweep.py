"""Parameter sweeps: grid files, equality with single backtests, OOS scoring, local and multi-process Dask clusters, CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from qfreplay.cli import cli
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from qfreplay.errors import ConfigError, StrategyError
from qfreplay.instruments import Instrument
from qfreplay.sweep import METRICS, Segment, flat_summary, local_cluster, parse_grid, plan_tasks, run_sweep, run_task
from tests.factories import T0, random_book, write_book

REPO = Path(__file__).resolve().parents[1]
HYSTERESIS = f"{REPO}/examples/strategies/imbalance_hysteresis.py:imbalance_hysteresis"
INSTRUMENTS = ["binance:BTC-USDT", "coinbase:BTC-USD"]
DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """Two instruments, each with rows on two UTC days."""
    root = tmp_path_factory.mktemp("sweep") / "data"
    rng = np.random.default_rng(17)
    for day in range(2):
        t0 = T0 + day * DAY + 23 * 3600 * 10**9
        write_book(root, "binance", "BTC-USDT", random_book(rng, 400, levels=4, t0=t0, mid0=100.0))
        write_book(root, "coinbase", "BTC-USD", random_book(rng, 400, levels=4, t0=t0, mid0=100.02))
    return root


def base_config(root: Path, **sections):
    data = {"data": str(root), "out": str(root.parent / "results"), "instruments": INSTRUMENTS,
            "arbitrage": {"pairs": []}, "signal": {"strategy": HYSTERESIS, "params": {"alpha": 0.2, "enter": 0.3, "exit": 0.05}},
            "execution": {"flatten_on_neutral": True}}
    data.update(sections)
    return load_config_dict(data)


GRID = {"signal.params.enter": [0.2, 0.4], "execution.latency_ms": [0, 150], "features.levels": [1, 4]}


def metrics_of(summary: dict, instrument: str, prefix: str = "") -> dict:
    return {prefix + k: v for k, v in flat_summary(Instrument.parse(instrument), summary["instruments"][instrument]).items()}


# ----------------------------------------------------------------------------- grid files


def test_grid_lists_ranges_nesting_and_single_values():
    grid = parse_grid({
        "execution": {"latency_ms": {"from": 0, "to": 100, "step": 50}, "fill_model": ["fixed", "book"]},
        "signal.params.enter": {"from": 0.1, "to": 0.3, "num": 3},
        "features.levels": 5,
    })

    assert grid.axes == {"execution.latency_ms": (0, 50, 100), "execution.fill_model": ("fixed", "book"),
                         "signal.params.enter": (0.1, 0.2, 0.3), "features.levels": (5,)}
    assert len(grid) == 18
    assert grid.points()[:2] == [
        {"execution.latency_ms": 0, "execution.fill_model": "fixed", "signal.params.enter": 0.1, "features.levels": 5},
        {"execution.latency_ms": 0, "execution.fill_model": "fixed", "signal.params.enter": 0.2, "features.levels": 5},
    ]


def test_float_range_includes_its_end():
    assert parse_grid({"signal.params.exit": {"from": 0.05, "to": 0.25, "step": 0.05}}).axes == {
        "signal.params.exit": (0.05, 0.1, 0.15, 0.2, 0.25)}


@pytest.mark.parametrize("data, message", [
    ({"data": ["a", "b"]}, "grid: key 'data' cannot be swept; grid keys are config keys under features., signal., execution."),
    ({"execution.latency_ms": []}, "grid: key 'execution.latency_ms' has no values"),
    ({"execution.latency_ms": [0, 0]}, "grid: key 'execution.latency_ms' lists a value twice"),
    ({"execution.latency_ms": {"from": 0, "to": 10}},
     "grid: key 'execution.latency_ms': a range is {from: A, to: B, step: S} or {from: A, to: B, num: N}"),
    ({"execution.latency_ms": {"from": 10, "to": 0, "step": 1}}, "grid: key 'execution.latency_ms': range 'to' (0) is below 'from' (10)"),
    ({"execution.latency_ms": {"from": 0, "to": 10, "step": 0}},
     "grid: key 'execution.latency_ms': range 'step' must be a number > 0 (got 0)"),
    ([1, 2], "grid: expected a mapping of config keys to lists of values, e.g. 'execution.latency_ms: [0, 50]'"),
])
def test_bad_grids_are_one_line_errors(data, message):
    with pytest.raises(ConfigError) as info:
        parse_grid(data)
    assert str(info.value) == message


def test_a_bad_value_names_the_point_and_the_key(market):
    with pytest.raises(ConfigError) as info:
        run_sweep(base_config(market), parse_grid({"execution.latency_ms": [0, -5]}), workers=0, write=False)
    assert str(info.value) == "grid: point execution.latency_ms=-5: config key 'execution.latency_ms' must be ≥ 0.0 (got -5)"


def test_an_undeclared_strategy_parameter_fails_before_any_work(market):
    with pytest.raises(StrategyError) as info:
        run_sweep(base_config(market), parse_grid({"signal.params.entr": [0.1]}), workers=0, write=False)
    assert str(info.value) == (f"strategy '{HYSTERESIS}' has no parameter 'entr'; "
                               "its parameters: alpha, enter, exit, max_spread_bps, confidence")


# ----------------------------------------------------------------------------- results equal single backtests


def test_each_row_equals_a_backtest_of_its_point(market):
    cfg = base_config(market)
    grid = parse_grid({"execution.latency_ms": [0, 150], "features.levels": [1, 4], "execution.fill_model": ["fixed", "book"]})

    result = run_sweep(cfg, grid, workers=0, write=False)

    rows = result.rows.to_pylist()
    assert [(r["point"], r["venue"]) for r in rows[:3]] == [(0, "binance"), (0, "coinbase"), (1, "binance")]
    assert len(rows) == 8 * 2
    for point, values in enumerate(grid.points()):
        summary = run_backtest(cfg.with_overrides(values), write=False).summary
        for row, instrument in zip(rows[2 * point: 2 * point + 2], INSTRUMENTS):
            assert {k: row[k] for k in grid.keys} == values
            assert {k: row[k] for k in METRICS} == metrics_of(summary, instrument), values
    assert sum(r["fills"] for r in rows) > 100


def test_points_aggregate_over_instruments_and_rank(market):
    result = run_sweep(base_config(market), parse_grid(GRID), workers=0, write=False, metric="max_drawdown", top=3)

    rows = result.rows.to_pylist()
    points = result.points.to_pylist()
    first = [r for r in rows if r["point"] == 0]
    assert points[0]["total_pnl"] == pytest.approx(sum(r["total_pnl"] for r in first))
    assert points[0]["fills"] == sum(r["fills"] for r in first)
    assert points[0]["max_drawdown"] == max(r["max_drawdown"] for r in first)
    assert points[0]["avg_pnl_per_round_trip"] == pytest.approx(
        sum(r["realized_pnl"] for r in first) / sum(r["round_trips"] for r in first))
    drawdowns = sorted(p["max_drawdown"] for p in points)
    assert [b["max_drawdown"] for b in result.best] == drawdowns[:3]  # lower is better for drawdown


def test_oos_scores_equal_backtests_of_the_two_parts(market):
    cfg = base_config(market)
    grid = parse_grid({"signal.params.enter": [0.2, 0.4]})

    result = run_sweep(cfg, grid, workers=0, write=False, oos=0.25)

    split = result.info["split_ts"]
    assert T0 + DAY < split < T0 + 2 * DAY  # three quarters into the second day's rows
    for row in result.rows.to_pylist():
        point_cfg = cfg.with_overrides({"signal.params.enter": row["signal.params.enter"]})
        instrument = f"{row['venue']}:{row['symbol']}"
        in_sample = metrics_of(run_backtest(point_cfg.replace(end=split), write=False).summary, instrument)
        out_sample = metrics_of(run_backtest(point_cfg.replace(start=split), write=False).summary, instrument, "oos_")
        assert {k: row[k] for k in in_sample} == in_sample
        assert {k: row[k] for k in out_sample} == out_sample
        assert row["rows"] + row["oos_rows"] == 800


def test_progress_adds_up_to_the_grid_points(market):
    cfg = base_config(market)
    points = [(i, {}, cfg.with_overrides(p)) for i, p in enumerate(parse_grid(GRID).points())]
    tasks = plan_tasks(str(market), cfg.instrument_list, points, (Segment("", None, None),), chunks=3)
    reported = []

    for task in tasks:
        run_task(task, reported.append)

    assert len(tasks) == 2 * 2 * 3  # instruments x levels x chunks
    assert sum(reported) == pytest.approx(8)


# ----------------------------------------------------------------------------- Dask clusters


@pytest.fixture(scope="module")
def in_process(market):
    return run_sweep(base_config(market), parse_grid(GRID), workers=0, write=False, oos=0.3)


def test_local_cluster_with_one_and_two_workers_equal_in_process(market, in_process, tmp_path):
    from distributed import Client

    cfg = base_config(market)
    with local_cluster(1) as cluster, Client(cluster) as client:
        http = cluster.scheduler.http_server
        assert http.address == "127.0.0.1"
        with pytest.raises(urllib.error.HTTPError):  # no dashboard
            urllib.request.urlopen(f"http://127.0.0.1:{http.port}/status", timeout=10)
        one = run_sweep(cfg, parse_grid(GRID), client=client, out=tmp_path / "one", oos=0.3)
        cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        two = run_sweep(cfg, parse_grid(GRID), client=client, out=tmp_path / "two", oos=0.3)

    assert (one.info["workers"], two.info["workers"]) == (1, 2)
    assert two.info["tasks"] >= 2 * two.info["workers"]  # every worker has work
    assert one.rows.equals(in_process.rows) and two.rows.equals(in_process.rows)
    assert one.points.equals(in_process.points) and two.points.equals(in_process.points)
    # what was written is what was returned
    assert pq.read_table(tmp_path / "two" / "sweep.parquet").equals(in_process.rows)
    with duckdb.connect(str(tmp_path / "two" / "results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), sum(oos_fills) FROM sweep").fetchone() == (
            16, sum(in_process.rows.column("oos_fills").to_pylist()))
        assert con.execute("SELECT count(*) FROM points").fetchone() == (8,)
    info = json.loads((tmp_path / "two" / "sweep.json").read_text())
    assert info["best"][0]["point"] == in_process.best[0]["point"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, as a user starts them by hand."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask")) if Path(sys.executable).with_name("dask").exists() else "dask"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(tmp_path / "dask.log", "w")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)]
    for name in ("w1", "w2"):
        procs.append(subprocess.Popen(
            [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
             "--no-dashboard", "--no-nanny", "--name", name], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
    try:
        yield address
    finally:
        for p in procs:  # workers run without a nanny, so nothing outlives these processes
            p.kill()
            p.wait()
        log.close()


def test_multi_process_cluster_equals_in_process(market, in_process, dask_cluster):
    from distributed import Client

    deadline = time.monotonic() + 60
    while True:  # the scheduler takes a moment to listen
        try:
            client = Client(dask_cluster, timeout="5s")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with client:
        client.wait_for_workers(2, timeout=120)

    result = run_sweep(base_config(market), parse_grid(GRID), scheduler=dask_cluster, write=False, oos=0.3)

    assert result.info["workers"] == 2
    assert result.rows.equals(in_process.rows)
    assert result.points.equals(in_process.points)


# ----------------------------------------------------------------------------- CLI


def _files(market: Path, tmp_path: Path, grid: str, strategy: str = HYSTERESIS) -> tuple[Path, Path]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {market}\nout: {tmp_path / 'results'}\ninstruments: [{', '.join(INSTRUMENTS)}]\n"
                   f"arbitrage: {{pairs: []}}\nsignal: {{strategy: '{strategy}'}}\n")
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(grid)
    return cfg, grid_file


def test_cli_sweep_writes_the_folder_and_prints_the_best(market, tmp_path):
    cfg, grid = _files(market, tmp_path, "signal.params.enter: [0.2, 0.4]\nexecution:\n  latency_ms: {from: 0, to: 150, step: 150}\n")

    result = CliRunner().invoke(cli, ["sweep", "--config", str(cfg), "--grid", str(grid), "--workers", "0",
                                      "--metric", "sharpe", "--top", "2"])

    assert result.exit_code == 0, result.output
    assert "Best 2 of 4 points by sharpe (over 2 instruments)" in result.output
    assert sorted(p.name for p in (tmp_path / "results-sweep").iterdir()) == [
        "points.parquet", "results.duckdb", "sweep.json", "sweep.parquet"]


@pytest.mark.parametrize("grid, args, message", [
    ("execution.latncy_ms: [0, 50]\n", [], "error: grid file '{grid}': point execution.latncy_ms=0: unknown config key 'execution.latncy_ms'"),
    ("execution.latency_ms: [0]\n", ["--metric", "pnl"], "error: --metric 'pnl' is not a sweep metric; choose one of "
     + ", ".join(METRICS)),
    ("execution.latency_ms: [0]\n", ["--oos", "1.5"], "error: --oos must be a fraction between 0 and 1 (got 1.5)"),
    ("execution.latency_ms: [0]\n", ["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
     "error: --workers sizes the local cluster; with --scheduler the cluster's own workers are used"),
])
def test_cli_sweep_errors_are_one_line_and_write_nothing(market, tmp_path, grid, args, message):
    cfg, grid_file = _files(market, tmp_path, grid)

    extra = args if "--scheduler" in args else ["--workers", "0", *args]
    result = CliRunner().invoke(cli, ["sweep", "--config", str(cfg), "--grid", str(grid_file), *extra])

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [message.format(grid=grid_file)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "grid.yaml"]


def test_cli_sweep_with_a_broken_strategy_writes_nothing(market, tmp_path):
    strategy = tmp_path / "broken.py"
    strategy.write_text("from numba import njit\n\n@njit(cache=True)\n"
                        "def rule(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):\n"
                        "    return 1, feats.mid\n")
    cfg, grid_file = _files(market, tmp_path, "execution.latency_ms: [0, 50]\n", f"{strategy}:rule")

    result = CliRunner().invoke(cli, ["sweep", "--config", str(cfg), "--grid", str(grid_file)])

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: strategy '{strategy}:rule' does not compile: {strategy} line 5: "
        "Unknown attribute 'mid' of type array(float64, 1d, C)"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["broken.py", "cfg.yaml", "grid.yaml"]
