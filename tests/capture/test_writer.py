"""DatasetWriter: rows given in blocks are written exactly like rows given one by one."""

import numpy as np

from qfreplay.book.sync import BookRow
from qfreplay.capture.writer import NS_PER_HOUR, DatasetWriter
from qfreplay.instruments import Instrument
from qfreplay.store import read_table

INST = Instrument("binance", "BTC-USDT")


def _rows(n: int, levels: int):
    rng = np.random.default_rng(3)
    ts = np.sort(rng.integers(0, 3 * NS_PER_HOUR, n)) + 20_000 * NS_PER_HOUR  # crosses hour boundaries
    scalars = np.stack([ts, ts - 5, np.arange(n), np.arange(n) % 2], axis=1).astype(np.int64)
    levels_ = rng.random((n, 4, levels))
    levels_[:, 0, -1] = np.nan
    return scalars, levels_


def test_book_rows_in_blocks_equal_rows_one_by_one(tmp_path):
    scalars, levels = _rows(500, 3)
    one, blocks = DatasetWriter(tmp_path / "one", 3, max_rows=120), DatasetWriter(tmp_path / "blocks", 3, max_rows=120)

    for sc, lv in zip(scalars.tolist(), levels):
        one.book_row(INST, BookRow(*sc, *lv))
    cuts = [0, 1, 7, 60, 61, 200, 333, 500]
    for lo, hi in zip(cuts, cuts[1:]):
        if hi - lo == 1:
            blocks.book_row(INST, BookRow(*scalars[lo].tolist(), *levels[lo]))  # single rows between blocks
        else:
            blocks.book_rows(INST, scalars[lo:hi], levels[lo:hi])
    one.publish()
    blocks.publish()

    a, b = read_table(tmp_path / "one", "book", INST), read_table(tmp_path / "blocks", "book", INST)
    assert a.num_rows == b.num_rows == 500 and a.schema == b.schema
    for name in a.schema.names:  # bytes, so that NaN levels compare too
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if name.endswith(("_px", "_sz")):
            x, y = x.flatten(), y.flatten()
        assert x.to_numpy().tobytes() == y.to_numpy().tobytes(), name
    assert len(blocks.files) == len(one.files) > 3 and blocks.counts == one.counts
