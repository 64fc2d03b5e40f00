"""normalize of the real Binance and Coinbase captures is pinned: speed work must not change a bit.

The digests (Binance: normalize of the hftbacktest file; Coinbase: the cryptofeed capture fed to
a DatasetWriter) were computed with the recorder as it was before the batched hot path; any change in
decoding, sync, cadence or row emission shows up here as a different digest.
"""

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from qfreplay.capture.feed import make_feed
from qfreplay.capture.normalize import normalize
from qfreplay.capture.writer import DatasetWriter
from qfreplay.instruments import Instrument
from qfreplay.store import read_table

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
BTC_FILE = REAL / "btcusdt_20240808.gz"
CB_FILE = REAL / "COINBASE.jsonl.zst"
INST = Instrument("binance", "BTC-USDT")

#: (interval_ms, table) -> (rows, sha256 prefix of the table's schema and values)
PINNED = {
    (100, "book"): (3442, "f734bd7201568411"),
    (100, "trades"): (9757, "275ec5388c3b1175"),
    (100, "ticker"): (0, "69983e296c35c671"),
    (100, "events"): (1, "1df7faab9d73ad54"),
    (0, "book"): (3449, "ec252f819ee88caa"),
}

#: (symbol, table) -> (rows, digest) of the Coinbase capture at 100 ms
PINNED_COINBASE = {
    ("BTC-USD", "book"): (203, "561e74c84b18f26c"),
    ("BTC-USD", "trades"): (47, "fc7ff3e437cd494a"),
    ("BTC-USD", "ticker"): (73, "60839d09ab26c4ae"),
    ("BTC-USD", "events"): (2, "8875402847dcef61"),
    ("ETH-USD", "book"): (213, "1e2c6b756e774dce"),
    ("ETH-USD", "trades"): (32, "e288bffb03396187"),
    ("ETH-USD", "ticker"): (87, "e4d924476baa9ebc"),
    ("ETH-USD", "events"): (2, "29a1dce05e907f77"),
}


def table_digest(t: pa.Table) -> str:
    """sha256 of the field types and every value's bytes (NaN bit patterns included)."""
    h = hashlib.sha256()
    for field, col in zip(t.schema, t.columns):
        h.update(f"{field.name}:{field.type};".encode())
        arr = col.combine_chunks()
        if pa.types.is_fixed_size_list(field.type):
            arr = arr.flatten()
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            h.update("\0".join(arr.to_pylist()).encode())
        else:
            h.update(np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.skipif(not BTC_FILE.exists(), reason=f"real capture {BTC_FILE} not present (../shared/data/real is optional)")
@pytest.mark.parametrize("interval_ms", [100, 0])
def test_real_capture_tables_are_pinned(tmp_path, interval_ms):
    normalize([BTC_FILE], tmp_path, venue="binance", symbol="BTC-USDT", interval_ms=interval_ms)

    got = {}
    for (iv, name), _ in PINNED.items():
        if iv == interval_ms:
            t = read_table(tmp_path, name, INST)
            got[(iv, name)] = (t.num_rows, table_digest(t))
    assert got == {k: v for k, v in PINNED.items() if k[0] == interval_ms}


@pytest.mark.skipif(not CB_FILE.exists(), reason=f"real capture {CB_FILE} not present (../shared/data/real is optional)")
def test_real_coinbase_capture_tables_are_pinned(tmp_path):
    from tests.venues.test_coinbase import cryptofeed_records

    writer = DatasetWriter(tmp_path, 20)
    feed = make_feed("coinbase", ["BTC-USD", "ETH-USD"], 20, 100, writer)
    for rec in cryptofeed_records(CB_FILE):
        feed.feed(rec)
    feed.close()
    writer.publish()

    got = {}
    for symbol in ("BTC-USD", "ETH-USD"):
        for name in ("book", "trades", "ticker", "events"):
            t = read_table(tmp_path, name, Instrument("coinbase", symbol))
            got[(symbol, name)] = (t.num_rows, table_digest(t))
    assert got == PINNED_COINBASE
