"""SPEC 4 features, validity, OFI and the built-in signal against hand-computed rows."""

from __future__ import annotations

import math

import pytest

from factories import T0, book_table
from qfreplay.store import write_partitioned

from .helpers import A, MS, NAN, book, run

T = 1e-12


def _signals(tmp_path, rows, **cfg):
    return run(tmp_path, {A: book(rows)}, **cfg).tables["signals"].to_pylist()


def test_features_of_one_row_with_missing_levels(tmp_path):
    # Arrange: bids 100 x2, (NaN price) x5, 99.8 x1; asks 100.2 x1, 100.3 x0 (no size), 100.4 x3
    rows = [(0, [(100.0, 2.0), (NAN, 5.0), (99.8, 1.0)], [(100.2, 1.0), (100.3, 0.0), (100.4, 3.0)])]

    # Act
    (s,) = _signals(tmp_path, rows)

    # Assert: mid 100.1; spread 0.2 / 100.1 × 1e4; bid_vol 3, ask_vol 4 (missing levels count 0)
    assert s["valid"] is True
    assert s["mid"] == pytest.approx(100.1, rel=T)
    assert s["spread_bps"] == pytest.approx(0.2 / 100.1 * 1e4, rel=1e-9)
    assert (s["bid_vol"], s["ask_vol"]) == (3.0, 4.0)
    assert s["imbalance"] == pytest.approx(-1 / 7, rel=T)
    # micro = (ask·bid_vol + bid·ask_vol) / 7 = (100.2·3 + 100·4) / 7 = 700.6 / 7
    assert s["micro_price"] == pytest.approx(700.6 / 7, rel=T)
    assert s["ofi"] == 0.0  # first row


def test_levels_limits_the_volumes(tmp_path):
    # Arrange
    rows = [(0, [(100.0, 1.0), (99.9, 2.0), (99.8, 4.0)], [(100.2, 3.0), (100.3, 5.0), (100.4, 7.0)])]

    # Act
    (s,) = _signals(tmp_path, rows, features={"levels": 2})

    # Assert: first 2 levels: 3 vs 8
    assert (s["bid_vol"], s["ask_vol"]) == (3.0, 8.0)
    assert s["imbalance"] == pytest.approx(-5 / 11, rel=T)


def test_levels_above_the_stored_depth_uses_all_levels(tmp_path):
    # Arrange
    rows = [(0, [(100.0, 1.0), (99.9, 2.0)], [(100.2, 3.0), (100.3, 5.0)])]

    # Act
    (s,) = _signals(tmp_path, rows, features={"levels": 50})

    # Assert
    assert (s["bid_vol"], s["ask_vol"]) == (3.0, 8.0)


def test_levels_1_micro_price_is_the_classic_weighted_mid(tmp_path):
    # Arrange: bid 100 x3, ask 101 x1 (deeper levels ignored with levels: 1)
    rows = [(0, [(100.0, 3.0), (99.0, 50.0)], [(101.0, 1.0), (102.0, 50.0)])]

    # Act
    (s,) = _signals(tmp_path, rows, features={"levels": 1})

    # Assert: (101·3 + 100·1) / 4 = 100.75, leaning to the ask when the bid is heavier
    assert s["micro_price"] == pytest.approx(100.75, rel=T)
    assert s["imbalance"] == pytest.approx(0.5, rel=T)


@pytest.mark.parametrize(
    "bids, asks",
    [
        ([(NAN, 1.0)], [(100.2, 1.0)]),      # best bid price missing
        ([(100.0, 0.0)], [(100.2, 1.0)]),    # best bid size 0
        ([(100.0, 1.0)], [(100.2, -1.0)]),   # negative size
        ([(100.0, 1.0)], [(NAN, 0.0)]),      # no ask at all
        ([(100.0, 1.0)], [(100.0, 1.0)]),    # locked: bid = ask
        ([(100.3, 1.0)], [(100.2, 1.0)]),    # crossed
    ],
)
def test_invalid_rows_have_nan_features_and_no_signal(tmp_path, bids, asks):
    # Arrange
    rows = [(0, bids, asks)]

    # Act
    (s,) = _signals(tmp_path, rows)

    # Assert
    assert s["valid"] is False
    for name in ("mid", "spread_bps", "bid_vol", "ask_vol", "imbalance", "micro_price", "ofi"):
        assert math.isnan(s[name]), name
    assert (s["signal"], s["confidence"]) == (0, 0.0)


def test_ofi_formula_for_each_price_move(tmp_path):
    # Arrange: (bb, qb, ba, qa) per row
    quotes = [
        (100.0, 5.0, 100.2, 4.0),  # first row: 0
        (100.0, 7.0, 100.2, 1.0),  # same prices: (7 − 5) − (1 − 4) = 5
        (100.1, 2.0, 100.3, 6.0),  # bid up, ask up: +2 (new bid) − 0 − 0 + 1 (old ask) = 3
        (99.9, 3.0, 100.1, 8.0),   # bid down, ask down: 0 − 2 (old bid) − 8 (new ask) + 0 = −10
        (99.9, 1.0, 100.1, 8.0),   # sizes only: (1 − 3) − (8 − 8) = −2
    ]
    rows = [(10 * k, [(bb, qb)], [(ba, qa)]) for k, (bb, qb, ba, qa) in enumerate(quotes)]

    # Act
    signals = _signals(tmp_path, rows)

    # Assert
    assert [s["ofi"] for s in signals] == pytest.approx([0.0, 5.0, 3.0, -10.0, -2.0], abs=T)


