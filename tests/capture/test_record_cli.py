"""``qfreplay record`` as a process: SIGTERM closes cleanly, SIGKILL loses nothing the journal holds."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from qfreplay.cli import cli
from qfreplay.commands.record import select_instruments
from qfreplay.errors import ConfigError
from qfreplay.instruments import Instrument
from qfreplay.venues.local import LocalExchange
from tests.fakes import FakeMarket, served_in_thread

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_exchange():
    """A local exchange on a free port, served from a background thread."""
    with served_in_thread(LocalExchange(seed=5, market=FakeMarket(5, start_ns=time.time_ns())), 10) as ex:
        yield ex


def config_file(tmp_path, ex) -> Path:
    cfg = {"instruments": ["binance:BTC-USDT", "coinbase:BTC-USD"], "record": {"levels": 5, "interval_ms": 50}, "venues": ex.venue_config()}
    path = tmp_path / "record.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_recorder(cfg: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qfreplay.cli", "record", "--config", str(cfg), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_raw(out: Path, timeout: float = 30.0, ignore: frozenset = frozenset(), size: int = 2000) -> None:
    """Wait until both venues' open journals (other than ``ignore``) hold at least ``size`` bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p for p in out.rglob("*.gz.part") if p not in ignore]
        if len(parts) == 2 and all(p.stat().st_size > size for p in parts):
            return
        time.sleep(0.2)
    raise AssertionError("the recorder wrote no journal in time")


def visible_parquet(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.parquet") if not p.name.startswith(".")]


@pytest.mark.slow
def test_sigterm_flushes_and_closes_everything(tmp_path, local_exchange):
    out = tmp_path / "data"
    proc = start_recorder(config_file(tmp_path, local_exchange), out)
    try:
        wait_for_raw(out)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()

    assert proc.returncode == 0, err
    book = pl.read_parquet(f"{out}/book/**/*.parquet", hive_partitioning=True)
    assert set(book["venue"]) == {"binance", "coinbase"} and book.height > 20
    assert not list(out.rglob("*.part")) and not list(out.rglob(".*"))
    events = pl.read_parquet(f"{out}/events/**/*.parquet", hive_partitioning=True)
    assert "recorder stopped" in " ".join(events.filter(pl.col("kind") == "disconnect")["detail"])


@pytest.mark.slow
def test_sigkill_leaves_no_partial_parquet_and_normalize_recovers(tmp_path, local_exchange):
    out = tmp_path / "data"
    cfg = config_file(tmp_path, local_exchange)
    proc = start_recorder(cfg, out)
    try:
        wait_for_raw(out, size=20_000)  # enough frames flushed for books on both venues
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    first_raw = {p: p.read_bytes() for p in out.rglob("*.gz.part")}
    for p in visible_parquet(out):
        pq.read_table(p)  # whatever is visible is complete

    result = CliRunner().invoke(cli, ["normalize", str(out / "raw"), "--out", str(tmp_path / "recovered")])

    assert result.exit_code == 0, result.output
    book = pl.read_parquet(f"{tmp_path}/recovered/book/**/*.parquet", hive_partitioning=True)
    assert set(book["venue"]) == {"binance", "coinbase"} and book.height > 20

    # a restarted recorder adds files and leaves the earlier ones alone
    proc = start_recorder(cfg, out)
    try:
        wait_for_raw(out, ignore=frozenset(first_raw))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert all(p.read_bytes() == data for p, data in first_raw.items())
    assert len(list(out.rglob("*.gz"))) == 2


def test_select_instruments():
    configured = [Instrument("binance", "BTC-USDT"), Instrument("coinbase", "BTC-USD")]

    assert select_instruments(configured, ("coinbase",), ()) == [Instrument("coinbase", "BTC-USD")]
    assert select_instruments(configured, ("binance", "binanceus"), ("ethusdt",)) == [
        Instrument("binance", "ETH-USDT"), Instrument("binanceus", "ETH-USDT")]
    assert select_instruments(configured, (), ("coinbase:eth-usd",)) == [Instrument("coinbase", "ETH-USD")]
    with pytest.raises(ConfigError, match="needs a --venue"):
        select_instruments(configured, (), ("BTC-USDT",))


def test_record_cli_bad_input_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["record", "--venue", "kraken", "--out", str(tmp_path)])

    assert result.exit_code == 2 and "unknown venue 'kraken'" in result.output
    assert "Traceback" not in result.output
