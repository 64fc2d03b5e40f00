"""Report time to first full render on a day of 100 ms data: server start → first tab's plots drawn.

Run by hand (not part of CI's pass/fail); needs Chromium at /usr/bin/chromium and playwright:

    python benchmarks/app.py [--hours 24] [--levels 20] [--runs 3] [--keep DIR]

Writes a synthetic two-venue dataset (tests/app/market.py: binance:BTC-USDT and coinbase:BTC-USD,
one book row per 100 ms each, trades, tickers, events) into a temporary folder, backtests it
(results folder as `qfreplay backtest` writes it), then for each run starts `qfreplay report` in a
fresh process and measures, with an already open headless Chromium:

  * listen:  process start → the port accepts connections (imports, results folder checks);
  * first render: process start → the Order Book tab shows its depth ladder and both plots
    (depth chart and liquidity heatmap canvases) and Bokeh reports the document idle;

then the time to open each other tab (click → its plots drawn) in the same page.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TABS = ("Signals", "Performance", "Arbitrage", "Analytics", "Data Quality")


def load_market():
    """tests/app/market.py without making tests a package on the path."""
    spec = importlib.util.spec_from_file_location("qfreplay_bench_market", ROOT / "tests" / "app" / "market.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_results(folder: Path, hours: float, levels: int) -> tuple[Path, dict]:
    from qfreplay.config import load_config_dict
    from qfreplay.engine.backtest import run_backtest

    data, out = folder / "data", folder / "results"
    t = time.perf_counter()
    info = load_market().write_market(data, minutes=hours * 60, seed=7, levels=levels)
    t_data = time.perf_counter() - t
    t = time.perf_counter()
    run_backtest(load_config_dict({"data": str(data), "out": str(out),
                                   "instruments": ["binance:BTC-USDT", "coinbase:BTC-USD"]}))
    t_backtest = time.perf_counter() - t
    return out, {"rows_per_instrument": info["rows"], "write_dataset_s": t_data, "backtest_s": t_backtest}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"qfreplay report exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("qfreplay report did not listen in time")


def visible_canvases(page) -> int:
    return page.locator("canvas").filter(visible=True).count()


def wait_until(check, timeout: float = 120, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise RuntimeError("timed out")


def one_run(browser, results: Path, tabs: bool) -> dict:
    port = free_port()
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    idle: list[float] = []
    page.on("console", lambda m: idle.append(time.perf_counter()) if "document idle" in m.text else None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "qfreplay.cli", "report", str(results), "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        t_listen = time.perf_counter() - t0
        page.goto(f"http://127.0.0.1:{port}/")
        wait_until(lambda: page.locator("[data-ladder]").count() == 1 and visible_canvases(page) >= 2 and idle)
        out = {"listen_s": t_listen, "first_render_s": max(idle[0], time.perf_counter()) - t0}
        if tabs:
            for tab in TABS:
                t = time.perf_counter()
                page.locator(".bk-tab", has_text=tab).first.click()
                wait_until(lambda: visible_canvases(page) >= 2)
                out[f"tab {tab} s"] = time.perf_counter() - t
        return out
    finally:
        page.close()
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0, help="hours of 100 ms book rows per instrument")
    ap.add_argument("--levels", type=int, default=20, help="levels a side")
    ap.add_argument("--runs", type=int, default=3, help="fresh report servers to time")
    ap.add_argument("--keep", type=Path, help="keep (or reuse) the dataset and results in this folder")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"needs Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="qfreplay-bench-app-") as tmp:
        folder = args.keep or Path(tmp)
        if (folder / "results" / "summary.json").is_file():
            results, setup = folder / "results", {"reused": str(folder)}
        else:
            results, setup = make_results(folder, args.hours, args.levels)
        print(json.dumps(setup))
        runs = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for k in range(args.runs):
                r = one_run(browser, results, tabs=(k == 0))
                runs.append(r)
                print(json.dumps({k2: round(v, 2) for k2, v in r.items()}))
            browser.close()
    first = [r["first_render_s"] for r in runs]
    listen = [r["listen_s"] for r in runs]
    print(f"{args.hours:g} h x 2 instruments of 100 ms rows, {args.levels} levels: "
          f"server start -> first tab rendered: median {statistics.median(first):.2f} s "
          f"(min {min(first):.2f}, max {max(first):.2f}); listening after {statistics.median(listen):.2f} s")


if __name__ == "__main__":
    main()
