"""Sweep throughput: a 100-point grid over the demo data, against sequential ``qfreplay backtest`` runs.

Run by hand from the repository root (not part of CI's pass/fail):

    python benchmarks/sweep.py [--sequential 10] [--config configs/demo.yaml]

Measured, each in fresh processes like a user runs them:
  * ``qfreplay sweep --workers 1`` and ``--workers 2`` over the 100-point grid, wall time of the
    whole command (cluster start-up and numba compiles included) as a subprocess;
  * ``qfreplay backtest`` of the first ``--sequential`` grid points, one subprocess each, one
    after another; the time of all 100 is extrapolated from their mean (said so in the output);
  * the grid evaluation alone (``evaluate_s``: tasks only, on a cluster whose workers have
    already compiled the strategy) of the 100-point and a 400-point grid with 1 and 2 workers,
    with each worker's CPU seconds during it (on a shared machine the wall time can only shrink
    as far as the CPU the workers actually get);
  * peak resident memory of each worker (``ru_maxrss``) for a 10-point and the 100-point grid,
    each on a fresh cluster, to show it does not grow with the grid.
Results go to benchmarks/out/sweep.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# 5 x 5 x 2 x 2 = 100 points; one features.levels value, so each worker computes features once per day
GRID = {
    "signal.imbalance_threshold": [0.1, 0.2, 0.3, 0.4, 0.5],
    "execution.latency_ms": [0, 50, 100, 200, 500],
    "execution.min_confidence": [0.6, 0.7],
    "execution.slippage_bps": [0, 5],
}
SMALL_GRID = {"signal.imbalance_threshold": [0.1, 0.2, 0.3, 0.4, 0.5], "execution.slippage_bps": [0, 5]}
# 400 points for the scaling in workers: the 100-point grid evaluates in about a second, too little to time
SCALING_GRID = {**GRID, "execution.cooldown_ms": [0, 500, 1000, 5000]}


def _qfreplay(*args: str) -> float:
    """Wall seconds of one ``qfreplay`` command in a subprocess (fails loudly on a non-zero exit)."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "qfreplay.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"qfreplay {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t


def sequential_backtests(config: Path, points: list[dict], tmp: Path) -> list[float]:
    """One ``qfreplay backtest`` subprocess per point, each with its own config file and results folder."""
    base = yaml.safe_load(config.read_text())
    times = []
    for i, point in enumerate(points):
        cfg = json.loads(json.dumps(base))
        for dotted, value in point.items():
            section, key = dotted.split(".")
            cfg.setdefault(section, {})[key] = value
        path = tmp / f"point{i}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        times.append(_qfreplay("backtest", "--config", str(path), "--out", str(tmp / f"bt{i}"), "--quiet"))
    return times


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    return time.process_time()


def on_cluster(config: Path, workers: int, grids: list[dict], repeat: int = 1) -> list[dict]:
    """Run ``grids`` in turn on one fresh LocalCluster; per grid: evaluate_s, worker CPU s and peak RSS so far."""
    from distributed import Client

    from qfreplay.config import load_config
    from qfreplay.sweep import local_cluster, parse_grid, run_sweep

    cfg = load_config(config)
    out = []
    with local_cluster(workers) as cluster, Client(cluster) as client:
        for grid in grids:
            runs = []
            for _ in range(repeat):  # the best of `repeat`: the machine is shared, the least disturbed run counts
                cpu0 = client.run(_cpu_s)
                result = run_sweep(cfg, parse_grid(grid), client=client, write=False)
                cpu = [round(v - cpu0[k], 2) for k, v in sorted(client.run(_cpu_s).items())]
                runs.append((result.info["evaluate_s"], cpu, result.info["tasks"]))
            evaluate_s, cpu, tasks = min(runs)
            rss = sorted(client.run(_peak_rss_mb).values())
            out.append({"points": result.info["points"], "tasks": tasks, "evaluate_s": evaluate_s,
                        "evaluate_s_runs": [r[0] for r in runs], "worker_cpu_s": cpu,
                        "worker_peak_rss_mb": [round(r, 1) for r in rss]})
    return out


