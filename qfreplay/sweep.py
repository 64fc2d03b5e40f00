"""``qfreplay sweep``: evaluate a grid of config points on Dask, loading each instrument-day once.

The unit of work is a :class:`SweepTask`: one instrument, one ``features.levels`` value and a group
of grid points. It walks the instrument's days in order, loads each day once, computes the
features once and steps one :class:`~qfreplay.engine.run.InstrumentRun` per grid point over them,
so kernel state carries across days exactly as in ``backtest`` and a worker holds one
instrument-day plus a few small state arrays per point, whatever the grid size.

With ``oos`` the time range is cut at ``split`` and each point is scored twice, as two fresh runs
(flat, fresh strategy state): in-sample on [start, split) and out-of-sample on [split, end), the
latter in columns prefixed ``oos_``. Each equals a backtest of that point with those bounds.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .config import Config, read_yaml
from .errors import ConfigError, DataError
from .instruments import Instrument
from .results import (SUMMARY_TABLE_FIELDS, check_out_dir, dump_summary, move_into_place, summary_rows,
                      temp_folder_beside)
from .store import BookArrays, book_arrays, check_dataset, partition_dates, partition_dir, read_partition

SWEEPABLE = ("features.", "signal.", "execution.")
METRICS = SUMMARY_TABLE_FIELDS + ("hit_rate_1s", "hit_rate_5s", "hit_rate_30s")
LOWER_IS_BETTER = {"invalid_rows", "fees", "max_drawdown"}
OOS_PREFIX = "oos_"
SWEEP_FILE = "sweep.json"
ROWS_FILE = "sweep.parquet"
POINTS_FILE = "points.parquet"
DUCKDB_FILE = "results.duckdb"
RANGE_KEYS = {"from", "to", "step", "num"}


# ----------------------------------------------------------------------------- the grid file


@dataclass(frozen=True)
class Grid:
    """Config keys and the values each takes; the points are their cartesian product, first key slowest."""

    axes: dict[str, tuple]

    @property
    def keys(self) -> list[str]:
        return list(self.axes)

    def points(self) -> list[dict[str, Any]]:
        return [dict(zip(self.axes, combo)) for combo in itertools.product(*self.axes.values())]

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.axes.values())


def _range_values(spec: dict, where: str) -> list:
    extra = set(spec) - RANGE_KEYS
    if extra or "from" not in spec or "to" not in spec or ("step" in spec) == ("num" in spec):
        raise ConfigError(f"{where}: a range is {{from: A, to: B, step: S}} or {{from: A, to: B, num: N}}")
    lo, hi = spec["from"], spec["to"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
        raise ConfigError(f"{where}: range bounds must be numbers (got {lo!r}, {hi!r})")
    if hi < lo:
        raise ConfigError(f"{where}: range 'to' ({hi}) is below 'from' ({lo})")
    if "num" in spec:
        num = spec["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{where}: range 'num' must be a whole number ≥ 1 (got {num!r})")
        return [float(round(v, 12)) for v in np.linspace(lo, hi, num)] if num > 1 else [lo]
    step = spec["step"]
    if not isinstance(step, (int, float)) or isinstance(step, bool) or not step > 0:
        raise ConfigError(f"{where}: range 'step' must be a number > 0 (got {step!r})")
    count = int(math.floor((hi - lo) / step + 1e-9)) + 1
    if count > 100_000:
        raise ConfigError(f"{where}: range gives {count} values; use a larger step")
    integral = all(isinstance(v, int) for v in (lo, hi, step))
    return [lo + k * step if integral else float(round(lo + k * step, 12)) for k in range(count)]


def _flatten(node: dict, prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not (set(value) & RANGE_KEYS):
            _flatten(value, dotted + ".", out)
        else:
            out[dotted] = value


def parse_grid(data: Any, source: str = "grid") -> Grid:
    """A grid from its YAML mapping: ``dotted.key: [values]``, a range ``{from, to, step|num}`` or one value.

    Nested mappings (``execution: {latency_ms: [0, 50]}``) are the same as dotted keys.
    """
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: expected a mapping of config keys to lists of values, e.g. 'execution.latency_ms: [0, 50]'")
    flat: dict[str, Any] = {}
    _flatten(data, "", flat)
    axes: dict[str, tuple] = {}
    for key, value in flat.items():
        where = f"{source}: key {key!r}"
        if not key.startswith(SWEEPABLE):
            raise ConfigError(f"{where} cannot be swept; grid keys are config keys under {', '.join(SWEEPABLE)}")
        if isinstance(value, dict):
            values = _range_values(value, where)
        elif isinstance(value, list):
            values = value
        else:
            values = [value]
        if not values:
            raise ConfigError(f"{where} has no values")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ConfigError(f"{where} lists a value twice")
        axes[key] = tuple(values)
    return Grid(axes)


def load_grid(path: str | Path) -> Grid:
    """Read a grid YAML file."""
    return parse_grid(read_yaml(path, "grid file"), f"grid file {str(path)!r}")


# ----------------------------------------------------------------------------- tasks (run on workers)


@dataclass(frozen=True)
class Segment:
    """A time range scored as one fresh run; ``prefix`` goes in front of its metric columns."""

    prefix: str
    start: Optional[int]
    end: Optional[int]


@dataclass(frozen=True)
class SweepTask:
    """One instrument, one ``features.levels``, some grid points: what one worker call evaluates."""

    data: str
    instrument: Instrument
    levels: int
    segments: tuple[Segment, ...]
    points: tuple[tuple[int, Config], ...]
    instruments: int = 1  # instruments in the sweep: a point counts as done once each has run it


def _bounds(segments: Iterable[Segment]) -> tuple[Optional[int], Optional[int]]:
    starts = [s.start for s in segments]
    ends = [s.end for s in segments]
    lo = None if any(v is None for v in starts) else min(starts)
    hi = None if any(v is None for v in ends) else max(ends)
    return lo, hi


def _rows_in(book: BookArrays, start: Optional[int], end: Optional[int]) -> BookArrays:
    ts = book.ts_recv
    lo = 0 if start is None else int(np.searchsorted(ts, start, "left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, "left"))
    return book if (lo, hi) == (0, len(ts)) else book.slice(lo, hi)


def flat_summary(instrument: Instrument, summary: dict) -> dict[str, Any]:
    """One instrument's summary as the flat metric columns of a sweep row (NaN as None)."""
    row = summary_rows({"instruments": {str(instrument): summary}}).to_pylist()[0]
    return {k: row[k] for k in METRICS}


