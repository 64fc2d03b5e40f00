"""Normalize throughput on the real Binance capture, side by side with cryptofeed's book handling.

    python benchmarks/recorder.py [--repeat 5]

qfreplay: ``normalize`` of the capture's diff-depth frames (+ its REST snapshot) from the gzip
journal to Parquet: decompress, parse, U/u sync, book, 100 ms rows, Parquet (one core).
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


def time_normalize(path: Path, repeat: int, **kw) -> tuple[float, dict]:
    from qfreplay.capture.normalize import normalize

    best, counts = float("inf"), {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat + 1):  # the first run compiles / loads the numba cache
            out = Path(tmp) / f"run{i}"
            t0 = time.perf_counter()
            stats = normalize([path], out, venue="binance", symbol="BTC-USDT", **kw)
            dt = time.perf_counter() - t0
            if i:
                best, counts = min(best, dt), stats.counts
            shutil.rmtree(out)
    return best, counts


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

        ours_100, counts = time_normalize(depth_only, args.repeat)
        ours_0, _ = time_normalize(depth_only, args.repeat, interval_ms=0)
        full, _ = time_normalize(CAPTURE, args.repeat)
        result = {
            "capture": str(CAPTURE.name),
            "depth_messages": depth_msgs,
            "qfreplay_depth_msgs_per_s_interval_100ms": depth_msgs / ours_100,
            "qfreplay_depth_msgs_per_s_interval_0": depth_msgs / ours_0,
            "qfreplay_all_msgs_per_s_full_capture": total_lines / full,
            "qfreplay_book_rows": counts.get("book", 0),
        }
        if CF_PYTHON.exists():
            cf = json.loads(subprocess.run([str(CF_PYTHON), str(HERE / "cryptofeed_book.py"), str(depth_only), str(args.repeat)],
                                           check=True, capture_output=True, text=True).stdout)
            result["cryptofeed_depth_msgs_per_s"] = cf["messages"] / cf["seconds"]
            result["cryptofeed_book_callbacks"] = cf["book_callbacks"]
            result["speedup_vs_cryptofeed"] = result["qfreplay_depth_msgs_per_s_interval_100ms"] / result["cryptofeed_depth_msgs_per_s"]
        else:
            result["cryptofeed"] = f"not measured: create {CF_PYTHON.parent.parent} (see this file's docstring)"
    for k, v in result.items():
        print(f"{k:45s} {v:,.0f}" if isinstance(v, float) and v > 100 else f"{k:45s} {v:.2f}" if isinstance(v, float) else f"{k:45s} {v}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "recorder.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
