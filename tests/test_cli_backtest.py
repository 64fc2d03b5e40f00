"""`qfreplay backtest` and `qfreplay query` through the CLI, including every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from qfreplay.cli import cli

RESULT_FILES = {"signals.parquet", "fills.parquet", "equity.parquet", "round_trips.parquet", "arbitrage.parquet",
                "summary.json", "results.duckdb"}


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path, small_dataset: Path) -> Path:
    return write_config(tmp_path / "cfg.yaml", f"data: {small_dataset}\nout: {tmp_path / 'out'}\n"
                        "signal: {max_spread_bps: 100}\n")


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_backtest_writes_every_result_and_prints_the_summary(config: Path, tmp_path: Path):
    result = run("backtest", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert "binance:BTC-USDT" in result.output and "coinbase:BTC-USD" in result.output
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == RESULT_FILES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["instruments"]["binance:BTC-USDT"]["rows"] == 600
    assert summary["data"]["rows"] == 1200
    assert pq.read_table(out / "equity.parquet").num_rows == 1200
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == {"signals", "fills", "equity", "round_trips", "arbitrage", "summary"}
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] == sum(
        s["fills"] for s in summary["instruments"].values())


def test_backtest_overrides_data_and_out(config: Path, tmp_path: Path, small_dataset: Path):
    result = run("backtest", "--config", str(config), "--out", str(tmp_path / "other"), "--quiet")

    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert (tmp_path / "other" / "summary.json").is_file()
    assert not (tmp_path / "out").exists()


def test_rerun_replaces_earlier_results(config: Path, tmp_path: Path):
    run("backtest", "--config", str(config), "--quiet")
    (tmp_path / "out" / "stale.txt").write_text("x")

    result = run("backtest", "--config", str(config), "--quiet")

    assert result.exit_code == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == RESULT_FILES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_query_runs_sql_over_results(config: Path, tmp_path: Path):
    run("backtest", "--config", str(config), "--quiet")

    result = run("query", str(tmp_path / "out"), "SELECT venue, count(*) AS n FROM equity GROUP BY venue ORDER BY venue", "--csv")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["venue,n", "binance,600", "coinbase,600"]


def test_query_is_read_only_and_reports_sql_errors(config: Path, tmp_path: Path):
    run("backtest", "--config", str(config), "--quiet")

    assert_one_line_error(run("query", str(tmp_path / "out"), "DROP TABLE fills"), "SQL error")
    assert_one_line_error(run("query", str(tmp_path / "out"), "SELEC 1"), "SQL error")
    assert_one_line_error(run("query", str(tmp_path / "nowhere"), "SELECT 1"), "nowhere")


@pytest.mark.parametrize(
    "text, needles",
    [
        ("bogus: 1\n", ["'bogus'"]),
        ("execution: {fill_model: magic}\n", ["execution.fill_model", "fixed", "book"]),
        ("execution: {latency_ms: soon}\n", ["execution.latency_ms"]),
        ("features: {levels: 0}\n", ["features.levels", "≥ 1"]),
        ("execution: {position_size: -1}\n", ["execution.position_size"]),
        ("signal: {imbalance_threshold: 2}\n", ["signal.imbalance_threshold"]),
        ("instruments: [kraken:BTC-USD]\n", ["instruments", "kraken"]),
        ("arbitrage: {fee_bps: {kraken: 3}}\n", ["arbitrage.fee_bps", "kraken"]),
        ("start: yesterday\n", ["start"]),
        ("execution: [1, 2]\n", ["execution"]),
        ("data: [unclosed\n", ["not valid YAML"]),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path: Path, small_dataset: Path, text: str, needles: list[str]):
    cfg = write_config(tmp_path / "bad.yaml", f"data: {small_dataset}\nout: {tmp_path / 'out'}\n" + text)

    result = run("backtest", "--config", str(cfg))

    assert_one_line_error(result, *needles)
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path: Path):
    assert_one_line_error(run("backtest", "--config", str(tmp_path / "nope.yaml")), "nope.yaml", "does not exist")


def test_missing_and_empty_data_folders(tmp_path: Path):
    missing = write_config(tmp_path / "a.yaml", f"data: {tmp_path / 'absent'}\nout: {tmp_path / 'out'}\n")
    (tmp_path / "empty").mkdir()
    empty = write_config(tmp_path / "b.yaml", f"data: {tmp_path / 'empty'}\nout: {tmp_path / 'out'}\n")

    assert_one_line_error(run("backtest", "--config", str(missing)), "absent", "does not exist")
    assert_one_line_error(run("backtest", "--config", str(empty)), "empty", "no book data")
    assert not (tmp_path / "out").exists()


def test_instrument_without_rows_in_range(tmp_path: Path, small_dataset: Path):
    unknown = write_config(tmp_path / "a.yaml", f"data: {small_dataset}\nout: {tmp_path / 'out'}\n"
                           "instruments: [binance:ETH-USDT]\n")
    out_of_range = write_config(tmp_path / "b.yaml", f"data: {small_dataset}\nout: {tmp_path / 'out'}\n"
                                "start: 2030-01-01T00:00:00Z\n")

    assert_one_line_error(run("backtest", "--config", str(unknown)), "binance:ETH-USDT")
    assert_one_line_error(run("backtest", "--config", str(out_of_range)), "binance:BTC-USDT", "2030-01-01")
    assert not (tmp_path / "out").exists()


def test_corrupt_parquet_is_named_and_nothing_is_left_behind(config: Path, tmp_path: Path, small_dataset: Path):
    victim = next((small_dataset / "book" / "venue=coinbase").rglob("*.parquet"))
    victim.write_bytes(b"PAR1 this is not parquet")

    result = run("backtest", "--config", str(config))

    assert_one_line_error(result, victim.name)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_refuses_to_replace_a_folder_that_is_not_results(config: Path, tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")

    assert_one_line_error(run("backtest", "--config", str(config)), "out")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_help_explains_every_command():
    result = run("--help")

    assert result.exit_code == 0
    for command in ("backtest", "query"):
        assert command in result.output
