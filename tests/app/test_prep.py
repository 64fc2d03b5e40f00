"""The app's data preparation: heatmap binning, gauge, latency, downsampling, net spread (no browser)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.compute as pc
import pytest

from qfreplay.app import prep
from qfreplay.engine.backtest import arbitrage_summary
from qfreplay.instruments import Instrument
from qfreplay.results import read_result
from qfreplay.app.source import ResultsSource

S = prep.NS_PER_S
MS = prep.NS_PER_MS
NAN = math.nan


def test_liquidity_grid_sums_sizes_into_price_bins_and_averages_over_rows():
    # Arrange: two rows in one time bin, one in the other; prices 100.5 / 101.5 / 102.5 in bins of 1
    ts = np.array([0, 1, 10], np.int64) * S
    bid_px = np.array([[100.5, 101.5], [100.5, NAN], [101.5, 100.5]])
    bid_sz = np.array([[2.0, 4.0], [6.0, 0.0], [1.0, 3.0]])
    ask_px = np.array([[102.5], [102.5], [103.5]])
    ask_sz = np.array([[5.0], [7.0], [9.0]])

    # Act: 2 time bins over [0, 20 s), 3 price bins over [100, 103)
    g = prep.liquidity_grid(ts, bid_px, bid_sz, ask_px, ask_sz, (0, 20 * S), (100.0, 103.0), width=2, height=3)

    # Assert: values[price bin, time bin] = mean resting size per row of the time bin; 103.5 is outside
    assert g.values.shape == (3, 2)
    assert g.values[0, 0] == pytest.approx((2 + 6) / 2)
    assert g.values[1, 0] == pytest.approx(4 / 2)
    assert g.values[2, 0] == pytest.approx((5 + 7) / 2)
    assert g.values[0, 1] == pytest.approx(3.0)
    assert g.values[1, 1] == pytest.approx(1.0)
    assert math.isnan(g.values[2, 1])


def test_liquidity_grid_reads_a_bounded_number_of_rows():
    rng = np.random.default_rng(0)
    n = 200_000
    ts = np.arange(n, dtype=np.int64) * 100 * MS
    px = 100 + rng.random((n, 5))
    sz = np.ones((n, 5))

    g = prep.liquidity_grid(ts, px, sz, px + 1, sz, (0, int(ts[-1])), (99.0, 102.0), width=100, height=30, rows_per_bin=4)

    # every row holds 10 levels of size 1 inside the band; averaging per row keeps each column's total at 10
    assert np.nansum(g.values, axis=0) == pytest.approx(np.full(100, 10.0))


def test_range_position_places_last_between_low_and_high():
    assert prep.range_position(105.0, 100.0, 110.0) == pytest.approx(0.5)
    assert prep.range_position(100.0, 100.0, 110.0) == 0.0
    assert prep.range_position(120.0, 100.0, 110.0) == 1.0  # clipped
    assert math.isnan(prep.range_position(105.0, 110.0, 110.0))
    assert math.isnan(prep.range_position(NAN, 100.0, 110.0))


def test_latency_stats_are_percentiles_of_recv_minus_event_in_ms():
    ts_event = np.zeros(100, np.int64)
    ts_recv = (np.arange(1, 101) * MS).astype(np.int64)  # 1 … 100 ms

    stats = prep.latency_stats(ts_recv, ts_event)

    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert (stats["min"], stats["max"], stats["mean"]) == (1.0, 100.0, 50.5)


def test_latency_stats_of_nothing_are_nan():
    stats = prep.latency_stats(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert all(math.isnan(v) for v in stats.values())


def test_binned_percentiles_use_nearest_rank_per_bin_and_leave_empty_bins_nan():
    ts = np.array([0, 1, 2, 3, 25], np.int64) * S
    values = np.array([4.0, 1.0, 3.0, 2.0, 9.0])

    starts, pct = prep.binned_percentiles(ts, values, 10 * S, (50.0, 100.0))

    assert list(starts) == [0, 10 * S, 20 * S]
    assert list(pct[0]) == [2.0, pytest.approx(NAN, nan_ok=True), 9.0]
    assert list(pct[1]) == [4.0, pytest.approx(NAN, nan_ok=True), 9.0]


def test_rate_per_second_counts_messages_per_bin_including_empty_ones():
    ts = np.array([0, 1, 2, 25], np.int64) * S
    starts, rate = prep.rate_per_second(ts, 10 * S)
    assert list(starts) == [0, 10 * S, 20 * S]
    assert list(rate) == [0.3, 0.0, 0.1]


def test_minmax_downsample_keeps_extremes_first_and_last():
    x = np.arange(10_000)
    y = np.sin(x / 300.0)
    y[4321] = 50.0  # a one-row spike
    y[7000] = -50.0

    xs, ys = prep.minmax_downsample(x, y, 100)

    assert len(xs) <= 400
    assert xs[0] == 0 and xs[-1] == 9_999
    assert ys.max() == 50.0 and ys.min() == -50.0
    assert np.all(np.diff(xs) > 0)


def test_minmax_downsample_leaves_short_series_alone():
    x = np.arange(10)
    xs, ys = prep.minmax_downsample(x, x * 2.0, 100)
    assert xs is x and list(ys) == list(x * 2.0)


def test_nice_bin_is_the_smallest_round_width_within_the_target():
    assert prep.nice_bin_ns(30 * 60 * S, 300) == 10 * S
    assert prep.nice_bin_ns(86_400 * S, 300) == 300 * S
    assert prep.nice_bin_ns(10 * S, 300) == int(0.1 * S)


def test_touch_and_depth_of_one_row():
    bid_px = np.array([99.0, 98.0, NAN])
    bid_sz = np.array([1.0, 3.0, 0.0])
    ask_px = np.array([101.0, 102.0, 103.0])
    ask_sz = np.array([2.0, 0.0, 2.0])  # a level of size 0 is missing

    t = prep.touch(bid_px, bid_sz, ask_px, ask_sz, levels=20)
    px, sz, cum = prep.depth_curve(ask_px, ask_sz)

    assert (t.best_bid, t.best_ask, t.mid, t.spread) == (99.0, 101.0, 100.0, 2.0)
    assert t.spread_bps == pytest.approx(200.0)
    assert t.imbalance == pytest.approx((4 - 4) / 8)
    assert list(px) == [101.0, 103.0] and list(cum) == [2.0, 4.0]


def test_touch_of_a_crossed_row_is_invalid():
    t = prep.touch(np.array([101.0]), np.array([1.0]), np.array([100.0]), np.array([1.0]), levels=1)
    assert not t.valid and math.isnan(t.spread_bps)


def test_signal_changes_skip_invalid_rows_and_repeats():
    signal = np.array([0, 1, 1, 0, -1, -1, 1], np.int8)
    valid = np.array([True, True, True, False, True, True, True])
    assert list(prep.signal_changes(signal, valid)) == [1, 4, 6]


def test_drawdown_is_the_fall_from_the_running_peak():
    assert list(prep.drawdown(np.array([0.0, 2.0, 1.0, 3.0, 0.5]))) == [0.0, 0.0, 1.0, 0.0, 2.5]


def test_change_24h_needs_a_value_a_day_earlier():
    day = 86_400 * S
    ts = np.array([0, day // 2, day, day + 5 * S], np.int64)
    mid = np.array([100.0, 90.0, 110.0, 120.0])
    assert prep.change_24h(ts, mid, day) == pytest.approx(10.0)
    assert math.isnan(prep.change_24h(ts, mid, day // 2))


def test_volume_bars_split_buys_and_sells():
    ts = np.array([0, 1, 12], np.int64) * S
    t, buy, sell = prep.volume_bars(ts, np.array([1.0, 2.0, 4.0]), np.array([1, -1, 1], np.int8), 10 * S)
    assert list(t) == [0, 10 * S] and list(buy) == [1.0, 4.0] and list(sell) == [2.0, 0.0]


def test_net_spread_follows_spec_5_with_staleness():
    # A: bid 100 / ask 101 at t=0; B: bid 103 / ask 104 at t=1 s; A is stale after 1.5 s
    ns = prep.net_spread(np.array([0], np.int64), np.array([100.0]), np.array([101.0]),
                         np.array([1 * S, 2 * S], np.int64), np.array([103.0, 103.0]), np.array([104.0, 104.0]),
                         0.001, 0.001, int(1.5 * S))
    assert list(ns.ts) == [0, S, 2 * S]
    assert math.isnan(ns.buy_a_sell_b[0])  # B has no row yet
    assert ns.buy_a_sell_b[1] == pytest.approx((103 * 0.999 - 101 * 1.001) / 101 * 1e4)
    assert ns.buy_b_sell_a[1] == pytest.approx((100 * 0.999 - 104 * 1.001) / 104 * 1e4)
    assert math.isnan(ns.buy_a_sell_b[2])  # A's row is 2 s old


def test_net_spread_episodes_match_the_engines(market):
    # Arrange: the market's pair, both books, the engine's episodes
    source = ResultsSource(market["results"])
    a, b = Instrument("binance", "BTC-USDT"), Instrument("coinbase", "BTC-USD")
    episodes = read_result(market["results"], "arbitrage")
    assert episodes.num_rows > 0

    # Act: the app's vectorized net spread, cut into runs of net > 0
    ns = source.net_spread(a, b)

    # Assert: same episodes (start, end, points, max net bps) per direction as the numba kernel
    for series, buy in ((ns.buy_a_sell_b, a), (ns.buy_b_sell_a, b)):
        mine = [(int(ns.ts[i]), int(ns.ts[j]), j - i + 1, float(np.max(series[i: j + 1])))
                for i, j in prep.positive_runs(series)]
        theirs = episodes.filter(pc.equal(episodes["buy_venue"], buy.venue)).to_pylist()
        assert [(e["ts_start"], e["ts_end"], e["points"]) for e in theirs] == [m[:3] for m in mine]
        assert [e["max_net_bps"] for e in theirs] == pytest.approx([m[3] for m in mine], rel=1e-12)
    assert arbitrage_summary(episodes)["episodes"] == market["summary"]["arbitrage"]["episodes"]


def test_positive_runs_end_at_nan_and_non_positive_points():
    assert prep.positive_runs(np.array([1.0, 2.0, NAN, 3.0, -1.0, 0.5, 0.5])) == [(0, 1), (3, 3), (5, 6)]
