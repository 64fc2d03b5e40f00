"""The Sweep view over a sweep folder: a heatmap of one metric over two grid parameters, and the table of points.

:func:`heatmap_data` and :func:`points_frame` are the pure data preparation (unit-tested);
:func:`sweep_view` lays them out with the app's dark theme. The view reads the sweep folder only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from ..sweep import LOWER_IS_BETTER, METRICS, OOS_PREFIX, POINTS_FILE, load_sweep

ALL = "all instruments"
AGGREGATES = ("best", "mean", "median", "worst")


def higher_is_better(metric: str) -> bool:
    return metric.removeprefix(OOS_PREFIX) not in LOWER_IS_BETTER


def points_frame(rows: pd.DataFrame, points: pd.DataFrame, instrument: str = ALL) -> pd.DataFrame:
    """The points to show: the per-point aggregate over instruments, or one instrument's rows (``venue:SYMBOL``)."""
    if instrument == ALL:
        return points.reset_index(drop=True)
    venue, _, symbol = instrument.partition(":")
    mine = rows[(rows["venue"] == venue) & (rows["symbol"] == symbol)]
    return mine.drop(columns=["venue", "symbol"]).reset_index(drop=True)


def heatmap_data(frame: pd.DataFrame, x: str, y: Optional[str], metric: str, how: str = "best") -> pd.DataFrame:
    """One cell per (x, y) value pair: ``metric`` over the points that share them (over every other grid key).

    ``how``: ``best`` (max, or min where lower is better), ``worst``, ``mean`` or ``median``; NaN
    metrics are ignored and a cell with none left is NaN. Rows come sorted by x then y.
    """
    if how not in AGGREGATES:
        raise ValueError(f"how must be one of {AGGREGATES}")
    up = higher_is_better(metric)
    func = {"best": "max" if up else "min", "worst": "min" if up else "max", "mean": "mean", "median": "median"}[how]
    keys = [x] if y is None or y == x else [x, y]
    cells = frame.groupby(keys, sort=True, dropna=False)[metric].agg(func).reset_index()
    if y is None or y == x:
        cells[" "] = ""
        cells = cells[[x, " ", metric]]
    return cells


def sort_points(frame: pd.DataFrame, by: str, descending: Optional[bool] = None) -> pd.DataFrame:
    """The points sorted by one column (metrics best first by default), NaN last, ties by point."""
    if descending is None:
        descending = higher_is_better(by) if by in metric_columns(frame) else False
    return frame.sort_values([by, "point"], ascending=[not descending, True], na_position="last",
                             kind="stable").reset_index(drop=True)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.removeprefix(OOS_PREFIX) in METRICS]


def _label(value) -> str:
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else "—"
    return str(value)


def sweep_view(sweep_dir: str | Path):
    """The Sweep page of a sweep folder (a servable Panel template)."""
    import holoviews as hv
    import panel as pn
    import pyarrow.parquet as pq

    from . import blocks as B
    from .panes import TEMPLATE_CSS, chart, html, table

    pn.extension("tabulator", notifications=False)
    hv.extension("bokeh", logo=False)
    info, rows_table = load_sweep(sweep_dir)
    rows = rows_table.to_pandas()
    points = pq.read_table(Path(sweep_dir) / POINTS_FILE).to_pandas()
    keys = list(info["grid"])
    metrics = metric_columns(points)

    metric = pn.widgets.Select(label="Metric", options=metrics, value=info.get("metric", metrics[0]))
    x = pn.widgets.Select(label="X parameter", options=keys, value=keys[0])
    y = pn.widgets.Select(label="Y parameter", options=keys, value=keys[1] if len(keys) > 1 else keys[0])
    instrument = pn.widgets.Select(label="Instrument", options=[ALL] + list(info["instruments"]), value=ALL)
    how = pn.widgets.Select(label="Other parameters", options=list(AGGREGATES), value="best")
    sort_by = pn.widgets.Select(label="Sort table by", options=["point"] + keys + metrics, value=metric.value)
    heat = chart(height=420)
    grid_table = table(page_size=25)

    def frame() -> pd.DataFrame:
        return points_frame(rows, points, instrument.value)

    def draw(*_):
        cells = heatmap_data(frame(), x.value, y.value, metric.value, how.value)
        xs, ys = cells.columns[0], cells.columns[1]
        cells[xs] = cells[xs].map(_label)
        cells[ys] = cells[ys].map(_label)
        cmap = "RdYlGn" if higher_is_better(metric.value) else "RdYlGn_r"
        plot = hv.HeatMap(cells, kdims=[xs, ys], vdims=[metric.value]).opts(
            cmap=cmap, colorbar=True, tools=["hover"], responsive=True, height=420, xrotation=45,
            title=f"{metric.value} ({how.value} over the other parameters, {instrument.value})", bgcolor=B.PANEL)
        plot = plot * hv.Labels(plot).opts(text_color="black", text_font_size="9pt") if len(cells) <= 150 else plot
        heat.object = plot
        shown = sort_points(frame(), sort_by.value)
        first = ["point"] + keys + [metric.value]
        grid_table.value = shown[first + [c for c in shown.columns if c not in first]]

    for w in (metric, x, y, instrument, how, sort_by):
        w.param.watch(draw, "value")
    metric.param.watch(lambda e: setattr(sort_by, "value", e.new), "value")
    draw()

    split = info.get("split_ts")
    oos = f" · out-of-sample: last {info['oos']:.0%} (from {pd.Timestamp(split, unit='ns')} UTC)" if split else ""
    head = html(f'<div class="qf-note">{info["points"]} grid points × {len(info["instruments"])} instruments'
                f' · ranked by {info["metric"]}{oos}</div>')
    tpl = pn.template.BootstrapTemplate(title=f"qfreplay · sweep · {Path(sweep_dir).resolve().name}", theme="dark",
                                        sidebar_width=285, header_background=B.BACKGROUND, header_color=B.TEXT,
                                        raw_css=[TEMPLATE_CSS], favicon=None)
    tpl.sidebar.extend([metric, x, y, how, instrument, sort_by])
    tpl.main.append(pn.Column(head, heat, html('<div class="qf-title">Grid points</div>'), grid_table,
                              sizing_mode="stretch_width"))
    return tpl
