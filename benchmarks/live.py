"""``qfreplay live`` latency and throughput: 2 venues × 4 instruments on the local exchange.

    python benchmarks/live.py [--seconds 8] [--rates 10,25,50,100,200,400,800] [--latency-rate 25]

The local exchange runs in its own process, serving a load market (4 instruments on Binance, 4 on
Coinbase; each publishes one depth update of a few levels every 1/rate s). In this process a full
``LiveSession`` records them (journal + Parquet) with ``record.interval_ms: 0`` (a book row per
message, so the latency excludes the snapshot cadence) and runs the engine on every row (20
levels, built-in strategy, 4 arbitrage pairs). Per row it measures:

- frame arrival → engine output: ``ts_recv`` (stamped by the recorder when the frame came off the
  WebSocket) to the moment the engine returned that row's signal, fill and equity;
- exchange → arrival: ``ts_recv − ts_event`` (the exchange stamps its wall clock), which grows
  without bound once the process falls behind the feed.

A rate is "kept up with" when, over the second half of the run, the exchange → arrival lag has a
p99 under 100 ms and at least 95% of what the exchange sent arrived. The live process's CPU time
per message is also reported (its capacity on a core of its own). Results go to stdout and
``benchmarks/out/live.json``. Both processes share this machine's cores, so the figures are a
floor for a machine where the venues are remote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

INSTRUMENTS = [f"binance:{a}-USDT" for a in ("BTC", "ETH", "SOL", "XRP")] + [f"coinbase:{a}-USD" for a in ("BTC", "ETH", "SOL", "XRP")]
PAIRS = [[INSTRUMENTS[k], INSTRUMENTS[k + 4]] for k in range(4)]
TICK = 0.01
DEPTH = 40


# ----------------------------------------------------------------------------- the load market (exchange side)


@dataclass
class DepthUpdate:
    ts: int
    venue: str
    symbol: str
    bids: list
    asks: list


class LoadMarket:
    """Each product: a ladder of DEPTH levels a side around a centre (in ticks); one update per period.

    An update changes 1–3 sizes near the touch; one in ten moves the centre a tick (4 level changes),
    so the book never crosses.
    """

    def __init__(self, instruments: list[str], rate: float, seed: int = 0, start_ns: int | None = None):
        self.now = time.time_ns() if start_ns is None else start_ns
        self.period = max(1, int(1e9 / rate))
        self.rng = random.Random(seed)
        self.products = {}
        for k, text in enumerate(instruments):
            venue, _, symbol = text.partition(":")
            centre = 100_000 + 5_000 * k
            bids = {centre - j: round(self.rng.uniform(0.1, 3.0), 4) for j in range(1, DEPTH + 1)}
            asks = {centre + j: round(self.rng.uniform(0.1, 3.0), 4) for j in range(1, DEPTH + 1)}
            self.products[(venue, symbol)] = {"centre": centre, "bids": bids, "asks": asks, "next": 0}
        self.restart_clock(self.now)

    def restart_clock(self, now_ns: int) -> None:
        """Put the market clock (which the exchange stamps on every message) at ``now_ns``."""
        self.now = now_ns
        for k, p in enumerate(self.products.values()):
            p["next"] = now_ns + (k * self.period) // len(self.products)

    @staticmethod
    def _px(ticks: int) -> float:
        return round(ticks * TICK, 2)

    def book(self, venue, symbol):
        p = self.products[(venue, symbol)]
        return ([(self._px(t), s) for t, s in sorted(p["bids"].items(), reverse=True)],
                [(self._px(t), s) for t, s in sorted(p["asks"].items())])

    def ticker(self, venue, symbol):
        last = self._px(self.products[(venue, symbol)]["centre"])
        return {"last": last, "open": last, "high": last, "low": last, "volume": 1.0, "quote_volume": last, "change_pct": 0.0}

    def _step(self, p: dict) -> tuple[list, list]:
        r = self.rng
        bids, asks, c = p["bids"], p["asks"], p["centre"]
        ub, ua = [], []
        if r.random() < 0.1:
            up = r.random() < 0.5
            if up:  # the best ask is taken, a new bid joins at the old centre
                del asks[c + 1]
                ua.append((c + 1, 0.0))
                asks[c + 1 + DEPTH] = round(r.uniform(0.1, 3.0), 4)
                ua.append((c + 1 + DEPTH, asks[c + 1 + DEPTH]))
                bids[c] = round(r.uniform(0.1, 3.0), 4)
                ub.append((c, bids[c]))
                del bids[c - DEPTH]
                ub.append((c - DEPTH, 0.0))
                p["centre"] = c + 1
            else:
                del bids[c - 1]
                ub.append((c - 1, 0.0))
                bids[c - 1 - DEPTH] = round(r.uniform(0.1, 3.0), 4)
                ub.append((c - 1 - DEPTH, bids[c - 1 - DEPTH]))
                asks[c] = round(r.uniform(0.1, 3.0), 4)
                ua.append((c, asks[c]))
                del asks[c + DEPTH]
                ua.append((c + DEPTH, 0.0))
                p["centre"] = c - 1
        else:
            for _ in range(r.randint(1, 3)):
                j = r.randint(1, 10)
                size = round(r.uniform(0.1, 3.0), 4)
                if r.random() < 0.5:
                    bids[c - j] = size
                    ub.append((c - j, size))
                else:
                    asks[c + j] = size
                    ua.append((c + j, size))
        fix = lambda xs, rev: sorted({self._px(t): s for t, s in xs}.items(), reverse=rev)  # noqa: E731
        return fix(ub, True), fix(ua, False)

    def advance(self, until_ns: int) -> list:
        out = []
        for (venue, symbol), p in self.products.items():
            while p["next"] <= until_ns:
                bids, asks = self._step(p)
                out.append(DepthUpdate(p["next"], venue, symbol, bids, asks))
                p["next"] += self.period
        out.sort(key=lambda e: e.ts)
        self.now = max(self.now, until_ns)
        return out


def serve_exchange(rate: float) -> None:
    """The exchange process: print the port, serve until SIGTERM, print what was sent."""
    from qfreplay.venues.local import LocalExchange

    async def main():
        period_ms = 1000.0 / rate
        tick_ms = max(1, min(50, int(period_ms / 2)))
        ex = LocalExchange(market=LoadMarket(INSTRUMENTS, rate), instruments=INSTRUMENTS, tick_ms=tick_ms, ticker_ms=10_000)
        await ex.start()  # its clock task starts at the next await: align the market clock to now first
        ex.market.restart_clock(time.time_ns())
        print(json.dumps({"port": ex.port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print(json.dumps({"sent": ex.sent}), flush=True)
        await ex.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- the live side


class RowLog:
    """Preallocated per-row timings: ts_recv, ts_event, engine done."""

    def __init__(self, cap: int = 4_000_000):
        self.a = np.zeros((cap, 3), np.int64)
        self.n = 0


def measure(rate: float, seconds: float, tmp: Path) -> dict:
    from qfreplay.config import load_config_dict
    from qfreplay.engine.live import LiveSession

    ex = subprocess.Popen([sys.executable, __file__, "--serve-exchange", "--rate", str(rate)], cwd=REPO,
                          stdout=subprocess.PIPE, text=True)
    try:
        port = json.loads(ex.stdout.readline())["port"]
        b = {"ws_url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}"}
        cfg = load_config_dict({
            "data": str(tmp / f"data-{rate:g}"), "out": str(tmp / f"out-{rate:g}"), "instruments": INSTRUMENTS,
            "arbitrage": {"pairs": PAIRS}, "record": {"levels": 20, "interval_ms": 0, "raw": True},
            "venues": {"binance": b, "coinbase": {"ws_url": f"ws://127.0.0.1:{port}/coinbase"}},
        })
        session = LiveSession(cfg, refresh_s=1.0)
        log = RowLog()
        engine_row = session.engine.on_book_row

        def timed(inst, row):
            out = engine_row(inst, row)
            k = log.n
            if k < len(log.a):
                log.a[k, 0], log.a[k, 1], log.a[k, 2] = row.ts_recv, row.ts_event, time.time_ns()
                log.n = k + 1
            return out

        session.engine.on_book_row = timed
        flushes: list[tuple[int, float]] = []  # (wall ns, process CPU s) at every results refresh
        session.on_flush = lambda _summary: flushes.append((time.time_ns(), time.process_time()))
        t0 = time.time_ns()
        result = asyncio.run(session.run(duration=seconds))
        t1 = time.time_ns()
        ex.send_signal(signal.SIGTERM)
        sent = json.loads(ex.communicate(timeout=20)[0].strip().splitlines()[-1])["sent"]
    finally:
        ex.kill()
    rows = log.a[: log.n]
    half = t0 + (t1 - t0) // 2  # t0: the session starts (engine warm-up, results folder, connections)
    steady = rows[rows[:, 0] >= half]
    lat = (steady[:, 2] - steady[:, 0]) / 1e6
    lag = (steady[:, 0] - steady[:, 1]) / 1e6
    frames = sum(s.messages for s in session.source.status())
    # CPU per row in the steady second half: between the first refresh after half time and the last
    window = [f for f in flushes if f[0] >= half]
    cpu_per_row = None
    if len(window) >= 2:
        (w0, c0), (w1, c1) = window[0], window[-1]
        n = int(((rows[:, 2] >= w0) & (rows[:, 2] < w1)).sum())
        cpu_per_row = (c1 - c0) / n if n else None
    sent_total = sum(sent.values())
    offered = rate * len(INSTRUMENTS)
    out = {
        "rate_per_instrument": rate,
        "offered_msgs_per_s": offered,
        "sent_msgs": sent_total,
        "received_frames": frames,
        "rows": int(log.n),
        "rows_per_s_steady": len(steady) / ((t1 - half) / 1e9),
        "arrival_to_output_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
        "arrival_to_output_ms_p99": float(np.percentile(lat, 99)) if len(lat) else None,
        "exchange_to_arrival_ms_p50": float(np.percentile(lag, 50)) if len(lag) else None,
        "exchange_to_arrival_ms_p99": float(np.percentile(lag, 99)) if len(lag) else None,
        "live_cpu_ms_per_row": cpu_per_row * 1e3 if cpu_per_row else None,
        "rows_per_live_cpu_s": 1.0 / cpu_per_row if cpu_per_row else None,
        "late_rows": result.status["late_rows"],
    }
    out["kept_up"] = bool(len(lag) and out["exchange_to_arrival_ms_p99"] < 100 and frames >= 0.95 * sent_total)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="Measured run per rate.")
    ap.add_argument("--rates", default="10,25,50,100,200,400,800", help="Depth updates per second per instrument, one run each.")
    ap.add_argument("--serve-exchange", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_exchange:
        serve_exchange(args.rate)
        return
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from qfreplay.config import load_config_dict
    from qfreplay.engine.live import LiveEngine

    LiveEngine(load_config_dict({"instruments": INSTRUMENTS, "arbitrage": {"pairs": PAIRS}})).warm_up(20)  # compile once
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in [float(r) for r in args.rates.split(",")]:
            r = measure(rate, args.seconds, Path(tmp))
            runs.append(r)
            f = lambda key, fmt: "-" if r[key] is None else format(r[key], fmt)  # noqa: E731
            print(f"{r['offered_msgs_per_s']:7.0f} msg/s offered, {r['sent_msgs'] / args.seconds:7.0f} sent, "
                  f"{r['rows_per_s_steady']:7.0f} rows/s processed | arrival->output p50 {f('arrival_to_output_ms_p50', '.3f')} ms "
                  f"p99 {f('arrival_to_output_ms_p99', '.3f')} ms | exchange->arrival p99 {f('exchange_to_arrival_ms_p99', '.1f')} ms | "
                  f"{f('rows_per_live_cpu_s', '6.0f')} rows per live CPU-second | "
                  f"{'kept up' if r['kept_up'] else 'FELL BEHIND'}", flush=True)
            if not r["kept_up"]:
                break
    kept = [r for r in runs if r["kept_up"]]
    result = {
        "instruments": INSTRUMENTS,
        "record": {"levels": 20, "interval_ms": 0},
        "seconds_per_rate": args.seconds,
        "runs": runs,
        "max_sustained_msgs_per_s": max((r["rows_per_s_steady"] for r in kept), default=0.0),
        # the live process's own capacity: messages it handles per second of its CPU time (recorder,
        # journal, Parquet, engine, results), at the highest rate it kept up with
        "live_capacity_msgs_per_cpu_s": max((r["rows_per_live_cpu_s"] or 0.0 for r in kept), default=0.0),
    }
    first = runs[0]
    if first["arrival_to_output_ms_p50"] is not None:
        print(f"\nframe arrival -> engine output at {first['offered_msgs_per_s']:.0f} msg/s: "
              f"p50 {first['arrival_to_output_ms_p50']:.3f} ms, p99 {first['arrival_to_output_ms_p99']:.3f} ms")
    print(f"max sustained: {result['max_sustained_msgs_per_s']:.0f} msg/s (2 venues x 4 instruments, one row per message); "
          f"the live process handles {result['live_capacity_msgs_per_cpu_s']:.0f} msg per CPU-second")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "live.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
