"""Engine throughput: features + signals + fixed fills on 20-level books, single thread.

Run by hand (not part of CI's pass/fail):

    python benchmarks/engine.py [--rows 1000000] [--python-rows 20000]

Measured side by side in one run, on the same arrays:
  * qfreplay's numba kernels (features_kernel + execution_kernel with the built-in strategy),
    compile time excluded and measured separately in a fresh subprocess with an empty cache;
  * (a) a straightforward pandas/Python implementation of the original dashboard's per-row
    algorithm (DataFrame.iterrows over rows, as the dashboard did), on a subset of rows;
  * (b) polars expressions for the features and signals (no execution: it has no row state);
  * (c) the floor: one numpy pass that reads the same four level arrays (memory bandwidth).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")  # single thread, like the engine

LEVELS = 20


def make_books(rows: int, seed: int = 0):
    """Random 20-level books around a random-walk mid (float64, C-contiguous)."""
    rng = np.random.default_rng(seed)
    tick = 0.01
    mid = 60_000 + np.cumsum(rng.choice([-1.0, 0.0, 0.0, 1.0], rows)) * tick
    half = rng.integers(1, 4, rows) * tick / 2
    steps = np.arange(LEVELS) * tick
    bid_px = np.ascontiguousarray((mid - half)[:, None] - steps[None, :])
    ask_px = np.ascontiguousarray((mid + half)[:, None] + steps[None, :])
    bid_sz = rng.exponential(1.0, (rows, LEVELS))
    ask_sz = rng.exponential(1.0, (rows, LEVELS))
    ts = (1_723_075_200_000_000_000 + np.arange(rows, dtype=np.int64) * 100_000_000).astype(np.int64)
    flags = np.zeros(rows, np.uint8)
    return ts, flags, bid_px, bid_sz, ask_px, ask_sz


REAL_CAPTURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "btcusdt_20240808.gz"


def real_books(rows: int):
    """The real Binance BTCUSDT capture normalized to 20-level book rows, tiled to ``rows`` rows."""
    from qfreplay.instruments import Instrument
    from qfreplay.store import load_book

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "qfreplay.cli", "normalize", str(REAL_CAPTURE), "--out", tmp,
                        "--venue", "binance", "--symbol", "BTC-USDT"], check=True, capture_output=True)
        book = load_book(tmp, Instrument("binance", "BTC-USDT"))
    reps = -(-rows // len(book))
    span = int(book.ts_recv[-1] - book.ts_recv[0]) + 100_000_000
    ts = np.concatenate([book.ts_recv + k * span for k in range(reps)])[:rows]
    tile = lambda a: np.ascontiguousarray(np.concatenate([a] * reps)[:rows])  # noqa: E731
    return ts, tile(book.flags), tile(book.bid_px), tile(book.bid_sz), tile(book.ask_px), tile(book.ask_sz)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def engine_runner(ts, flags, bid_px, bid_sz, ask_px, ask_sz):
    from qfreplay.config import load_config_dict
    from qfreplay.engine import kernels as K
    from qfreplay.engine.run import execution_params
    from qfreplay.engine.specialize import execution_kernel_for
    from qfreplay.engine.strategy import load_strategy

    cfg = load_config_dict({})
    strategy = load_strategy(cfg.signal)
    xp, xi = execution_params(cfg)
    execute = execution_kernel_for(strategy.fn)
    n = len(ts)
    feats = np.empty((n, K.N_FEATURES))
    valid = np.empty(n, np.bool_)
    out_sig = np.empty(n, np.int8)
    out = [np.empty(n) for _ in range(4)]
    cap = 2 * n + 1
    bufs = (np.empty((cap, 2), np.int64), np.empty((cap, 5)), np.empty((cap, 2), np.int64), np.empty(cap, np.int8), np.empty((cap, 5)))

    def run():
        fstate = np.zeros(K.FEATURE_STATE_SIZE)
        K.features_kernel(bid_px, bid_sz, ask_px, ask_sz, flags, LEVELS, fstate, feats, valid)
        ist = np.zeros(K.INT_STATE_SIZE, np.int64)
        fst = np.zeros(K.FLOAT_STATE_SIZE)
        execute(strategy.params, strategy.new_state(), ts, feats, valid,
                           bid_px, bid_sz, ask_px, ask_sz, xp, xi, ist, fst, out_sig, *out, *bufs)
        return int(ist[K.IS_FILLS])

    return run


def pandas_dashboard(ts, bid_px, bid_sz, ask_px, ask_sz):
    """The original dashboard's per-row loop: a DataFrame of books, iterrows, Python arithmetic."""
    import pandas as pd

    df = pd.DataFrame({"ts": ts, "bids_px": list(bid_px), "bids_sz": list(bid_sz), "asks_px": list(ask_px), "asks_sz": list(ask_sz)})

    def run():
        position, cash, fills = 0.0, 0.0, 0
        out = []
        for _, row in df.iterrows():
            bb, ba = row["bids_px"][0], row["asks_px"][0]
            bid_vol, ask_vol = float(sum(row["bids_sz"])), float(sum(row["asks_sz"]))
            mid = (bb + ba) / 2
            spread_bps = (ba - bb) / mid * 10_000
            imbalance = (bid_vol - ask_vol) / (bid_vol + ask_vol) if bid_vol + ask_vol else 0.0
            signal, conf = 0, 0.0
            if imbalance > 0.15 and spread_bps < 10:
                signal, conf = 1, min(0.95, 0.6 + 2 * abs(imbalance))
            elif imbalance < -0.15 and spread_bps < 10:
                signal, conf = -1, min(0.95, 0.6 + 2 * abs(imbalance))
            target = signal * 0.01 if signal and conf >= 0.6 else position
            if target != position:
                q = target - position
                px = ba * 1.0005 if q > 0 else bb * 0.9995
                cash -= q * px + abs(q) * px * 0.001
                position = target
                fills += 1
            out.append({"mid": mid, "imbalance": imbalance, "signal": signal, "equity": cash + position * mid})
        return pd.DataFrame(out), fills

    return run


