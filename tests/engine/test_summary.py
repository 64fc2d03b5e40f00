"""SPEC 4 per-instrument summary against hand-computed cases: P&L, win rate, drawdown, Sharpe, hit rates."""

from __future__ import annotations

import math

import pytest

from .helpers import A, PLAIN, WIDE, book, buy, crossed, flat, run, sell

R = 1e-12
SECOND = 1000.0
MINUTE = 60 * SECOND


def _summary(tmp_path, rows, **execution):
    result = run(tmp_path, {A: book(rows)}, signal=WIDE, execution={**PLAIN, **execution})
    return result.summary["instruments"][A]


def test_counts_win_rate_and_average_pnl(tmp_path):
    # Arrange: long 101 → 103 (+2), short 103 → 105 (−2), long 105 → 105 (0, not a win), short open at 105
    rows = [buy(0, 100.0, 101.0), sell(10, 103.0, 104.0), buy(20, 104.0, 105.0), sell(30, 105.0, 106.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert: cash −101 + 206 − 210 + 210 = 105, position −1, mid 105.5
    assert (summary["rows"], summary["invalid_rows"], summary["fills"], summary["round_trips"]) == (4, 0, 4, 3)
    assert summary["realized_pnl"] == 0.0
    assert summary["win_rate"] == pytest.approx(1 / 3, rel=R)
    assert summary["avg_pnl_per_round_trip"] == 0.0
    assert summary["fees"] == 0.0
    # total = realized + unrealized: 0 + (−1)·(105.5 − 105)
    assert summary["total_pnl"] == -0.5


def test_no_round_trips_gives_nan_rates(tmp_path):
    # Arrange: one buy and nothing else
    rows = [buy(0, 100.0, 101.0), flat(10, 101.0, 102.0)]

    # Act
    summary = _summary(tmp_path, rows, fee_bps=10.0)

    # Assert: fee 101 · 0.001 = 0.101; equity −101 − 0.101 + 101.5
    assert summary["round_trips"] == 0
    assert math.isnan(summary["win_rate"])
    assert math.isnan(summary["avg_pnl_per_round_trip"])
    assert summary["realized_pnl"] == 0.0
    assert summary["fees"] == pytest.approx(0.101, rel=R)
    assert summary["total_pnl"] == pytest.approx(0.399, rel=1e-9)


def test_max_drawdown_from_the_running_peak(tmp_path):
    # Arrange: long 1 at 101; equity = mid − 101: −0.5, 1.5, −1.5, 2.5, 0.5
    rows = [buy(0, 100.0, 101.0), flat(10, 102.0, 103.0), flat(20, 99.0, 100.0), flat(30, 103.0, 104.0),
            flat(40, 101.0, 102.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert: 1.5 → −1.5 is the largest fall
    assert summary["max_drawdown"] == 3.0


def test_max_drawdown_peak_starts_at_the_first_rows_equity(tmp_path):
    # Arrange: the first row is invalid (equity 0); then −0.5 (buy at 101, mid 100.5), an invalid row, −1.5
    rows = [crossed(0), buy(10, 100.0, 101.0), crossed(20), flat(30, 99.0, 100.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert summary["max_drawdown"] == 1.5


def test_max_drawdown_is_zero_when_equity_only_rises(tmp_path):
    # Arrange: first valid row −0.5 is the starting peak; then rising
    rows = [buy(0, 100.0, 101.0), flat(10, 101.0, 102.0), flat(20, 102.0, 103.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert summary["max_drawdown"] == 0.0


def test_sharpe_of_per_minute_equity_changes(tmp_path):
    # Arrange: long 1 at 101; last equity of minute 0: 0.5, minute 1: 1.5, (minute 2 has no rows),
    # minute 3: 0.5, minute 4: 3.5 — the 0 s row (−0.5) is not the last of its minute
    rows = [buy(0, 100.0, 101.0), flat(30 * SECOND, 101.0, 102.0), flat(1 * MINUTE, 102.0, 103.0),
            flat(3 * MINUTE + 10 * SECOND, 101.0, 102.0), flat(4 * MINUTE + 59 * SECOND, 104.0, 105.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert: changes +1, −1, +3: mean 1, sample sd √((0 + 4 + 4) / 2) = 2
    assert summary["sharpe"] == pytest.approx(0.5 * math.sqrt(525600), rel=1e-12)


def test_sharpe_uses_utc_minutes_not_minutes_since_the_first_row(tmp_path):
    # Arrange: rows at 50 s, 70 s, 110 s, 130 s: UTC minutes 0, 1, 1, 2
    rows = [buy(50 * SECOND, 100.0, 101.0), flat(70 * SECOND, 101.0, 102.0), flat(110 * SECOND, 103.0, 104.0),
            flat(130 * SECOND, 102.0, 103.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert: last equities −0.5, 2.5, 1.5: changes +3, −1: mean 1, sd √8
    assert summary["sharpe"] == pytest.approx(1 / math.sqrt(8) * math.sqrt(525600), rel=1e-12)


def test_sharpe_is_nan_with_fewer_than_two_changes(tmp_path):
    # Arrange: two minutes, one change
    rows = [buy(0, 100.0, 101.0), flat(MINUTE, 102.0, 103.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert math.isnan(summary["sharpe"])


def test_sharpe_is_nan_with_zero_deviation(tmp_path):
    # Arrange: equity −0.5, 0.5, 1.5, 2.5 at minutes 0..3: every change is +1
    rows = [buy(0, 100.0, 101.0), flat(MINUTE, 101.0, 102.0), flat(2 * MINUTE, 102.0, 103.0),
            flat(3 * MINUTE, 103.0, 104.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert math.isnan(summary["sharpe"])


def test_hit_rates_with_invalid_rows_tiny_moves_and_late_signals(tmp_path):
    # Arrange (times in s; mid in brackets)
    rows = [
        buy(0, 100.0, 101.0),                       # +1 at 0 (100.5)
        flat(0.5 * SECOND, 101.0, 102.0),           # (101.5)
        crossed(1 * SECOND),                        # invalid: mid(1 s) is still 101.5
        sell(2 * SECOND, 99.0, 100.0),              # −1 at 2 (99.5)
        flat(3 * SECOND, 99.00000002, 100.00000002),  # (99.50000002): a move of 2e-8 ≤ 1e-9 · 99.5
        flat(5 * SECOND, 98.0, 99.0),               # (98.5)
        flat(7 * SECOND, 97.0, 98.0),               # (97.5)
        flat(31 * SECOND, 100.0, 101.0),            # (100.5)
        buy(32.5 * SECOND, 101.0, 102.0),           # +1 at 32.5: later than 33 − h for every h
        flat(33 * SECOND, 101.0, 102.0),            # last row
    ]

    # Act: no trades (confidence 0.95 < 1), hit rates still count every non-zero signal
    summary = _summary(tmp_path, rows, min_confidence=1.0)

    # Assert
    # 1 s:  +1 at 0 → 101.5 (up, hit); −1 at 2 → 99.50000002 (excluded, tiny)          → 1/1
    # 5 s:  +1 at 0 → 98.5 (down, miss); −1 at 2 → 97.5 at 7 s (down, hit)             → 1/2
    # 30 s: +1 at 0 → 97.5 at 30 s (miss); −1 at 2 → 100.5 at 32 s (up, miss)          → 0/2
    assert summary["fills"] == 0
    assert summary["hit_rate"] == {"1s": 1.0, "5s": 0.5, "30s": 0.0}


def test_hit_rate_is_nan_when_nothing_is_counted(tmp_path):
    # Arrange: a signal 0.5 s before the last row
    rows = [buy(0, 100.0, 101.0), flat(500, 101.0, 102.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert all(math.isnan(v) for v in summary["hit_rate"].values())


def test_hit_rate_horizon_ending_exactly_on_the_last_row_counts(tmp_path):
    # Arrange: +1 at 0; the last row is at exactly 1 s
    rows = [buy(0, 100.0, 101.0), flat(1000, 99.0, 100.0)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert: 1 s counted (down: miss); 5 s and 30 s left out
    assert summary["hit_rate"]["1s"] == 0.0
    assert math.isnan(summary["hit_rate"]["5s"])


def test_empty_summary_shape_of_an_instrument_without_valid_rows(tmp_path):
    # Arrange: only invalid rows
    rows = [crossed(0), crossed(10)]

    # Act
    summary = _summary(tmp_path, rows)

    # Assert
    assert (summary["rows"], summary["invalid_rows"], summary["fills"]) == (2, 2, 0)
    assert (summary["total_pnl"], summary["realized_pnl"], summary["max_drawdown"]) == (0.0, 0.0, 0.0)
    assert math.isnan(summary["sharpe"])


def test_only_rows_in_start_end_are_processed(tmp_path):
    # Arrange: rows at 0, 10, 20, 30 ms; start at 10 ms (inclusive), end at 30 ms (exclusive)
    table = book([buy(0, 100.0, 101.0), flat(10, 101.0, 102.0), sell(20, 102.0, 103.0), flat(30, 103.0, 104.0)])
    ts = table.column("ts_recv").to_pylist()

    # Act
    result = run(tmp_path, {A: table}, start=ts[1], end=ts[3], signal=WIDE, execution=PLAIN)

    # Assert: the buy at 0 is outside: the sell at 20 opens a short at 102
    summary = result.summary["instruments"][A]
    assert result.tables["signals"].column("ts_recv").to_pylist() == ts[1:3]
    assert (summary["rows"], summary["fills"]) == (2, 1)
    assert result.tables["fills"].to_pylist()[0]["price"] == 102.0
    assert summary["total_pnl"] == -0.5
