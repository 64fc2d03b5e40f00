"""``qfreplay live`` through the CLI: replay parity, bad input, and a recording process stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from qfreplay.cli import cli
from qfreplay.config import load_config
from qfreplay.engine.backtest import run_backtest
from qfreplay.results import dump_summary
from qfreplay.schema import RESULT_TABLES
from qfreplay.venues.local import Faults, LocalExchange
from tests.fakes import served_in_thread

REPO = Path(__file__).resolve().parents[1]
FINAL_FILES = {f"{n}.parquet" for n in RESULT_TABLES} | {"summary.json", "results.duckdb", "live.json"}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def assert_same_as_backtest(config: Path, data: Path, out: Path) -> dict:
    """Every result table and the summary equal a backtest of ``data`` with the same config."""
    cfg = load_config(config).replace(data=str(data), out=str(out))
    bt = run_backtest(cfg, write=False, collect=True)
    assert json.loads((out / "summary.json").read_text()) == json.loads(dump_summary(bt.summary))
    for name in RESULT_TABLES:
        got, want = pq.read_table(out / f"{name}.parquet"), bt.tables[name]
        assert got.num_rows == want.num_rows, name
        assert got.to_pylist() == want.to_pylist() or _nan_equal(got, want), name
    return bt.summary


def _nan_equal(a, b) -> bool:
    import numpy as np

    for col in b.column_names:
        x, y = a.column(col).to_numpy(zero_copy_only=False), b.column(col).to_numpy(zero_copy_only=False)
        if not (np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)):
            return False
    return True


def test_live_replay_of_a_dataset_equals_its_backtest(tmp_path: Path, small_dataset: Path):
    config = write_config(tmp_path / "cfg.yaml", {"out": str(tmp_path / "out"), "signal": {"max_spread_bps": 100}})

    result = run("live", "--config", str(config), "--replay", str(small_dataset), "--speed", "0", "--no-dashboard")

    assert result.exit_code == 0, result.output
    assert "Live session summary" in result.output
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == FINAL_FILES
    summary = assert_same_as_backtest(config, small_dataset, out)
    assert summary["data"]["rows"] == 1200
    assert json.loads((out / "live.json").read_text())["state"] == "finished"


def test_live_bad_input_is_one_line(tmp_path: Path, small_dataset: Path):
    missing = run("live", "--config", str(tmp_path / "nope.yaml"), "--no-dashboard")
    assert missing.exit_code == 2 and missing.output.strip().startswith("error: config file")
    assert "Traceback" not in missing.output

    config = write_config(tmp_path / "cfg.yaml", {"out": str(tmp_path / "out"), "data": str(tmp_path / "out" / "data")})
    inside = run("live", "--config", str(config), "--no-dashboard", "--duration", "1")
    assert inside.exit_code == 2
    assert inside.output.strip().splitlines() == [
        f"error: the dataset folder '{tmp_path / 'out' / 'data'}' must not lie inside the results folder "
        f"'{tmp_path / 'out'}' (which is replaced at the end)"]


@pytest.fixture(scope="module")
def exchange():
    """The simulator on the local exchange, with faults, served from a background thread."""
    ex = LocalExchange(seed=3, instruments=["binance:BTC-USDT", "coinbase:BTC-USD"],
                       faults=Faults(drop=0.01, malformed=0.005, http_429=0.3, retry_after=0.2))
    with served_in_thread(ex) as served:
        yield served


@pytest.mark.slow
def test_sigterm_ends_a_recording_session_with_complete_results(tmp_path: Path, exchange):
    data, out = tmp_path / "data", tmp_path / "out"
    config = write_config(tmp_path / "live.yaml", {
        "data": str(data), "out": str(out), "instruments": ["binance:BTC-USDT", "coinbase:BTC-USD"],
        "arbitrage": {"fee_bps": {"binance": 0, "coinbase": 0}},
        "record": {"levels": 10, "interval_ms": 100}, "venues": exchange.venue_config(),
    })
    proc = subprocess.Popen([sys.executable, "-m", "qfreplay.cli", "live", "--config", str(config), "--no-dashboard"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mid_session = None
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and proc.poll() is None:
            status = out / "live.json"
            if status.is_file():
                st = json.loads(status.read_text())
                if st["state"] == "running" and min(st["rows"].values()) >= 30:
                    before = (out / "summary.json").read_text()
                    equity = pq.read_table(out / "equity.parquet")
                    if (out / "summary.json").read_text() == before:  # no refresh in between
                        mid_session = (st, json.loads(before), equity)
                        break
            time.sleep(0.2)
        assert mid_session is not None, "no rows from the live session in time"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()

    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Live session summary" in stdout
    _, summary_then, equity_then = mid_session
    assert equity_then.num_rows == summary_then["data"]["rows"]  # what was readable was consistent
    assert {p.name for p in out.iterdir()} == FINAL_FILES
    assert not list(data.rglob("*.part")) and list(data.glob("raw/venue=*/date=*/*.gz"))
    status = json.loads((out / "live.json").read_text())
    assert status["state"] == "finished" and status["late_rows"] == 0
    summary = assert_same_as_backtest(config, data, out)
    assert summary["data"]["rows"] > equity_then.num_rows