def run_task(task: SweepTask, report: Callable[[float], None] = lambda units: None) -> list[dict[str, Any]]:
    """Evaluate every point of ``task``: one metric row per point; ``report`` gets progress in grid points."""
    from .engine.run import FeatureRun, InstrumentRun
    from .engine.strategy import load_strategy

    inst = task.instrument
    runs = {seg: {pid: InstrumentRun(inst, cfg, load_strategy(cfg.signal)) for pid, cfg in task.points}
            for seg in task.segments}
    features = {seg: FeatureRun(task.levels) for seg in task.segments}
    lo, hi = _bounds(task.segments)
    dates = partition_dates(task.data, "book", inst.venue, inst.symbol, lo, hi)
    step_units = 1.0 / (max(len(dates), 1) * len(task.segments) * task.instruments)  # one point, one day-segment
    for date in dates:
        table = read_partition(task.data, "book", inst.venue, inst.symbol, date, lo, hi)
        book = book_arrays(table) if table.num_rows else None
        for seg in task.segments:
            part = _rows_in(book, seg.start, seg.end) if book is not None else None
            if part is None or not len(part):
                report(step_units * len(task.points))
                continue
            feats, valid = features[seg].step(part)
            for run in runs[seg].values():
                run.step(part, feats, valid)  # a strategy's own exception arrives as one StrategyError line
                report(step_units)
        del book, table
    rows = []
    for pid, _ in task.points:
        row: dict[str, Any] = {"point": pid, "venue": inst.venue, "symbol": inst.symbol}
        for seg in task.segments:
            row.update({seg.prefix + k: v for k, v in flat_summary(inst, runs[seg][pid].summary()).items()})
        rows.append(row)
    return rows