def cli_runs(config: Path, points: list[dict], sequential: int) -> dict:
    """``qfreplay sweep`` with 1 and 2 workers vs ``qfreplay backtest`` of each point, all as subprocesses."""
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        grid_file = tmp / "grid.yaml"
        grid_file.write_text(yaml.safe_dump(GRID))
        cli = {}
        for workers in (1, 2):
            cli[workers] = _qfreplay("sweep", "--config", str(config), "--grid", str(grid_file), "--workers", str(workers),
                                     "--out", str(tmp / f"sweep{workers}"), "--quiet")
            print(f"qfreplay sweep, {len(points)} points, --workers {workers}: {cli[workers]:.1f} s wall", flush=True)
        report["sweep_cli_wall_s"] = {str(k): round(v, 2) for k, v in cli.items()}

        seq = sequential_backtests(config, points[:sequential], tmp)
    per_run = sum(seq) / len(seq)
    report["sequential_cli"] = {"runs_measured": len(seq), "mean_s": round(per_run, 2),
                                "min_s": round(min(seq), 2), "max_s": round(max(seq), 2),
                                "all_100_extrapolated_s": round(per_run * len(points), 1)}
    print(f"qfreplay backtest, {len(seq)} sequential runs measured: mean {per_run:.2f} s "
          f"-> 100 runs EXTRAPOLATED: {per_run * len(points):.0f} s", flush=True)
    for workers in (1, 2):
        report[f"speedup_vs_sequential_workers_{workers}"] = round(per_run * len(points) / cli[workers], 1)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--sequential", type=int, default=10, help="CLI backtests actually run (of the 100)")
    ap.add_argument("--cluster-only", action="store_true", help="skip the CLI runs (scaling and memory only)")
    args = ap.parse_args()
    config = (ROOT / args.config).resolve()
    points = [dict(zip(GRID, combo)) for combo in itertools.product(*GRID.values())]
    report: dict = {"grid_points": len(points), "config": args.config, "cpus": os.cpu_count(),
                    "load_avg_at_start": os.getloadavg()}

    if not args.cluster_only:
        report.update(cli_runs(config, points, args.sequential))

    # warm each cluster on the small grid first: its evaluate_s then excludes numba's compile on the workers
    scaling = {}
    for workers in (1, 2):
        small, big, large = on_cluster(config, workers, [SMALL_GRID, GRID, SCALING_GRID], repeat=3)
        scaling[workers] = {"warm_up_10": small, "grid_100": big, "grid_400": large}
        print(f"{workers} worker(s): evaluation of 100 points {big['evaluate_s']:.2f} s, of 400 points "
              f"{large['evaluate_s']:.2f} s ({large['tasks']} tasks, worker CPU {large['worker_cpu_s']} s); peak RSS "
              f"per worker {large['worker_peak_rss_mb']} MB", flush=True)
    report["cluster"] = scaling
    for n in ("grid_100", "grid_400"):
        report[f"evaluate_speedup_2_vs_1_workers_{n}"] = round(
            scaling[1][n]["evaluate_s"] / scaling[2][n]["evaluate_s"], 2)

    # peak memory per worker for 10, 100 and 400 points, each on a fresh single-worker cluster
    fresh = {len(list(itertools.product(*g.values()))): on_cluster(config, 1, [g])[0]["worker_peak_rss_mb"]
             for g in (SMALL_GRID, GRID, SCALING_GRID)}
    report["fresh_worker_peak_rss_mb"] = {str(k): v for k, v in fresh.items()}
    print(f"fresh worker peak RSS: 10 points {fresh[10]} MB, 100 points {fresh[100]} MB, 400 points {fresh[400]} MB", flush=True)
    report["load_avg_at_end"] = os.getloadavg()

    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
