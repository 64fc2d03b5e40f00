"""Normalize throughput on the real Binance capture, side by side with cryptofeed's book handling.

    python benchmarks/recorder.py [--repeat 5]

qfreplay: ``normalize`` of the capture's diff-depth frames (+ its REST snapshot) from the gzip
journal to Parquet: decompress, parse, U/u sync, book, 100 ms rows, Parquet (one core).
The live recorder's path (one ``Feed.feed`` call per frame, as frames arrive; no batching) is
timed too, from the decompressed records to the writer's buffers.
cryptofeed 2.4: the same frames, same gzip file, through ``Binance.message_handler`` with a
no-op book callback (its book upkeep only: no rows, no Parquet). It runs in its own venv:

    ~/.pyenv/versions/3.11.7/bin/python -m venv benchmarks/.venv-cryptofeed
    benchmarks/.venv-cryptofeed/bin/pip install "cryptofeed==2.4.0"

Results go to stdout and benchmarks/out/recorder.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
CAPTURE = REPO.parent / "shared" / "data" / "real" / "btcusdt_20240808.gz"
CF_PYTHON = HERE / ".venv-cryptofeed" / "bin" / "python"


def time_normalize(path: Path, repeat: int, **kw) -> tuple[float, float, dict]:
    """Best wall-clock and best CPU (process) seconds of ``normalize`` over ``path``."""
    from qfreplay.capture.normalize import normalize

    best, best_cpu, counts = float("inf"), float("inf"), {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat + 1):  # the first run compiles / loads the numba cache
            out = Path(tmp) / f"run{i}"
            t0, c0 = time.perf_counter(), time.process_time()
            stats = normalize([path], out, venue="binance", symbol="BTC-USDT", **kw)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i:
                best, best_cpu, counts = min(best, dt), min(best_cpu, dc), stats.counts
            shutil.rmtree(out)
    return best, best_cpu, counts


def time_live_path(path: Path, repeat: int) -> tuple[float, float]:
    """Best wall and CPU seconds of the recorder's per-frame path over the records of ``path``."""
    from qfreplay.capture.feed import make_feed
    from qfreplay.capture.journal import read_journal
    from qfreplay.capture.writer import DatasetWriter

    records = list(read_journal(path))
    best, best_cpu = float("inf"), float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat + 1):
            feed = make_feed("binance", ["BTC-USDT"], 20, 100, DatasetWriter(tmp, 20))
            t0, c0 = time.perf_counter(), time.process_time()
            for rec in records:
                feed.feed(rec)
            feed.close()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i:
                best, best_cpu = min(best, dt), min(best_cpu, dc)
    return best, best_cpu


def mean_levels(lines: list[bytes]) -> float:
    from qfreplay.venues import binance

    msgs = [binance.decode(x.split(b" ", 1)[1].rstrip())[0] for x in lines if b"@depth" in x[:90]]
    return sum(len(m.bid_px) + len(m.ask_px) for m in msgs) / len(msgs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not CAPTURE.exists():
        sys.exit(f"real capture {CAPTURE} not found")
    with tempfile.TemporaryDirectory() as tmp:
        depth_only = Path(tmp) / "btcusdt_depth.gz"
        with gzip.open(CAPTURE, "rb") as src, gzip.open(depth_only, "wb") as dst:
            lines = [x for x in src if b"@depth" in x[:90] or b'{"lastUpdateId"' in x[:60]]
            dst.writelines(lines)
        depth_msgs = len(lines) - 1
        total_lines = sum(1 for _ in gzip.open(CAPTURE, "rb"))

        ours_100, cpu_100, counts = time_normalize(depth_only, args.repeat)
        ours_0, cpu_0, _ = time_normalize(depth_only, args.repeat, interval_ms=0)
        full, cpu_full, _ = time_normalize(CAPTURE, args.repeat)
        live, cpu_live = time_live_path(depth_only, args.repeat)
        result = {
            "capture": str(CAPTURE.name),
            "depth_messages": depth_msgs,
            "mean_levels_per_depth_message": mean_levels(lines),
            "qfreplay_depth_msgs_per_s_interval_100ms": depth_msgs / ours_100,
            "qfreplay_depth_msgs_per_cpu_s_interval_100ms": depth_msgs / cpu_100,
            "qfreplay_depth_msgs_per_s_interval_0": depth_msgs / ours_0,
            "qfreplay_depth_msgs_per_cpu_s_interval_0": depth_msgs / cpu_0,
            "qfreplay_all_msgs_per_s_full_capture": total_lines / full,
            "qfreplay_all_msgs_per_cpu_s_full_capture": total_lines / cpu_full,
            "qfreplay_live_path_depth_msgs_per_s": depth_msgs / live,
            "qfreplay_live_path_depth_msgs_per_cpu_s": depth_msgs / cpu_live,
            "qfreplay_book_rows": counts.get("book", 0),
        }
        if CF_PYTHON.exists():
            cf = json.loads(subprocess.run([str(CF_PYTHON), str(HERE / "cryptofeed_book.py"), str(depth_only), str(args.repeat)],
                                           check=True, capture_output=True, text=True).stdout)
            result["cryptofeed_depth_msgs_per_s"] = cf["messages"] / cf["seconds"]
            result["cryptofeed_depth_msgs_per_cpu_s"] = cf["messages"] / cf["cpu_seconds"]
            result["cryptofeed_book_callbacks"] = cf["book_callbacks"]
            result["speedup_vs_cryptofeed_wall"] = result["qfreplay_depth_msgs_per_s_interval_100ms"] / result["cryptofeed_depth_msgs_per_s"]
            result["speedup_vs_cryptofeed_cpu"] = result["qfreplay_depth_msgs_per_cpu_s_interval_100ms"] / result["cryptofeed_depth_msgs_per_cpu_s"]
        else:
            result["cryptofeed"] = f"not measured: create {CF_PYTHON.parent.parent} (see this file's docstring)"
    for k, v in result.items():
        print(f"{k:45s} {v:,.0f}" if isinstance(v, float) and v > 100 else f"{k:45s} {v:.2f}" if isinstance(v, float) else f"{k:45s} {v}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "recorder.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