def _run_task_on_worker(task: SweepTask, topic: str) -> list[dict[str, Any]]:
    """``run_task`` on a Dask worker, sending progress to the client at most every 0.2 s."""
    from distributed import get_worker

    worker = get_worker()
    pending = [0.0, time.monotonic()]

    def report(units: float) -> None:
        pending[0] += units
        if time.monotonic() - pending[1] > 0.2:
            worker.log_event(topic, pending[0])
            pending[0], pending[1] = 0.0, time.monotonic()

    rows = run_task(task, report)
    if pending[0]:
        worker.log_event(topic, pending[0])
    return rows


# ----------------------------------------------------------------------------- planning


def _point_configs(cfg: Config, grid: Grid, source: str) -> list[tuple[int, dict[str, Any], Config]]:
    """Every grid point as (id, its grid values, its validated config)."""
    from .engine.user import resolve_spec

    # workers may run in another folder (or machine): strategy file paths become absolute
    cfg = cfg.with_overrides({"signal.strategy": resolve_spec(cfg.signal.strategy)})
    out = []
    for pid, values in enumerate(grid.points()):
        try:
            overrides = dict(values)
            if "signal.strategy" in values:
                overrides["signal.strategy"] = resolve_spec(str(values["signal.strategy"]))
            point_cfg = cfg.with_overrides(overrides)
        except ConfigError as exc:
            msg = str(exc).removeprefix("config: ")
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise ConfigError(f"{source}: point {shown}: {msg}") from None
        out.append((pid, values, point_cfg))
    return out


def _check_strategies(points: list[tuple[int, dict, Config]]) -> None:
    """Load (import, validate parameters, compile) each point's strategy here, before any work is sent."""
    from .engine.strategy import load_strategy

    seen = set()
    for _, _, point_cfg in points:
        key = json.dumps(point_cfg.signal.model_dump(mode="json"), sort_keys=True)
        if key not in seen:
            seen.add(key)
            load_strategy(point_cfg.signal)


def _time_range(root: Path, instruments: list[Instrument], start: Optional[int], end: Optional[int]) -> tuple[int, int]:
    """First and last ts_recv of the instruments' book rows in [start, end), reading only ts_recv."""
    import pyarrow.compute as pc

    lo, hi = None, None
    for inst in instruments:
        dates = partition_dates(root, "book", inst.venue, inst.symbol, start, end)
        for date in dict.fromkeys((dates[0], dates[-1])):
            ts = pq.read_table(str(partition_dir(root, "book", inst.venue, inst.symbol, date)), columns=["ts_recv"])
            col = ts.column("ts_recv")
            if start is not None:
                col = col.filter(pc.greater_equal(col, start))
            if end is not None:
                col = col.filter(pc.less(col, end))
            if len(col):
                mm = pc.min_max(col)
                lo = mm["min"].as_py() if lo is None else min(lo, mm["min"].as_py())
                hi = mm["max"].as_py() if hi is None else max(hi, mm["max"].as_py())
    if lo is None:
        raise DataError(f"no book rows in {str(root)!r} for {', '.join(map(str, instruments))}")
    return lo, hi


def plan_tasks(data: str, instruments: list[Instrument], points: list[tuple[int, dict, Config]],
               segments: tuple[Segment, ...], chunks: int = 1) -> list[SweepTask]:
    """One task per (instrument, features.levels, chunk of points); ``chunks`` splits each group's points."""
    by_levels: dict[int, list[tuple[int, Config]]] = {}
    for pid, _, point_cfg in points:
        by_levels.setdefault(point_cfg.features.levels, []).append((pid, point_cfg))
    tasks = []
    for inst in instruments:
        for levels, group in by_levels.items():
            n = min(max(chunks, 1), len(group))
            for k in range(n):
                part = tuple(group[k::n])
                tasks.append(SweepTask(data, inst, levels, segments, part, len(instruments)))
    return tasks


