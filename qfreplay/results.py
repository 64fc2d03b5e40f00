"""Writing and reading the results folder (SPEC section 6): Parquet tables, summary.json, results.duckdb.

Results are written into a hidden temporary folder beside the target and moved into place only
when complete, so a failed run never leaves a half-written results folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DataError, QfreplayError
from .schema import RESULT_TABLES

SUMMARY_FILE = "summary.json"
DUCKDB_FILE = "results.duckdb"
SUMMARY_TABLE_FIELDS = (
    "rows", "invalid_rows", "total_pnl", "realized_pnl", "fees", "fills", "round_trips", "win_rate",
    "avg_pnl_per_round_trip", "max_drawdown", "sharpe",
)


def _json_clean(value: Any) -> Any:
    """NaN and infinities become null, recursively."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_clean(v) for v in value]
    return value


def dump_summary(summary: dict) -> str:
    """summary.json text (NaN written as null)."""
    return json.dumps(_json_clean(summary), indent=2, allow_nan=False)


def is_results_dir(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file()


def check_out_dir(out: str | Path, is_ours=is_results_dir, what: str = "qfreplay results") -> Path:
    """An output folder may be new, empty, or an earlier one of ours (``is_ours``), which is replaced."""
    p = Path(out)
    if p.exists():
        if not p.is_dir():
            raise QfreplayError(f"output path {str(p)!r} exists and is not a folder")
        if any(p.iterdir()) and not is_ours(p):
            raise QfreplayError(f"output folder {str(p)!r} is not empty and holds no {what}; choose another --out")
    return p


def temp_folder_beside(out: Path) -> Path:
    """A new hidden folder next to ``out`` to build it in."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def move_into_place(tmp: Path, out: Path) -> Path:
    """Replace ``out`` (if any) by the finished folder ``tmp``; readers never see a half-written one."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)  # put the earlier folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


class ResultsWriter:
    """Stream result tables to Parquet in a temp folder; ``commit`` moves the folder into place."""

    def __init__(self, out: str | Path):
        self.out = check_out_dir(out)
        self.tmp = temp_folder_beside(self.out)
        self._writers: dict[str, pq.ParquetWriter] = {}

    def append(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        w = self._writers.get(name)
        if w is None:
            w = self._writers[name] = pq.ParquetWriter(self.tmp / f"{name}.parquet", RESULT_TABLES[name], compression="zstd")
        w.write_table(table)

    def _close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def commit(self, summary: dict) -> Path:
        """Finish every file, build results.duckdb, and swap the folder into place."""
        self._close()
        for name, schema in RESULT_TABLES.items():
            path = self.tmp / f"{name}.parquet"
            if not path.exists():
                pq.write_table(schema.empty_table(), path, compression="zstd")
        (self.tmp / SUMMARY_FILE).write_text(dump_summary(summary))
        build_duckdb(self.tmp, summary)
        return move_into_place(self.tmp, self.out)

    def abort(self) -> None:
        """Drop everything written so far."""
        try:
            self._close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def summary_rows(summary: dict) -> pa.Table:
    """The per-instrument summary as a flat table (one row per instrument)."""
    rows: dict[str, list] = {"venue": [], "symbol": []}
    for f in SUMMARY_TABLE_FIELDS:
        rows[f] = []
    for h in ("1s", "5s", "30s"):
        rows[f"hit_rate_{h}"] = []
    for name, s in summary["instruments"].items():
        venue, _, symbol = name.partition(":")
        rows["venue"].append(venue)
        rows["symbol"].append(symbol)
        for f in SUMMARY_TABLE_FIELDS:
            v = s.get(f)
            rows[f].append(None if isinstance(v, float) and math.isnan(v) else v)
        for h in ("1s", "5s", "30s"):
            v = s["hit_rate"].get(h)
            rows[f"hit_rate_{h}"].append(None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
    types = {"venue": pa.string(), "symbol": pa.string(), "rows": pa.int64(), "invalid_rows": pa.int64(),
             "fills": pa.int64(), "round_trips": pa.int64()}
    return pa.table({k: pa.array(v, types.get(k, pa.float64())) for k, v in rows.items()})


def build_duckdb(folder: Path, summary: dict) -> Path:
    """results.duckdb with every result table plus ``summary`` (one row per instrument)."""
    import duckdb

    path = folder / DUCKDB_FILE
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    try:
        for name in RESULT_TABLES:
            pq_path = str(folder / f"{name}.parquet").replace("'", "''")
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{pq_path}')")
        summary_table = summary_rows(summary)  # noqa: F841  (read by duckdb's replacement scan)
        con.execute("CREATE TABLE summary AS SELECT * FROM summary_table")
    finally:
        con.close()
    return path


def load_summary(folder: str | Path) -> dict:
    """Read summary.json of a results folder."""
    p = Path(folder)
    f = p / SUMMARY_FILE
    if not f.is_file():
        raise DataError(f"{str(p)!r} is not a qfreplay results folder (no {SUMMARY_FILE})")
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{str(f)!r} is not valid JSON: {exc}") from None


def read_result(folder: str | Path, name: str) -> pa.Table:
    """Read one result table of a results folder."""
    if name not in RESULT_TABLES:
        raise DataError(f"unknown result table {name!r}; tables: {', '.join(RESULT_TABLES)}")
    f = Path(folder) / f"{name}.parquet"
    if not f.is_file():
        raise DataError(f"results folder {str(folder)!r} has no {name}.parquet")
    try:
        return pq.read_table(f)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read {str(f)!r}: {str(exc).splitlines()[0]}") from None


def query(folder: str | Path, sql: str, limit: Optional[int] = None) -> tuple[list[str], list[tuple]]:
    """Run read-only SQL over results.duckdb; returns (column names, rows)."""
    import duckdb

    db = Path(folder) / DUCKDB_FILE
    if not db.is_file():
        raise DataError(f"{str(folder)!r} has no {DUCKDB_FILE}; run qfreplay backtest first")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise DataError(f"cannot open {str(db)!r}: {str(exc).splitlines()[0]}") from None
    try:
        cur = con.execute(sql)
        if cur.description is None:
            return [], []
        cols = [d[0] for d in cur.description]
        rows = cur.fetchmany(limit) if limit else cur.fetchall()
        return cols, rows
    except duckdb.Error as exc:
        raise QfreplayError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