def polars_features(ts, bid_px, bid_sz, ask_px, ask_sz):
    import polars as pl

    df = pl.DataFrame({
        "bb": bid_px[:, 0], "ba": ask_px[:, 0],
        "bid_px": bid_px, "bid_sz": bid_sz, "ask_px": ask_px, "ask_sz": ask_sz,
    })

    def run():
        bvol = pl.col("bid_sz").arr.sum()
        avol = pl.col("ask_sz").arr.sum()
        mid = (pl.col("bb") + pl.col("ba")) / 2
        out = df.lazy().select(
            mid.alias("mid"),
            ((pl.col("ba") - pl.col("bb")) / mid * 1e4).alias("spread_bps"),
            bvol.alias("bid_vol"), avol.alias("ask_vol"),
        ).with_columns(
            ((pl.col("bid_vol") - pl.col("ask_vol")) / (pl.col("bid_vol") + pl.col("ask_vol"))).alias("imbalance"),
        ).with_columns(
            pl.when((pl.col("imbalance") > 0.15) & (pl.col("spread_bps") < 10)).then(1)
            .when((pl.col("imbalance") < -0.15) & (pl.col("spread_bps") < 10)).then(-1).otherwise(0).alias("signal"),
            pl.min_horizontal(pl.lit(0.95), 0.6 + 2 * pl.col("imbalance").abs()).alias("confidence"),
        ).collect()
        return out.height

    return run


def numpy_floor(bid_px, bid_sz, ask_px, ask_sz):
    def run():
        return float(bid_px.sum() + bid_sz.sum() + ask_px.sum() + ask_sz.sum())

    return run


COMPILE_SNIPPET = r"""
import time, sys, json
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
import numpy as np
from benchmarks.engine import make_books, engine_runner
arrays = make_books(1000)
t1 = time.perf_counter()
run = engine_runner(*arrays)
run()
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_call_s": t2 - t1}}))
"""


def compile_time(cache_dir: str) -> dict:
    """First-call time of the kernels in a fresh interpreter with the given numba cache dir."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "QFREPLAY_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET.format(root=root)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--python-rows", type=int, default=20_000)
    ap.add_argument("--data", choices=["random", "real"], default="random",
                    help="random: i.i.d. random books (a signal on ~1/3 of rows, a fill on ~1/6: the worst case); "
                         "real: the real Binance capture (shared/data/real) normalized and tiled")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        cold = compile_time(cache)
        warm = compile_time(cache)
    print(f"compile (empty cache): {cold['first_call_s']:.2f} s; first call with cache: {warm['first_call_s']:.3f} s")

    arrays = make_books(args.rows) if args.data == "random" else real_books(args.rows)
    ts, flags, bid_px, bid_sz, ask_px, ask_sz = arrays
    engine = engine_runner(*arrays)
    engine()  # compile / load outside the timing
    t_engine = best_of(engine)
    t_floor = best_of(numpy_floor(bid_px, bid_sz, ask_px, ask_sz))
    t_polars = best_of(polars_features(ts, bid_px, bid_sz, ask_px, ask_sz))
    m = min(args.python_rows, args.rows)
    t_pandas = best_of(pandas_dashboard(ts[:m], bid_px[:m], bid_sz[:m], ask_px[:m], ask_sz[:m]), repeat=1)

    rate = lambda rows, t: rows / t  # noqa: E731
    r_engine, r_floor = rate(args.rows, t_engine), rate(args.rows, t_floor)
    r_polars, r_pandas = rate(args.rows, t_polars), rate(m, t_pandas)
    fills = engine()
    print(f"rows: {args.rows:,} x {LEVELS} levels, {args.data} books, {fills:,} fills (pandas baseline on {m:,} rows)")
    print(f"{'implementation':<44}{'rows/s':>16}{'vs engine':>12}")
    for name, r in [("qfreplay numba engine (features+signals+fills)", r_engine),
                    ("(c) numpy floor: one pass over the 4 arrays", r_floor),
                    ("(b) polars expressions (features+signals)", r_polars),
                    ("(a) pandas/Python per-row dashboard loop", r_pandas)]:
        print(f"{name:<44}{r:>16,.0f}{r_engine / r:>11.1f}x")
    print(f"engine / floor time ratio: {t_engine / t_floor:.2f} (target <= 3)")
    print(f"engine vs pandas: {r_engine / r_pandas:,.0f}x (target >= 100); engine >= 10M rows/s: {r_engine >= 1e7}")


if __name__ == "__main__":
    main()
