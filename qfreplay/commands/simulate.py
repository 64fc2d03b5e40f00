"""``qfreplay simulate``: write a synthetic Binance + Coinbase dataset."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset folder to write (SPEC section 2).")
@click.option("--minutes", type=float, default=30.0, show_default=True, help="Simulated duration in minutes.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed; the same seed writes the same bytes.")
@click.option("--levels", type=int, default=20, show_default=True, help="Book levels per row and side.")
@click.option("--interval-ms", type=int, default=100, show_default=True,
              help="Book row cadence: at most one row per book per interval; 0 writes a row per update.")
@click.option("--start", default="2024-08-08T00:00:00Z", show_default=True,
              help="Start time, ISO 8601 (UTC unless a zone is given).")
@click.option("--force", is_flag=True, help="Replace --out if it already holds a dataset.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def simulate(out: str, minutes: float, seed: int, levels: int, interval_ms: int, start: str, force: bool, quiet: bool) -> None:
    """Write a synthetic L2 dataset: Binance BTC-USDT, ETH-USDT and Coinbase BTC-USD, ETH-USD.

    One latent fair price per asset drives both venues, each with its own lag and noise; books
    keep ~200+ levels a side, Binance publishes a diff every 100 ms and Coinbase many small
    updates; book imbalance carries a little information about the next mid moves, and a few
    times per half hour one venue dislocates by 27-60 bps for up to a few seconds. The recorder
    view adds receive latency, two gap/resync incidents and one reconnect per venue, and one
    invalid row per book. Writes the book, trades, ticker and events tables under --out; nothing
    is left behind on error.

    \b
    Example (the bundled sample):
      qfreplay simulate --out data/sample --minutes 30 --seed 7
    """
    from ..simulate import parse_time
    from ..simulate import simulate as run_simulation

    start_ns = parse_time(start)
    counts = run_simulation(
        out, minutes=minutes, seed=seed, levels=levels, interval_ms=interval_ms, start_ns=start_ns,
        progress=not quiet and sys.stderr.isatty(), force=force,
    )
    if not quiet:
        rows = ", ".join(f"{name} {n:,}" for name, n in counts.items())
        click.echo(f"wrote {out}: {minutes:g} min from {start}, seed {seed}: {rows} rows")
