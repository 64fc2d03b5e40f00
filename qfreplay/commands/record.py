"""``qfreplay record``: keep local L2 books of the real feeds and write the dataset."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from ..errors import ConfigError
from ..instruments import Instrument, check_venue, normalize_symbol
from ._common import config_option, read_config


def select_instruments(config_instruments: list[Instrument], venues: tuple[str, ...], symbols: tuple[str, ...]) -> list[Instrument]:
    """``--venue``/``--symbol`` applied to the config's instruments.

    No ``--symbol``: the config's instruments (of the ``--venue``\\ s, if given). A ``--symbol``
    written ``venue:SYMBOL`` names one instrument; a bare one is recorded on every ``--venue``.
    """
    vs = [check_venue(v) for v in venues]
    if not symbols:
        out = [i for i in config_instruments if not vs or i.venue in vs]
        if not out:
            raise ConfigError(f"no configured instrument is on venue(s) {', '.join(vs)}; add --symbol")
        return out
    out: list[Instrument] = []
    for s in symbols:
        if ":" in s:
            out.append(Instrument.parse(s))
        elif not vs:
            raise ConfigError(f"--symbol {s} needs a --venue (or write it as venue:SYMBOL, e.g. binance:{normalize_symbol(s)})")
        else:
            out += [Instrument(v, normalize_symbol(s)) for v in vs]
    return list(dict.fromkeys(out))


def status_line(statuses) -> str:
    parts = []
    for s in statuses:
        state = "up" if s.connected else "DOWN"
        parts.append(f"{s.venue} {state} {s.rate:6.1f} msg/s  books {s.in_sync}/{s.books} in sync  gaps {s.gaps}  reconnects {s.reconnects}")
    return " | ".join(parts)


@click.command()
@config_option()
@click.option("--venue", "venues", multiple=True, help="Venue to record (binance, binanceus, coinbase); repeatable.")
@click.option("--symbol", "symbols", multiple=True, help="Symbol (BTC-USDT, BTCUSDT or venue:SYMBOL); repeatable.")
@click.option("--out", type=click.Path(file_okay=False), help="Dataset root to write; default: the config's `data`.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds (default: until Ctrl-C / SIGTERM).")
@click.option("--quiet", is_flag=True, help="No status line.")
def record(config_path, venues, symbols, out, duration, quiet) -> None:
    """Record L2 books, trades, 24 h tickers and a data-quality log from the venues' public feeds.

    Keeps a local book per instrument in sync with the venue (Binance: diff stream + REST snapshot;
    Coinbase: level2), writes a book row every `record.interval_ms`, and journals every frame raw
    under <out>/raw so that `qfreplay normalize` can rebuild everything. Files are published by
    atomic rename, hourly and on exit; Ctrl-C or SIGTERM flushes and closes cleanly.
    """
    from ..capture.recorder import Recorder

    cfg = read_config(config_path)
    instruments = select_instruments(cfg.instrument_list, venues, symbols)
    rec = Recorder(cfg, instruments, out or cfg.data)
    tty = sys.stderr.isatty()

    def show(statuses) -> None:
        if quiet:
            return
        line = status_line(statuses)
        if tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        else:
            click.echo(line, err=True)

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, rec.stop)
        return await rec.run(duration, on_status=show)

    if not quiet:
        click.echo(f"recording {', '.join(map(str, instruments))} to {out or cfg.data} (Ctrl-C to stop)", err=True)
    try:
        stats = asyncio.run(main())
    finally:
        if tty and not quiet:
            sys.stderr.write("\n")
    if not quiet:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.counts.items())) or "no rows"
        click.echo(f"wrote {counts}; {len(stats.files)} Parquet files, {len(stats.raw_files)} raw journal files")
