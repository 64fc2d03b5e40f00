"""Panel panes styled for the app: HTML blocks, charts and tables on the dark trading theme."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from . import blocks as B

TABLE_PAGE = 10

TEMPLATE_CSS = f"""
body, #main, .main {{ background-color: {B.BACKGROUND} !important; }}
#sidebar, .sidenav {{ background-color: {B.PANEL} !important; border-right: 1px solid {B.GRID}; }}
#header, .navbar {{ border-bottom: 1px solid {B.GRID}; min-height: 44px !important; max-height: 44px; padding: 0 12px !important; }}
.navbar .title, #header .title, .app-header a {{ font-size: 16px !important; font-weight: 600; }}
"""
TABLE_CSS = f"""
.pnx-tabulator.tabulator {{ font-size: 11.5px !important; background-color: {B.PANEL} !important;
  border: 1px solid {B.GRID} !important; border-radius: 4px; }}
.tabulator .tabulator-header, .tabulator .tabulator-header .tabulator-col {{ background-color: {B.PANEL} !important;
  color: {B.MUTED} !important; border-color: {B.GRID} !important; font-weight: 500 !important; }}
.tabulator .tabulator-header .tabulator-col .tabulator-col-content {{ padding: 3px 6px !important; }}
.tabulator .tabulator-tableholder, .tabulator .tabulator-tableholder .tabulator-table {{ background-color: {B.PANEL} !important;
  color: {B.TEXT} !important; }}
.tabulator-row, .tabulator-row.tabulator-row-odd {{ background-color: {B.PANEL} !important; color: {B.TEXT} !important;
  min-height: 0 !important; border-bottom: 1px solid #1e2329 !important; }}
.tabulator-row.tabulator-row-even {{ background-color: #1a1f24 !important; }}
.tabulator-row:hover {{ background-color: #2b3139 !important; }}
.tabulator-row .tabulator-cell {{ padding: 2px 6px !important; border: none !important;
  font-variant-numeric: tabular-nums; height: auto !important; }}
.tabulator .tabulator-footer {{ background-color: {B.PANEL} !important; color: {B.MUTED} !important;
  border-top: 1px solid {B.GRID} !important; padding: 2px 4px !important; }}
.tabulator .tabulator-footer .tabulator-page {{ background: transparent !important; color: {B.MUTED} !important;
  border: 1px solid {B.GRID} !important; padding: 0 6px !important; font-size: 11px !important; margin: 0 1px !important; }}
.tabulator .tabulator-footer .tabulator-page.active {{ color: {B.ACCENT} !important; border-color: {B.ACCENT} !important; }}
.tabulator .tabulator-footer .tabulator-paginator {{ font-size: 11px !important; }}
"""


def html(obj: str = "", **kw) -> pn.pane.HTML:
    return pn.pane.HTML(obj, **{"stylesheets": [B.CSS], "sizing_mode": "stretch_width", "margin": (2, 6), **kw})


def chart(obj: Any = None, **kw) -> pn.pane.HoloViews:
    return pn.pane.HoloViews(obj, **{"sizing_mode": "stretch_width", "margin": (2, 6), "linked_axes": False, **kw})


def table(**kw) -> pn.widgets.Tabulator:
    return pn.widgets.Tabulator(pd.DataFrame(), **{
        "pagination": "remote", "page_size": TABLE_PAGE, "disabled": True, "show_index": False,
        "sizing_mode": "stretch_width", "layout": "fit_data_fill", "theme": "simple", "stylesheets": [TABLE_CSS],
        "margin": (2, 6), **kw})
