"""``qfreplay exchange``: the local exchange (Binance + Coinbase protocols) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal

import click


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="TCP port on 127.0.0.1 (0: any free port).")
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option("--replay", type=click.Path(dir_okay=False, exists=True), help="Replay a raw journal or hftbacktest Binance capture instead of simulating.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Market time per wall-clock second.")
@click.option("--faults", default="", help="Fault rates, e.g. drop=0.01,disconnect=0.001,malformed=0.01,429=0.1,stall=0.001,stall_s=3")
@click.option("--instrument", "instruments", multiple=True, help="venue:SYMBOL to serve (default binance:BTC-USDT, coinbase:BTC-USD); repeatable.")
def exchange(port, seed, replay, speed, faults, instruments) -> None:
    """Serve simulated (or replayed) markets over the Binance spot and Coinbase Advanced Trade protocols.

    Point a config at it with

    \b
      venues:
        binance:  {ws_url: "ws://127.0.0.1:PORT", rest_url: "http://127.0.0.1:PORT"}
        coinbase: {ws_url: "ws://127.0.0.1:PORT/coinbase"}
    """
    from ..venues.local import Faults, LocalExchange

    fault_set = Faults.parse(faults)
    market = None
    if replay:
        from ..capture.replay import ReplayMarket

        market = ReplayMarket(replay)
        instruments = instruments or tuple(str(i) for i in market.instruments)

    async def main():
        ex = LocalExchange(seed=seed, instruments=list(instruments) or None, faults=fault_set, market=market, port=port, speed=speed)
        await ex.start()
        click.echo(f"local exchange on 127.0.0.1:{ex.port} serving {', '.join(str(i) for i in ex.instruments)}")
        click.echo(f"  binance  ws_url {ex.binance_ws_url}  rest_url {ex.binance_rest_url}")
        click.echo(f"  coinbase ws_url {ex.coinbase_ws_url}", nl=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await ex.stop()

    asyncio.run(main())
