"""``qfreplay normalize``: rebuild the dataset from raw journals."""

from __future__ import annotations

import click


@click.command()
@click.argument("raw", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset root to write.")
@click.option("--venue", help="Only this venue; with --symbol, names the venue of header-less (hftbacktest) files.")
@click.option("--symbol", help="Only this symbol; names the symbol of header-less (hftbacktest) files.")
@click.option("--levels", type=click.IntRange(1, 1000), help="Levels a side per book row (default: as recorded, else 20).")
@click.option("--interval-ms", type=click.IntRange(min=0), help="Book row cadence (default: as recorded, else 100).")
def normalize(raw, out, venue, symbol, levels, interval_ms) -> None:
    """Rebuild book / trades / ticker / events from raw journal files or folders.

    Reproduces what `qfreplay record` wrote from its journal (also from a journal cut short by a
    crash: `*.gz.part` files are read up to their last complete line), and reads hftbacktest's
    Binance spot collector files:

      qfreplay normalize btcusdt_20240808.gz --venue binance --symbol BTC-USDT --out data/real
    """
    from ..capture.normalize import normalize as run

    stats = run(raw, out, venue=venue, symbol=symbol, levels=levels, interval_ms=interval_ms)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items())) or "no rows"
    click.echo(f"read {stats.records} records ({stats.messages} messages) from {stats.files} files; wrote {counts} to {out}")
