"""normalize over an hftbacktest Binance capture and over qfreplay journals."""

from pathlib import Path

import pytest

from qfreplay.capture.normalize import normalize
from qfreplay.errors import ConfigError
from qfreplay.instruments import Instrument
from qfreplay.store import load_book, read_table

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
BTC_FILE = REAL / "btcusdt_20240808.gz"
needs_real = pytest.mark.skipif(not BTC_FILE.exists(), reason=f"real capture {BTC_FILE} not present (../shared/data/real is optional)")


@needs_real
def test_hftbacktest_capture_to_dataset(tmp_path):
    stats = normalize([BTC_FILE], tmp_path, venue="binance", symbol="BTCUSDT")

    inst = Instrument("binance", "BTC-USDT")
    book = load_book(tmp_path, inst)
    trades = read_table(tmp_path, "trades", inst)
    events = read_table(tmp_path, "events", inst)
    assert stats.records == 41249 and stats.counts["trades"] == 9757 == trades.num_rows
    assert len(book) == stats.counts["book"] > 3000 and book.levels == 20
    assert book.flags[0] == 1 and not book.flags[1:].any()
    assert (book.bid_px[:, 0] < book.ask_px[:, 0]).all()
    # at most one row per 100 ms interval
    assert len(set((book.ts_recv // 100_000_000).tolist())) == len(book)
    assert events.column("kind").to_pylist() == ["resync"]
    assert set(trades.column("side").to_pylist()) == {-1, 1}
    assert list(tmp_path.glob("book/venue=binance/symbol=BTC-USDT/date=2024-08-08/*.parquet"))


def test_headerless_file_needs_venue_and_symbol(tmp_path):
    import gzip

    raw = tmp_path / "x.gz"
    with gzip.open(raw, "wb") as f:
        f.write(b'1 {"a":1}\n')

    with pytest.raises(ConfigError, match="pass --venue and --symbol"):
        normalize([raw], tmp_path / "out")
