"""The Sweep view's data preparation: heatmap cells, instrument choice, sorting; and the view over a real sweep folder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qfreplay.app.sweep import ALL, heatmap_data, points_frame, sort_points

NAN = math.nan


@pytest.fixture
def points() -> pd.DataFrame:
    """Two grid keys x 2 values each, plus a third key; one NaN Sharpe."""
    return pd.DataFrame({
        "point": [0, 1, 2, 3, 4, 5, 6, 7],
        "enter": [0.2, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4],
        "latency_ms": [0, 0, 150, 150, 0, 0, 150, 150],
        "levels": [1, 4, 1, 4, 1, 4, 1, 4],
        "total_pnl": [1.0, 3.0, -2.0, 0.5, 4.0, -1.0, 2.0, 2.5],
        "max_drawdown": [0.5, 0.2, 0.9, 0.4, 0.1, 0.6, 0.3, 0.3],
        "sharpe": [1.0, NAN, 2.0, 0.0, NAN, NAN, -1.0, 3.0],
    })


def test_heatmap_takes_the_best_of_the_other_parameters(points):
    cells = heatmap_data(points, "enter", "latency_ms", "total_pnl")

    assert cells.to_dict("list") == {"enter": [0.2, 0.2, 0.4, 0.4], "latency_ms": [0, 150, 0, 150],
                                     "total_pnl": [3.0, 0.5, 4.0, 2.5]}


def test_lower_is_better_for_drawdown_and_other_aggregates(points):
    best = heatmap_data(points, "enter", "latency_ms", "max_drawdown")
    mean = heatmap_data(points, "enter", "latency_ms", "total_pnl", how="mean")
    worst = heatmap_data(points, "enter", "latency_ms", "total_pnl", how="worst")

    assert best["max_drawdown"].tolist() == [0.2, 0.4, 0.1, 0.3]
    assert mean["total_pnl"].tolist() == [2.0, -0.75, 1.5, 2.25]
    assert worst["total_pnl"].tolist() == [1.0, -2.0, -1.0, 2.0]


def test_nan_metrics_are_skipped_and_an_all_nan_cell_is_nan(points):
    cells = heatmap_data(points, "enter", "latency_ms", "sharpe")

    assert cells["sharpe"].tolist()[:2] == [1.0, 2.0] and cells["sharpe"].iloc[3] == 3.0
    assert np.isnan(cells["sharpe"].iloc[2])  # enter 0.4, latency 0: both points NaN


def test_one_parameter_gives_one_row_of_cells(points):
    cells = heatmap_data(points, "levels", "levels", "total_pnl")

    assert cells.columns.tolist() == ["levels", " ", "total_pnl"]
    assert cells["total_pnl"].tolist() == [4.0, 3.0]


def test_sorting_puts_the_best_first_and_nan_last(points):
    assert sort_points(points, "total_pnl")["point"].tolist() == [4, 1, 7, 6, 0, 3, 5, 2]
    assert sort_points(points, "max_drawdown")["point"].tolist()[:2] == [4, 1]
    assert sort_points(points, "sharpe")["point"].tolist() == [7, 2, 0, 3, 6, 1, 4, 5]
    assert sort_points(points, "latency_ms")["point"].tolist() == [0, 1, 4, 5, 2, 3, 6, 7]


def test_points_frame_for_all_or_one_instrument(points):
    rows = pd.concat([points.assign(venue="binance", symbol="BTC-USDT"), points.assign(venue="coinbase", symbol="BTC-USD",
                                                                                        total_pnl=points.total_pnl * 2)])

    assert points_frame(rows, points, ALL).equals(points)
    mine = points_frame(rows, points, "coinbase:BTC-USD")
    assert "venue" not in mine.columns and mine["total_pnl"].tolist() == (points.total_pnl * 2).tolist()


def test_sweep_view_builds_over_a_sweep_folder(tmp_path):
    from qfreplay.app.sweep import sweep_view
    from qfreplay.config import load_config_dict
    from qfreplay.sweep import parse_grid, run_sweep
    from tests.factories import random_book, write_book

    rng = np.random.default_rng(2)
    write_book(tmp_path / "data", "binance", "BTC-USDT", random_book(rng, 300, levels=3))
    cfg = load_config_dict({"data": str(tmp_path / "data"), "instruments": ["binance:BTC-USDT"], "arbitrage": {"pairs": []}})
    run_sweep(cfg, parse_grid({"signal.imbalance_threshold": [0.1, 0.2], "execution.latency_ms": [0, 100]}), workers=0,
              out=tmp_path / "sweep")

    page = sweep_view(tmp_path / "sweep")

    column = page.main[0]
    table = column[3]
    assert len(table.value) == 4
    assert table.value.columns.tolist()[:4] == ["point", "signal.imbalance_threshold", "execution.latency_ms", "total_pnl"]
