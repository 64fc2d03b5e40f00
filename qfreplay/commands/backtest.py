"""``qfreplay backtest`` and ``qfreplay query``."""

from __future__ import annotations

import click

from ._common import config_option, read_config


@click.command()
@config_option(required=True)
@click.option("--data", type=click.Path(file_okay=False), help="Dataset root; overrides the config's `data`.")
@click.option("--out", type=click.Path(file_okay=False), help="Results folder; overrides the config's `out`.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def backtest(config_path: str, data: str | None, out: str | None, quiet: bool) -> None:
    """Replay recorded books through the engine and write results.

    Reads book rows of the configured instruments from the dataset (SPEC section 2), computes
    features, signals, simulated fills, P&L, round trips and cross-venue arbitrage episodes, and
    writes signals/fills/equity/round_trips/arbitrage Parquet files, summary.json and
    results.duckdb to the results folder (replaced atomically), then prints the summary.
    """
    from ..engine.backtest import run_backtest
    from .render import print_summary

    cfg = read_config(config_path)
    changes = {k: v for k, v in (("data", data), ("out", out)) if v is not None}
    if changes:
        cfg = cfg.replace(**changes)
    result = run_backtest(cfg, progress=not quiet)
    if not quiet:
        print_summary(result.summary, result.out)


@click.command()
@click.argument("results_dir", type=click.Path())
@click.argument("sql")
@click.option("--limit", type=int, default=1000, show_default=True, help="Most rows to print.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def query(results_dir: str, sql: str, limit: int, as_csv: bool) -> None:
    """Run read-only SQL over a results folder's results.duckdb.

    Tables: signals, fills, equity, round_trips, arbitrage, summary. Example:

      qfreplay query results/demo "SELECT venue, symbol, count(*) FROM fills GROUP BY ALL"
    """
    from ..results import query as run_query
    from .render import print_rows

    cols, rows = run_query(results_dir, sql, limit)
    print_rows(cols, rows, as_csv)
