"""SPEC 4 execution against hand-computed cases: fills, latency, cooldown, max hold, targets, round trips."""

from __future__ import annotations

import pytest

from .helpers import A, NAN, PLAIN, WIDE, book, buy, crossed, flat, run, sell, since

R = 1e-12


def _run(tmp_path, rows, **execution):
    return run(tmp_path, {A: book(rows)}, signal=WIDE, execution={**PLAIN, **execution})


def _fills(result):
    return [(f["qty"], f["price"]) for f in result.tables["fills"].to_pylist()]


def test_fixed_fills_with_slippage_fees_and_a_flip(tmp_path):
    # Arrange: buy 2, flip to short 2, flatten on a neutral row
    rows = [buy(0, 100.0, 101.0), sell(10, 102.0, 103.0), flat(20, 98.0, 99.0)]

    # Act
    result = _run(tmp_path, rows, position_size=2.0, slippage_bps=10.0, fee_bps=20.0, flatten_on_neutral=True)

    # Assert
    # buy 2 at 101·1.001 = 101.101, fee 2·101.101·0.002 = 0.404404, cash −202.606404
    # sell 4 at 102·0.999 = 101.898, fee 4·101.898·0.002 = 0.815184, cash 204.170412
    # buy 2 at 99·1.001 = 99.099, fee 0.396396, cash 5.576016
    fills = result.tables["fills"].to_pylist()
    assert [f["qty"] for f in fills] == [2.0, -4.0, 2.0]
    assert [f["price"] for f in fills] == pytest.approx([101.101, 101.898, 99.099], rel=R)
    assert [f["fee"] for f in fills] == pytest.approx([0.404404, 0.815184, 0.396396], rel=R)
    assert [f["position"] for f in fills] == [2.0, -2.0, 0.0]
    assert [f["cash"] for f in fills] == pytest.approx([-202.606404, 204.170412, 5.576016], rel=R)
    assert [f["ts_fill"] == f["ts_order"] for f in fills] == [True, True, True]
    # equity: −202.606404 + 2·100.5; 204.170412 − 2·102.5; 5.576016
    equity = result.tables["equity"].to_pylist()
    assert [e["equity"] for e in equity] == pytest.approx([-1.606404, -0.829588, 5.576016], rel=R)
    # round trips: the flip closes the long (its opening fee + half the flip's fee) and opens a short
    # with the other half of the flip's fee
    long_rt, short_rt = result.tables["round_trips"].to_pylist()
    assert (long_rt["side"], long_rt["qty"]) == (1, 2.0)
    assert (long_rt["entry_px"], long_rt["exit_px"]) == pytest.approx((101.101, 101.898), rel=R)
    assert long_rt["fees"] == pytest.approx(0.404404 + 0.407592, rel=R)
    assert long_rt["pnl"] == pytest.approx(2 * 0.797 - 0.811996, rel=R)
    assert (short_rt["side"], short_rt["qty"]) == (-1, 2.0)
    assert (short_rt["entry_px"], short_rt["exit_px"]) == pytest.approx((101.898, 99.099), rel=R)
    assert short_rt["fees"] == pytest.approx(0.407592 + 0.396396, rel=R)
    assert short_rt["pnl"] == pytest.approx(2 * 2.799 - 0.803988, rel=R)
    assert short_rt["ts_open"] == long_rt["ts_close"] == fills[1]["ts_fill"]
    assert long_rt["ts_open"] == fills[0]["ts_fill"]
    summary = result.summary["instruments"][A]
    assert summary["fees"] == pytest.approx(1.615984, rel=R)
    assert summary["realized_pnl"] == pytest.approx(0.782004 + 4.794012, rel=R)
    assert summary["total_pnl"] == pytest.approx(5.576016, rel=R)
    assert (summary["fills"], summary["round_trips"], summary["win_rate"]) == (3, 2, 1.0)


