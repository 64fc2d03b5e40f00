"""``qfreplay sweep``."""

from __future__ import annotations

import click

from ._common import config_option, read_config


@click.command()
@config_option(required=True)
@click.option("--grid", "grid_path", type=click.Path(dir_okay=False), required=True,
              help="YAML grid: config keys under features./signal./execution. with value lists or "
                   "ranges {from, to, step|num}.")
@click.option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786); default: a local cluster.")
@click.option("--workers", type=click.IntRange(min=0),
              help="Worker processes of the local cluster (default: one per CPU; 0 runs in this process).")
@click.option("--out", type=click.Path(file_okay=False), help="Sweep folder (default: the config's `out` + '-sweep').")
@click.option("--data", type=click.Path(file_okay=False), help="Dataset root; overrides the config's `data`.")
@click.option("--metric", default="total_pnl", show_default=True,
              help="Metric that ranks the points (summed or pooled over instruments); oos_<metric> with --oos.")
@click.option("--oos", type=float, help="Also score each point on the last FRACTION of the time range (e.g. 0.3).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Best points to print.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def sweep(config_path: str, grid_path: str, scheduler: str | None, workers: int | None, out: str | None,
          data: str | None, metric: str, oos: float | None, top: int, quiet: bool) -> None:
    """Backtest every point of a parameter grid on Dask and rank the points.

    Each worker loads an instrument-day once, computes its features once per features.levels value
    and evaluates all of its grid points on them. Writes sweep.parquet (one row per grid point x
    instrument, with the summary metrics), points.parquet (per point, over all instruments),
    results.duckdb (tables sweep and points) and sweep.json to the sweep folder, then prints the
    best points. Examples:

    \b
      qfreplay sweep --config configs/demo.yaml --grid examples/grids/demo.yaml --oos 0.3
      qfreplay sweep --config my.yaml --grid grid.yaml --scheduler tcp://10.0.0.5:8786
    """
    from ..errors import ConfigError
    from ..sweep import load_grid, run_sweep

    if scheduler and workers is not None:
        raise ConfigError("--workers sizes the local cluster; with --scheduler the cluster's own workers are used")
    cfg = read_config(config_path)
    if data is not None:
        cfg = cfg.replace(data=data)
    grid = load_grid(grid_path)
    result = run_sweep(cfg, grid, out=out, scheduler=scheduler, workers=workers, metric=metric, oos=oos, top=top,
                       progress=not quiet, grid_source=f"grid file {grid_path!r}")
    if not quiet:
        print_best(result)


def print_best(result) -> None:
    """The best points with their grid values and headline metrics, and where the sweep went."""
    from rich.console import Console
    from rich.table import Table

    from .render import _fmt, _ts

    info = result.info
    metric = info["metric"]
    shown = ["total_pnl", "sharpe", "max_drawdown", "win_rate", "round_trips"]
    if info["oos"] is not None:
        shown += ["oos_total_pnl", "oos_sharpe"]
    if metric not in shown:
        shown.insert(0, metric)
    t = Table(title=f"Best {len(result.best)} of {info['points']} points by {metric} "
                    f"(over {len(info['instruments'])} instruments)")
    keys = list(info["grid"])
    short = [k.rsplit(".", 1)[-1] for k in keys]
    for c in ["point"] + (short if len(set(short)) == len(short) else keys) + shown:
        t.add_column(c, justify="right")
    for row in result.best:
        t.add_row(*(_fmt(row[c], 4) for c in ["point"] + keys + shown))
    console = Console(width=160)
    console.print(t)
    where = f"; out-of-sample from {_ts(info['split_ts'])} UTC" if info["split_ts"] is not None else ""
    ran = f"on {info['workers']} Dask workers" if info["workers"] else "in this process"
    console.print(f"{info['points']} points x {len(info['instruments'])} instruments {ran} in {info['elapsed_s']:.1f} s{where}")
    if result.out is not None:
        console.print(f"Sweep written to {result.out}/ (sweep.parquet, points.parquet, results.duckdb, sweep.json)")
