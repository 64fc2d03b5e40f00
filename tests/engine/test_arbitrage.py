"""SPEC 5 cross-venue arbitrage against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from .helpers import A, B, book, column, run

NO_FEES = {"fee_bps": {"binance": 0.0, "coinbase": 0.0}}


def _arb(tmp_path, book_a, book_b, **arbitrage):
    return run(tmp_path, {A: book_a, B: book_b}, arbitrage={"pairs": [[A, B]], **arbitrage})


def test_net_bps_size_top_and_profit_walk_with_fees_and_slippage(tmp_path):
    # Arrange: A asks 100 x2, 100.5 x3, 101 x5; B bids 101 x1.5, 100.8 x2, 100.2 x4 (one point: both at t=0)
    a = book([(0, [(99.0, 1.0)], [(100.0, 2.0), (100.5, 3.0), (101.0, 5.0)])])
    b = book([(0, [(101.0, 1.5), (100.8, 2.0), (100.2, 4.0)], [(101.5, 1.0)])])

    # Act: f_A = (10 + 5) / 1e4, f_B = (20 + 5) / 1e4
    result = _arb(tmp_path, a, b, fee_bps={"binance": 10.0, "coinbase": 20.0}, slippage_bps=5.0)

    # Assert
    # net = (101·0.9975 − 100·1.0015) / 100 × 1e4 = (100.7475 − 100.15) / 100 × 1e4 = 59.75
    # walk: 1.5 × 0.5975 = 0.89625; then 100.8·0.9975 − 100.15 = 0.398 on the 0.5 left at 100: 0.199;
    #       then 100.548 − 100.5·1.0015 = −0.10275 stops. Profit 1.09525. size_top = min(2, 1.5).
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert (episode["buy_venue"], episode["buy_symbol"]) == ("binance", "BTC-USDT")
    assert (episode["sell_venue"], episode["sell_symbol"]) == ("coinbase", "BTC-USD")
    assert episode["points"] == 1
    assert episode["ts_start"] == episode["ts_end"]
    assert episode["duration_ms"] == 0.0
    assert episode["max_net_bps"] == pytest.approx(59.75, rel=1e-12)
    assert episode["mean_net_bps"] == pytest.approx(59.75, rel=1e-12)
    assert episode["max_size_top"] == 1.5
    assert episode["max_profit_walk"] == pytest.approx(1.09525, rel=1e-12)


def test_direction_buy_on_b_sell_on_a(tmp_path):
    # Arrange: B's ask 99.9 below A's bid 100.2 (A's ask above B's bid: the other direction is negative)
    a = book([(0, [(100.2, 0.7), (100.1, 1.0)], [(100.4, 1.0)])])
    b = book([(0, [(99.8, 1.0)], [(99.9, 0.3), (100.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: net = (100.2 − 99.9) / 99.9 × 1e4; walk 0.3 × 0.3 + 0.4 × 0.2 (100.2 − 100.0), then 100.1 − 100.0
    # = 0.1 on min(1.0, 0.6) = 0.06 → 0.09 + 0.08 + 0.06 = 0.23; size_top = min(0.3, 0.7)
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert (episode["buy_venue"], episode["sell_venue"]) == ("coinbase", "binance")
    assert episode["max_net_bps"] == pytest.approx(0.3 / 99.9 * 1e4, rel=1e-12)
    assert episode["max_size_top"] == 0.3
    assert episode["max_profit_walk"] == pytest.approx(0.23, rel=1e-12)


def test_profit_walk_beyond_the_visible_depth_stops_at_the_last_level(tmp_path):
    # Arrange: every level pair nets > 0; A has 2 ask levels, B has 1 bid level of 10
    a = book([(0, [(99.0, 1.0)], [(100.0, 1.0), (100.5, 2.0)])])
    b = book([(0, [(101.0, 10.0)], [(102.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: 1 × 1.0 + 2 × 0.5 = 2.0 (nothing is assumed beyond A's last level)
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert episode["max_profit_walk"] == pytest.approx(2.0, rel=1e-12)
    assert episode["max_size_top"] == 1.0


def test_staleness_skips_a_point_and_the_skip_splits_the_episode(tmp_path):
    # Arrange: B (bid 101) is always above A (ask 100); B has rows at 0 and 2500 ms only
    a = book([(t, [(99.0, 1.0)], [(100.0, 1.0)]) for t in (0, 500, 1000, 1500, 3000)])
    b = book([(t, [(101.0, 1.0)], [(102.0, 1.0)]) for t in (0, 2500)])

    # Act
    result = _arb(tmp_path, a, b, max_staleness_ms=1000, **NO_FEES)

    # Assert: points 0, 500, 1000 (B exactly 1000 ms old is not older than the limit); 1500 is skipped
    # (B 1500 ms old); 2500 (A 1000 ms old) and 3000 make the second episode
    episodes = result.tables["arbitrage"].to_pylist()
    assert [(e["ts_end"] - e["ts_start"]) // 1_000_000 for e in episodes] == [1000, 500]
    assert [e["points"] for e in episodes] == [3, 2]
    assert [e["duration_ms"] for e in episodes] == [1000.0, 500.0]
    assert all(e["max_net_bps"] == pytest.approx(100.0, rel=1e-12) for e in episodes)
    assert result.summary["arbitrage"]["episodes"] == 2
    assert result.summary["arbitrage"]["total_duration_ms"] == 1500.0


def test_a_point_before_the_other_book_exists_is_skipped(tmp_path):
    # Arrange: A from 0 ms, B only from 200 ms
    a = book([(t, [(99.0, 1.0)], [(100.0, 1.0)]) for t in (0, 100, 300)])
    b = book([(200, [(101.0, 1.0)], [(102.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: points 200 and 300 only
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert episode["points"] == 2
    assert episode["duration_ms"] == 100.0


def test_a_non_positive_point_ends_the_episode(tmp_path):
    # Arrange: B's bid: 101, 101.5, 100 (= A's ask: net 0, not > 0), 100.5
    a = book([(t, [(99.0, 1.0)], [(100.0, 1.0)]) for t in (0, 100, 200, 300)])
    b = book([(t, [(bid, 2.0)], [(102.0, 1.0)]) for t, bid in ((0, 101.0), (100, 101.5), (200, 100.0), (300, 100.5))])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert
    first, second = result.tables["arbitrage"].to_pylist()
    assert first["points"] == 2
    assert first["max_net_bps"] == pytest.approx(150.0, rel=1e-12)
    assert first["mean_net_bps"] == pytest.approx(125.0, rel=1e-12)
    assert first["max_size_top"] == 1.0
    assert second["points"] == 1
    assert second["max_net_bps"] == pytest.approx(50.0, rel=1e-12)


def test_equal_times_are_one_point_using_the_last_row_at_that_time(tmp_path):
    # Arrange: A has two rows at 0 ms (asks 100, then 100.2); B one row at 0 ms
    a = book([(0, [(99.0, 1.0)], [(100.0, 1.0)]), (0, [(99.0, 1.0)], [(100.2, 1.0)])])
    b = book([(0, [(100.5, 1.0)], [(102.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: one point, priced on A's second row
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert episode["points"] == 1
    assert episode["max_net_bps"] == pytest.approx(0.3 / 100.2 * 1e4, rel=1e-12)


def test_invalid_rows_are_not_timeline_points_nor_quotes(tmp_path):
    # Arrange: A's row at 100 ms is crossed (invalid); its valid row at 0 ms stays the quote
    a = book([(0, [(99.0, 1.0)], [(100.0, 1.0)]), (100, [(100.0, 1.0)], [(99.0, 1.0)])])
    b = book([(0, [(101.0, 1.0)], [(102.0, 1.0)]), (200, [(101.0, 1.0)], [(102.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: points 0 and 200 only
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert episode["points"] == 2
    assert episode["duration_ms"] == 200.0


def test_top_five_by_max_net_bps_ties_to_the_earlier_start(tmp_path):
    # Arrange: one-point episodes separated by non-positive points; B's bid gives the net bps
    bids = [100.10, 100.30, 100.20, 100.30, 100.05, 100.25, 100.40]
    a_rows, b_rows = [], []
    for k, bid in enumerate(bids):
        for t, b_bid in ((200 * k, bid), (200 * k + 100, 99.5)):
            a_rows.append((t, [(99.0, 1.0)], [(100.0, 1.0)]))
            b_rows.append((t, [(b_bid, 1.0)], [(102.0, 1.0)]))

    # Act
    result = _arb(tmp_path, book(a_rows), book(b_rows), **NO_FEES)

    # Assert
    top = result.summary["arbitrage"]["top"]
    t0 = min(column(result.tables["arbitrage"], "ts_start"))
    assert result.summary["arbitrage"]["episodes"] == 7
    assert [round(e["max_net_bps"], 6) for e in top] == [40.0, 30.0, 30.0, 25.0, 20.0]
    assert [(e["ts_start"] - t0) // 1_000_000 for e in top] == [1200, 200, 600, 1000, 400]


def test_a_deeper_book_arriving_on_a_later_day_is_walked_in_full(tmp_path):
    # Arrange: A (1 level) has rows before and after 00:00 UTC; B (2 levels) only after it,
    # so the pair's first day sees A alone
    a = book([(-100, [(99.0, 1.0)], [(100.0, 1.0)]), (10, [(99.0, 1.0)], [(100.0, 1.0)])])
    b = book([(0, [(101.0, 0.5), (100.5, 1.0)], [(102.0, 1.0), (103.0, 1.0)])])

    # Act
    result = _arb(tmp_path, a, b, **NO_FEES)

    # Assert: points 0 and 10 ms; walk 0.5 × 1.0 at B's first bid, then 0.5 × 0.5 at its second = 0.75
    (episode,) = result.tables["arbitrage"].to_pylist()
    assert episode["points"] == 2
    assert episode["max_size_top"] == 0.5
    assert episode["max_profit_walk"] == pytest.approx(0.75, rel=1e-12)


def test_no_pairs_no_episodes(tmp_path):
    # Arrange
    a = book([(0, [(99.0, 1.0)], [(100.0, 1.0)])])

    # Act
    result = run(tmp_path, {A: a})

    # Assert
    assert result.summary["arbitrage"] == {"episodes": 0, "total_duration_ms": 0.0, "top": []}
    assert result.tables["arbitrage"].num_rows == 0
    assert math.isnan(result.summary["instruments"][A]["sharpe"])