def test_book_fills_walk_every_level_and_beyond_the_visible_depth(tmp_path):
    # Arrange: buy 3 against asks 101 x0.5, 102 x1 (1.5 visible); then sell 6 against bids
    # 100 x1, (missing), 99 x2 (3 visible)
    rows = [
        (0, [(100.0, 5.0)], [(101.0, 0.5), (102.0, 1.0)]),
        (10, [(100.0, 1.0), (NAN, 0.0), (99.0, 2.0)], [(101.0, 10.0)]),
    ]

    # Act
    result = _run(tmp_path, rows, position_size=3.0, fill_model="book", slippage_bps=10.0)

    # Assert: (0.5·101 + 1·102 + 1.5·102) / 3 = 305.5 / 3, × 1.001;
    #         (1·100 + 2·99 + 3·99) / 6 = 595 / 6, × 0.999
    assert _fills(result) == [(3.0, pytest.approx(305.5 / 3 * 1.001, rel=R)),
                              (-6.0, pytest.approx(595 / 6 * 0.999, rel=R))]


def test_fixed_fills_ignore_depth(tmp_path):
    # Arrange: same book as above, fixed model
    rows = [(0, [(100.0, 5.0)], [(101.0, 0.5), (102.0, 1.0)])]

    # Act
    result = _run(tmp_path, rows, position_size=3.0)

    # Assert
    assert _fills(result) == [(3.0, 101.0)]


def test_latency_fills_at_the_first_valid_row_at_or_after_the_due_time(tmp_path):
    # Arrange: latency 250 ms
    rows = [
        buy(0, 100.0, 101.0),     # order +1 placed, due 250
        buy(100, 100.0, 102.0),   # pending: nothing
        sell(200, 100.0, 102.0),  # pending: no new order
        crossed(260),             # due, but invalid: no fill
        flat(300, 103.0, 104.0),  # fills +1 at 104
        sell(400, 105.0, 106.0),  # order −2, due 650
        buy(650, 106.0, 107.0),   # due exactly: fills −2 at 106; then order +2 (due 900)
        flat(700, 106.0, 107.0),  # last row: the +2 never fills
    ]

    # Act
    result = _run(tmp_path, rows, latency_ms=250)

    # Assert
    fills = result.tables["fills"].to_pylist()
    assert [(since([f["ts_order"]])[0], since([f["ts_fill"]])[0]) for f in fills] == [(0, 300), (400, 650)]
    assert _fills(result) == [(1.0, 104.0), (-2.0, 106.0)]
    equity = result.tables["equity"].to_pylist()
    assert [e["position"] for e in equity] == [0, 0, 0, 0, 1, 1, -1, -1]
    # cash −104 then 108; equity carries over the invalid row
    assert [e["equity"] for e in equity] == [0.0, 0.0, 0.0, 0.0, -0.5, 1.5, 1.5, 1.5]
    (rt,) = result.tables["round_trips"].to_pylist()
    assert since([rt["ts_open"], rt["ts_close"]]) == [300, 650]
    assert (rt["entry_px"], rt["exit_px"], rt["pnl"]) == (104.0, 106.0, 2.0)


def test_cooldown_spaces_orders(tmp_path):
    # Arrange: cooldown 1 s
    rows = [buy(0, 100.0, 101.0), sell(300, 100.0, 101.0), sell(999, 100.0, 101.0), sell(1000, 100.0, 101.0),
            buy(1500, 100.0, 101.0), buy(2500, 100.0, 101.0)]

    # Act
    result = _run(tmp_path, rows, cooldown_ms=1000)

    # Assert
    fills = result.tables["fills"].to_pylist()
    assert since([f["ts_fill"] for f in fills]) == [0, 1000, 2500]
    assert [f["qty"] for f in fills] == [1.0, -2.0, 2.0]


def test_cooldown_counts_from_the_order_not_the_fill(tmp_path):
    # Arrange: latency 500 ms, cooldown 1 s: the first order is placed at 0 and fills at 500
    rows = [buy(0, 100.0, 101.0), flat(500, 100.0, 101.0), sell(1000, 100.0, 101.0), flat(1600, 100.0, 101.0)]

    # Act
    result = _run(tmp_path, rows, latency_ms=500, cooldown_ms=1000)

    # Assert: the sell at 1000 ms is 1 s after the first order (only 0.5 s after its fill)
    fills = result.tables["fills"].to_pylist()
    assert [since([f["ts_order"], f["ts_fill"]]) for f in fills] == [[0, 500], [1000, 1600]]