def test_ofi_is_zero_on_a_resync_row_and_right_after_an_invalid_row(tmp_path):
    # Arrange
    rows = [
        (0, [(100.0, 5.0)], [(100.2, 4.0)]),
        (10, [(100.0, 9.0)], [(100.2, 4.0)], 1),   # RESYNC: 0 (would be 4)
        (20, [(100.0, 10.0)], [(100.2, 4.0)], 2),  # flag bit 1 is not RESYNC: 10 − 9 = 1
        (30, [(100.0, 1.0)], [(99.0, 4.0)]),       # crossed: invalid, NaN
        (40, [(100.0, 3.0)], [(100.2, 4.0)]),      # right after an invalid row: 0
        (50, [(100.0, 6.0)], [(100.2, 4.0)]),      # 6 − 3 = 3
    ]

    # Act
    signals = _signals(tmp_path, rows)

    # Assert
    ofi = [s["ofi"] for s in signals]
    assert ofi[:3] == [0.0, 0.0, 1.0]
    assert math.isnan(ofi[3])
    assert ofi[4:] == [0.0, 3.0]


def test_ofi_is_zero_on_the_first_row_in_range(tmp_path):
    # Arrange: the config starts at the second row
    rows = [(0, [(100.0, 5.0)], [(100.2, 4.0)]), (1000, [(100.0, 9.0)], [(100.2, 4.0)]),
            (2000, [(100.0, 10.0)], [(100.2, 4.0)])]
    tb = book(rows)
    start = tb.column("ts_recv")[1].as_py()

    # Act
    signals = run(tmp_path, {A: tb}, start=start).tables["signals"].to_pylist()

    # Assert
    assert [s["ofi"] for s in signals] == [0.0, 1.0]


def test_signal_and_confidence(tmp_path):
    # Arrange: imbalance 0.2 (buy), −0.2 (sell), 0.1 (below θ), 0.15 (= θ: no), 0.9 (capped), wide spread
    rows = [
        (0, [(100.0, 6.0)], [(100.01, 4.0)]),
        (10, [(100.0, 4.0)], [(100.01, 6.0)]),
        (20, [(100.0, 5.5)], [(100.01, 4.5)]),
        (30, [(100.0, 5.75)], [(100.01, 4.25)]),
        (40, [(100.0, 19.0)], [(100.01, 1.0)]),
        (50, [(100.0, 6.0)], [(100.2, 4.0)]),    # spread 0.2/100.1 = 19.98 bps ≥ 10
    ]

    # Act
    signals = _signals(tmp_path, rows)

    # Assert: confidence 0.6 + 2 · 0.2 = 1.0 → cap 0.95; capped 0.95 too
    assert [s["signal"] for s in signals] == [1, -1, 0, 0, 1, 0]
    assert [s["imbalance"] for s in signals] == pytest.approx([0.2, -0.2, 0.1, 0.15, 0.9, 0.2], abs=T)
    assert [s["confidence"] for s in signals] == pytest.approx([0.95, 0.95, 0.0, 0.0, 0.95, 0.0], abs=T)


def test_confidence_below_the_cap(tmp_path):
    # Arrange: imbalance 0.16 → 0.6 + 2·0.16 = 0.92
    rows = [(0, [(100.0, 5.8)], [(100.01, 4.2)])]

    # Act
    (s,) = _signals(tmp_path, rows)

    # Assert
    assert s["signal"] == 1
    assert s["confidence"] == pytest.approx(0.92, abs=T)


def test_signal_parameters_from_the_config(tmp_path):
    # Arrange: θ 0.05, max spread 25 bps, base 0.1, slope 1, cap 0.3
    rows = [(0, [(100.0, 5.5)], [(100.2, 4.5)]), (10, [(100.0, 4.5)], [(100.3, 5.5)])]
    signal = {"imbalance_threshold": 0.05, "max_spread_bps": 25, "confidence_base": 0.1, "confidence_slope": 1.0,
              "confidence_cap": 0.3}

    # Act
    signals = _signals(tmp_path, rows, signal=signal)

    # Assert: row 0: spread 19.98 bps, imbalance 0.1 → +1, 0.1 + 0.1 = 0.2; row 1: spread 29.96 bps → 0
    assert [s["signal"] for s in signals] == [1, 0]
    assert signals[0]["confidence"] == pytest.approx(0.2, abs=T)


def test_equal_time_rows_are_processed_in_seq_order_in_one_file(tmp_path):
    # Arrange: two rows at the same ts_recv, written in reverse seq order
    table = book_table([T0, T0 + MS, T0 + MS], [[100.0], [100.0], [100.0]], [[5.0], [9.0], [7.0]],
                       [[100.2], [100.2], [100.2]], [[4.0], [4.0], [4.0]], seq=[1, 3, 2])
    write_partitioned(tmp_path, "book", "binance", "BTC-USDT", table)

    # Act
    signals = run(tmp_path, {}, instruments=[A]).tables["signals"].to_pylist()

    # Assert: order seq 1, 2, 3; OFI 7 − 5 = 2, then 9 − 7 = 2
    assert [s["seq"] for s in signals] == [1, 2, 3]
    assert [s["ofi"] for s in signals] == [0.0, 2.0, 2.0]