def _chunks_for(workers: int, groups: int) -> int:
    """Split groups of points so that there are about four tasks per worker (each reloads its days once)."""
    if workers <= 1:
        return 1
    return max(1, math.ceil(4 * workers / max(groups, 1)))


# ----------------------------------------------------------------------------- running on Dask


def default_workers() -> int:
    """Worker processes of the local cluster: one per usable CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def local_cluster(workers: int, **kwargs: Any) -> Any:
    """A LocalCluster of single-threaded worker processes on 127.0.0.1, without a dashboard.

    The scheduler's small HTTP endpoint (health, metrics) gets a free port on 127.0.0.1 rather than
    8787, which a Dask dashboard of the user's own may hold.
    """
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                        **kwargs)


class _Cluster:
    """A Dask client: to the scheduler at ``address``, or to a new LocalCluster on 127.0.0.1."""

    def __init__(self, address: Optional[str], workers: Optional[int]):
        import logging

        from distributed import Client

        self.cluster = None
        if address:
            try:
                self.client = Client(address, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConfigError(f"cannot connect to the Dask scheduler at {address!r}: {exc}") from None
            try:
                self.client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                self.client.close()
                raise ConfigError(f"the Dask scheduler at {address!r} has no workers (start some with: "
                                  f"dask worker {address})") from None
        else:
            self.cluster = local_cluster(workers or default_workers(), silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info()["workers"])

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _run_on_dask(client: Any, tasks: list[SweepTask], on_progress: Callable[[float], None]) -> list[list[dict]]:
    topic = f"qfreplay-sweep-{uuid.uuid4().hex[:8]}"
    client.subscribe_topic(topic, lambda event: on_progress(float(event[1])))
    try:
        futures = client.map(_run_task_on_worker, tasks, topic=topic, pure=False)
        return client.gather(futures)
    finally:
        client.unsubscribe_topic(topic)


# ----------------------------------------------------------------------------- results


@dataclass
class SweepResult:
    """Rows (point × instrument), per-point aggregates, the best points, and where they were written."""

    out: Optional[Path]
    rows: pa.Table
    points: pa.Table
    best: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)


def _column(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def rows_table(keys: list[str], points: list[tuple[int, dict, Config]], rows: list[dict], prefixes: list[str]) -> pa.Table:
    """The sweep table: point, the grid keys, venue, symbol, then the metric columns of each segment."""
    values = {pid: vals for pid, vals, _ in points}
    cols: dict[str, pa.Array] = {"point": pa.array([r["point"] for r in rows], pa.int64())}
    for key in keys:
        cols[key] = _column([values[r["point"]][key] for r in rows])
    cols["venue"] = pa.array([r["venue"] for r in rows], pa.string())
    cols["symbol"] = pa.array([r["symbol"] for r in rows], pa.string())
    for prefix in prefixes:
        for m in METRICS:
            typ = pa.int64() if m in ("rows", "invalid_rows", "fills", "round_trips") else pa.float64()
            cols[prefix + m] = pa.array([r[prefix + m] for r in rows], typ)
    return pa.table(cols)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def points_sql(keys: list[str], prefixes: list[str], table: str = "sweep") -> str:
    """Per grid point over its instruments: sums of counts, P&L and fees; win rate and average round-trip
    P&L pooled over all round trips; the largest drawdown; the mean Sharpe and hit rates."""
    sel = ["point"] + [f"any_value({_q(k)}) AS {_q(k)}" for k in keys] + ["CAST(count(*) AS BIGINT) AS instruments"]
    for p in prefixes:
        c = lambda m: _q(p + m)  # noqa: E731
        for m in ("rows", "invalid_rows", "fills", "round_trips"):
            sel.append(f"CAST(sum({c(m)}) AS BIGINT) AS {c(m)}")
        for m in ("total_pnl", "realized_pnl", "fees"):
            sel.append(f"sum({c(m)}) AS {c(m)}")
        sel.append(f"sum({c('win_rate')} * {c('round_trips')}) / nullif(sum({c('round_trips')}), 0) AS {c('win_rate')}")
        sel.append(f"sum({c('realized_pnl')}) / nullif(sum({c('round_trips')}), 0) AS {c('avg_pnl_per_round_trip')}")
        sel.append(f"max({c('max_drawdown')}) AS {c('max_drawdown')}")
        for m in ("sharpe", "hit_rate_1s", "hit_rate_5s", "hit_rate_30s"):
            sel.append(f"avg({c(m)}) AS {c(m)}")
    return f"SELECT {', '.join(sel)} FROM {table} GROUP BY point ORDER BY point"


def metric_names(prefixes: list[str]) -> list[str]:
    return [p + m for p in prefixes for m in METRICS]


def best_points(points: pa.Table, metric: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` points by ``metric`` (lower is better for fees, drawdown and invalid rows); NaN last."""
    base = metric.removeprefix(OOS_PREFIX)
    rows = points.to_pylist()
    sign = 1.0 if base in LOWER_IS_BETTER else -1.0

    def key(r: dict) -> tuple:
        v = r[metric]
        bad = v is None or (isinstance(v, float) and math.isnan(v))
        return (bad, 0.0 if bad else sign * v, r["point"])

    return sorted(rows, key=key)[:top]


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def _check_out(out: Path) -> None:
    check_out_dir(out, is_sweep_dir, "qfreplay sweep")


