"""``qfreplay live``: record the venues and run the engine on every new book row, with the dashboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from ._common import config_option, read_config


def _serve_dashboard(session, port: int) -> Optional[tuple[str, object]]:
    """Serve the Panel dashboard on ``session`` in a background thread: (url, server), or None
    when this installation has no dashboard (Panel missing)."""
    try:
        from ..app import serve_app
    except ImportError:
        return None
    urls: list[str] = []
    server = serve_app(session.results_dir, live=session, port=port, show=False, threaded=True, on_ready=urls.append)
    return (urls[0] if urls else f"http://127.0.0.1:{port}/"), server


@click.command()
@config_option(required=True)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds (default: until Ctrl-C / SIGTERM).")
@click.option("--port", type=click.IntRange(1, 65535), default=8503, show_default=True, help="Dashboard port on 127.0.0.1.")
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
@click.option("--data", type=click.Path(file_okay=False), help="Dataset root to record into; default: the config's `data`.")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder; default: the config's `out`.")
@click.option("--replay", type=click.Path(file_okay=False, exists=True),
              help="Replay this recorded dataset as if live instead of connecting to the venues (records nothing).")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="With --replay: market time per wall-clock second (0: as fast as possible).")
@click.option("--reorder-ms", type=click.FloatRange(min=0), default=2000, show_default=True,
              help="How long arbitrage holds rows, beyond the record.interval_ms cadence, so that the venues' rows "
                   "are merged in ts_recv order as in a backtest.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def live(config_path, duration, port, no_dashboard, data, out, replay, speed, reorder_ms, quiet) -> None:
    """Record the configured instruments and run the engine on every new book row, live.

    The recorder keeps the books and writes the dataset (book rows, trades, tickers, events and the
    raw journal) into --data; each book row it writes goes at once through the same kernels as
    `qfreplay backtest`, state carried from row to row, plus arbitrage across the configured pairs.
    Results are written to --out as they happen (summary.json, the Parquet tables, results.duckdb,
    and live.json with the session's status) and the complete results folder when the session
    ends (--duration, Ctrl-C or SIGTERM). `qfreplay backtest --config F --data <the same --data>`
    then reproduces the session's results exactly (unless manual fills or parameter changes were
    made from the dashboard; live.json lists them).
    """
    from ..engine.live import DEFAULT_REFRESH_S, ReplaySource, run_live
    from ..store import list_instruments
    from .render import print_summary

    cfg = read_config(config_path)
    data_dir = replay or data or cfg.data
    out_dir = out or cfg.out
    needed = list(dict.fromkeys(cfg.instrument_list + [i for p in cfg.pair_list for i in p]))
    source = None
    if replay:
        source = ReplaySource(replay, needed, cfg.start_ns, cfg.end_ns, speed=speed)
    elif not quiet and Path(data_dir).is_dir() and set(needed) & set(list_instruments(data_dir)):
        click.echo(f"note: {data_dir} already holds book rows of these instruments; a backtest over it will include "
                   "them too (use --data NEW_FOLDER to keep this session apart)", err=True)

    servers: list = []

    def started(session) -> None:
        served = None if no_dashboard else _serve_dashboard(session, port)
        url = None
        if served is not None:
            url, server = served
            servers.append(server)
        if quiet:
            return
        what = f"replaying {replay}" if replay else f"recording {', '.join(map(str, needed))} to {data_dir}"
        click.echo(f"live: {what}; results in {out_dir} (Ctrl-C to stop)", err=True)
        if url:
            click.echo(f"dashboard: {url}", err=True)
        elif not no_dashboard:
            click.echo("note: the dashboard is not available in this build; results are still written", err=True)

    try:
        result = run_live(cfg, data_dir, out_dir, duration=duration, source=source, reorder_ms=reorder_ms,
                          refresh_s=DEFAULT_REFRESH_S, on_session=started, handle_signals=True)
    finally:
        for server in servers:
            server.stop()
    if not quiet:
        print_summary(result.summary, result.results_dir, title="Live session summary")
        st = result.status
        lat = st.get("latency", {}).get("arrival_to_output_ms")
        line = f"late rows {st['late_rows']}, out-of-order rows {st['out_of_order_rows']}"
        if lat:
            line += (f"; frame arrival -> engine output p50 {lat['p50']:.3f} ms, p99 {lat['p99']:.3f} ms"
                     " (includes waiting for the end of the record.interval_ms row interval)")
        click.echo(line, err=True)
    sys.stdout.flush()