def test_max_hold_flattens_and_a_later_row_reopens(tmp_path):
    # Arrange: max hold 1 s
    rows = [buy(0, 100.0, 101.0), buy(500, 100.0, 101.0), buy(1000, 100.0, 101.0), buy(1100, 100.0, 101.0),
            flat(1500, 100.0, 101.0), flat(2099, 100.0, 101.0), flat(2100, 100.0, 101.0)]

    # Act
    result = _run(tmp_path, rows, max_hold_ms=1000)

    # Assert: held 1000 ms at 1000 → flatten; reopened at 1100; held 1000 ms at 2100 → flatten
    fills = result.tables["fills"].to_pylist()
    assert since([f["ts_fill"] for f in fills]) == [0, 1000, 1100, 2100]
    assert [f["qty"] for f in fills] == [1.0, -1.0, 1.0, -1.0]


def test_max_hold_counts_from_the_flip(tmp_path):
    # Arrange: long at 0, flipped short at 800 (the opening time becomes 800)
    rows = [buy(0, 100.0, 101.0), sell(800, 100.0, 101.0), sell(1500, 100.0, 101.0), sell(1800, 100.0, 101.0)]

    # Act
    result = _run(tmp_path, rows, max_hold_ms=1000)

    # Assert
    fills = result.tables["fills"].to_pylist()
    assert since([f["ts_fill"] for f in fills]) == [0, 800, 1800]
    assert [f["qty"] for f in fills] == [1.0, -2.0, 1.0]
    assert since([rt["ts_open"] for rt in result.tables["round_trips"].to_pylist()]) == [0, 800]


def test_max_hold_does_not_override_a_flip(tmp_path):
    # Arrange: held 2 s when the signal asks for a flip
    rows = [buy(0, 100.0, 101.0), sell(2000, 100.0, 101.0)]

    # Act
    result = _run(tmp_path, rows, max_hold_ms=1000)

    # Assert: the flip wins (target −1 ≠ position)
    assert [q for q, _ in _fills(result)] == [1.0, -2.0]


def test_neutral_keeps_the_position_unless_flatten_on_neutral(tmp_path):
    # Arrange
    rows = [buy(0, 100.0, 101.0), flat(10, 100.0, 101.0)]

    # Act
    keep = _run(tmp_path / "keep", rows)
    flatten = _run(tmp_path / "flatten", rows, flatten_on_neutral=True)

    # Assert
    assert [q for q, _ in _fills(keep)] == [1.0]
    assert _fills(flatten) == [(1.0, 101.0), (-1.0, 100.0)]


def test_a_signal_below_min_confidence_keeps_the_position_even_with_flatten_on_neutral(tmp_path):
    # Arrange: θ 0.1; imbalance 0.16 → confidence 0.92 (trades at min 0.9); −0.12 → 0.84 (does not)
    rows = [(0, [(100.0, 5.8)], [(101.0, 4.2)]), (10, [(100.0, 4.4)], [(101.0, 5.6)])]

    # Act
    result = run(tmp_path, {A: book(rows)}, signal={**WIDE, "imbalance_threshold": 0.1},
                 execution={**PLAIN, "min_confidence": 0.9, "flatten_on_neutral": True})

    # Assert
    signals = result.tables["signals"].to_pylist()
    assert [s["signal"] for s in signals] == [1, -1]
    assert [s["confidence"] for s in signals] == pytest.approx([0.92, 0.84], abs=1e-12)
    assert _fills(result) == [(1.0, 101.0)]


def test_nothing_fills_on_invalid_rows_and_equity_carries(tmp_path):
    # Arrange: invalid first row (equity 0), a buy, an invalid row, a neutral row
    rows = [crossed(0), buy(10, 100.0, 101.0), crossed(20), flat(30, 102.0, 103.0)]

    # Act
    result = _run(tmp_path, rows)

    # Assert
    equity = result.tables["equity"].to_pylist()
    assert [e["equity"] for e in equity] == [0.0, -0.5, -0.5, 1.5]
    assert [e["position"] for e in equity] == [0.0, 1.0, 1.0, 1.0]
    assert [e["cash"] for e in equity] == [0.0, -101.0, -101.0, -101.0]
    assert result.summary["instruments"][A]["invalid_rows"] == 2
