"""``qfreplay report``: the results of a backtest (or a finished live session) in the browser."""

from __future__ import annotations

import click


@click.command()
@click.argument("results_dir", type=click.Path())
@click.option("--port", type=click.IntRange(1, 65535), default=8503, show_default=True, help="Port to serve on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to bind; 0.0.0.0 serves other machines too (anyone who can reach the port sees the results).")
@click.option("--show", is_flag=True, help="Open the report in the default web browser.")
def report(results_dir: str, port: int, address: str, show: bool) -> None:
    """Serve an interactive report over a results folder (what `qfreplay backtest` wrote).

    \b
    Tabs: Order Book (depth ladder, depth chart, liquidity heatmap), Signals (the signal and its
    features over time, signal history), Performance (P&L, win rate, drawdown, Sharpe, hit rates,
    fills, round trips), Arbitrage (top episodes, net spread per direction), Analytics (24 h
    statistics, price range, volume) and Data Quality (gaps, resyncs, disconnects, message rates,
    exchange-to-local latency). The book, ticker, trade and event views read the dataset that the
    run's config names (its `data` key).

    \b
    The sidebar picks venue and symbol, a time range, the minimum confidence and the position
    size; changing them re-runs the engine on that instrument in memory (the results folder is
    never modified). Every asset is served locally, so the report works offline. Stop with Ctrl-C.

    \b
    A sweep folder (what `qfreplay sweep` wrote) gets the Sweep view instead: a heatmap of a
    chosen metric over two grid parameters and the table of points, sortable by any metric.

    \b
    Example:
      qfreplay report results/demo --show
    """
    from pathlib import Path

    from ..app.server import serve_app
    from ..errors import DataError
    from ..results import load_summary
    from ..sweep import is_sweep_dir, load_sweep

    if not Path(results_dir).is_dir():
        raise DataError(f"results folder {results_dir!r} does not exist (run qfreplay backtest first)")
    view = None
    if is_sweep_dir(Path(results_dir)):  # a `qfreplay sweep` folder gets the Sweep view
        from ..app.sweep import sweep_view

        load_sweep(results_dir)  # one clear line if it is unreadable
        view = lambda: sweep_view(results_dir)  # noqa: E731
    else:
        load_summary(results_dir)  # one clear line if this is not a results folder
    serve_app(results_dir, port=port, address=address, show=show, view=view,
              on_ready=lambda url: click.echo(f"report: {url} (Ctrl-C to stop)", err=True))
    click.echo("report: stopped", err=True)