def _write(out: Path, rows: pa.Table, points: pa.Table, info: dict) -> Path:
    """sweep.parquet, points.parquet, results.duckdb and sweep.json into a temp folder, then moved into place."""
    import duckdb

    tmp = temp_folder_beside(out)
    try:
        pq.write_table(rows, tmp / ROWS_FILE, compression="zstd")
        pq.write_table(points, tmp / POINTS_FILE, compression="zstd")
        con = duckdb.connect(str(tmp / DUCKDB_FILE))
        try:
            con.register("rows_arrow", rows)
            con.register("points_arrow", points)
            con.execute("CREATE TABLE sweep AS SELECT * FROM rows_arrow")
            con.execute("CREATE TABLE points AS SELECT * FROM points_arrow")
        finally:
            con.close()
        (tmp / SWEEP_FILE).write_text(dump_summary(info))
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def aggregate(rows: pa.Table, keys: list[str], prefixes: list[str]) -> pa.Table:
    """The per-point table of :func:`points_sql`, computed in an in-memory DuckDB."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("sweep", rows)
        rel = con.sql(points_sql(keys, prefixes))
        return (getattr(rel, "to_arrow_table", None) or rel.arrow)()  # duckdb 2 renamed arrow()
    finally:
        con.close()


def run_sweep(cfg: Config, grid: Grid, out: Optional[str | Path] = None, scheduler: Optional[str] = None,
              workers: Optional[int] = None, metric: str = "total_pnl", oos: Optional[float] = None,
              top: int = 10, progress: bool = False, write: bool = True, client: Any = None,
              grid_source: str = "grid") -> SweepResult:
    """Evaluate every grid point on every configured instrument.

    Args:
        scheduler: address of a running Dask scheduler; otherwise a LocalCluster of ``workers``
            processes (default: one per CPU) on 127.0.0.1 is started and closed. ``workers=0``
            runs in this process without Dask. ``client`` reuses an existing Dask client.
        oos: fraction of the time range (the end of it) scored separately as out-of-sample.
    """
    started = time.monotonic()
    prefixes = [""] + ([OOS_PREFIX] if oos is not None else [])
    if metric not in metric_names(prefixes):
        raise ConfigError(f"--metric {metric!r} is not a sweep metric; choose one of {', '.join(metric_names(prefixes))}")
    if oos is not None and not 0.0 < oos < 1.0:
        raise ConfigError(f"--oos must be a fraction between 0 and 1 (got {oos})")
    root = check_dataset(cfg.data).resolve()
    instruments = cfg.instrument_list
    for inst in instruments:
        if not partition_dates(root, "book", inst.venue, inst.symbol, cfg.start_ns, cfg.end_ns):
            raise DataError(f"instrument {inst} has no book rows in {cfg.data!r}")
    points = _point_configs(cfg, grid, grid_source)
    _check_strategies(points)
    out_path = Path(out if out is not None else f"{cfg.out}-sweep") if write else None
    if out_path is not None:
        _check_out(out_path)

    split = None
    if oos is not None:
        lo, hi = _time_range(root, instruments, cfg.start_ns, cfg.end_ns)
        split = lo + int(round((1.0 - oos) * (hi - lo)))
        segments = (Segment("", cfg.start_ns, split), Segment(OOS_PREFIX, split, cfg.end_ns))
    else:
        segments = (Segment("", cfg.start_ns, cfg.end_ns),)

    in_process = workers == 0 and client is None and not scheduler
    cluster = None
    try:
        n_workers, chunks = 0, 1
        if not in_process:
            if client is None:
                cluster = _Cluster(scheduler, workers)
                client = cluster.client
            n_workers = len(client.scheduler_info()["workers"])
            chunks = _chunks_for(n_workers, len(instruments) * len({c.features.levels for _, _, c in points}))
        tasks = plan_tasks(str(root), instruments, points, segments, chunks)
        evaluating = time.monotonic()
        with _progress(progress, len(points)) as p:
            task_id = p.add_task("sweep", total=len(points)) if p else None
            advance = (lambda units: p.advance(task_id, units)) if p else (lambda units: None)
            results = [run_task(t, advance) for t in tasks] if in_process else _run_on_dask(client, tasks, advance)
            if p:
                p.update(task_id, completed=len(points))
        evaluated = time.monotonic()
    finally:
        if cluster is not None:
            cluster.close()

    order = {str(i): k for k, i in enumerate(instruments)}
    flat = sorted((r for rs in results for r in rs), key=lambda r: (r["point"], order[f"{r['venue']}:{r['symbol']}"]))
    rows = rows_table(grid.keys, points, flat, prefixes)
    per_point = aggregate(rows, grid.keys, prefixes)
    best = best_points(per_point, metric, top)
    info = {
        "kind": "sweep",
        "config": cfg.to_dict(),
        "grid": {k: list(v) for k, v in grid.axes.items()},
        "points": len(points),
        "instruments": [str(i) for i in instruments],
        "metric": metric,
        "oos": oos,
        "split_ts": split,
        "workers": n_workers,
        "tasks": len(tasks),
        "elapsed_s": round(time.monotonic() - started, 3),
        "evaluate_s": round(evaluated - evaluating, 3),  # the tasks alone, without cluster start-up
        "best": best,
    }
    path = _write(out_path, rows, per_point, info) if out_path is not None else None
    return SweepResult(path, rows, per_point, best, info)


def load_sweep(folder: str | Path) -> tuple[dict, pa.Table]:
    """sweep.json and the sweep table of a sweep folder."""
    p = Path(folder)
    if not is_sweep_dir(p):
        raise DataError(f"{str(p)!r} is not a qfreplay sweep folder (no {SWEEP_FILE})")
    try:
        info = json.loads((p / SWEEP_FILE).read_text())
        rows = pq.read_table(p / ROWS_FILE)
    except (json.JSONDecodeError, pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read sweep folder {str(p)!r}: {str(exc).splitlines()[0]}") from None
    return info, rows


def _progress(enabled: bool, total: int):
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.completed:.0f}/{task.total:.0f} points"), TimeElapsedColumn(),
                    TimeRemainingColumn(), transient=True, console=Console(stderr=True))


__all__ = ["Grid", "SweepResult", "SweepTask", "load_grid", "parse_grid", "run_sweep", "run_task", "load_sweep",
           "METRICS"]
