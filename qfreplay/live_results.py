"""The results folder of a running live session: readable all along, the SPEC 6 folder at the end.

While the session runs, ``<out>/`` holds:

- ``live.json`` (session status: rows, latency, late rows, manual fills and parameter changes),
  replaced atomically at every refresh (1 s);
- ``parts/<table>/<day>/<instrument #>/*.parquet``: every result row so far, as part files written
  at every refresh with only the new rows (16 parts of a level are merged into one of the next,
  so a day-long session keeps a few dozen files per folder and writes each row ~5 times);
- the SPEC-named ``signals|fills|equity|round_trips|arbitrage.parquet`` and ``summary.json``,
  rebuilt from the parts and swapped in file by file, summary.json last (it always describes the
  files beside it): every refresh while that is cheap, and never more than 10% of the time as the
  history grows (rebuilding takes a few seconds per million rows, so a day-long session of eight
  instruments at 10 rows/s refreshes them every few minutes; the parts are always current);
- ``results.duckdb`` with *views* over those files (and over ``.summary.parquet`` for the
  ``summary`` table), so ``qfreplay query`` sees every refresh without a rebuild.

At the end :meth:`LiveResults.finish` streams the parts, in the backtest's row order (UTC day,
then instrument), into a fresh SPEC 6 folder that replaces the live one atomically.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .results import DUCKDB_FILE, SUMMARY_FILE, ResultsWriter, check_out_dir, dump_summary, summary_rows
from .schema import ARBITRAGE_SCHEMA, RESULT_TABLES
from .store import write_parquet_atomic

STATUS_FILE = "live.json"
SUMMARY_PARQUET = ".summary.parquet"
PARTS_DIR = "parts"
#: Parts of one level merged into one part of the next level.
FANOUT = 16
#: Parts are not merged past this many rows (they are promoted a level instead).
MAX_PART_ROWS = 1_000_000
#: Share of wall time the SPEC-named snapshot files may take to rebuild.
SNAPSHOT_DUTY = 0.10


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` under a hidden name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class PartFolder:
    """The part files of one (table, day, instrument), in row order."""

    def __init__(self, path: Path):
        self.path = path
        self.files: list[tuple[int, int, Path]] = []  # (level, rows, file)

    def add(self, table: pa.Table, number: int) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        f = self.path / f"{number:010d}-0.parquet"
        write_parquet_atomic(table, f)
        self.files.append((0, table.num_rows, f))
        self._compact()

    def _compact(self) -> None:
        while len(self.files) >= FANOUT:
            tail = self.files[-FANOUT:]
            level = tail[0][0]
            if any(t[0] != level for t in tail):
                return
            rows = sum(t[1] for t in tail)
            if rows > MAX_PART_ROWS:
                self.files[-FANOUT:] = [(level + 1, n, f) for _, n, f in tail]
                continue
            merged = pa.concat_tables([pq.read_table(f) for _, _, f in tail])
            target = self.path / f"{tail[0][2].name.split('-')[0]}-{level + 1}.parquet"
            write_parquet_atomic(merged, target)
            for _, _, f in tail:
                f.unlink()
            self.files[-FANOUT:] = [(level + 1, rows, target)]

    def tables(self):
        for _, _, f in self.files:
            yield pq.read_table(f)


class LiveResults:
    """Writes a live session's results as they happen; :meth:`finish` leaves the SPEC 6 folder."""

    def __init__(self, out: str | Path, summary: dict, refresh_s: float = 1.0):
        self.out = check_out_dir(out)
        # start from a complete (empty) results folder, replacing an earlier one atomically
        ResultsWriter(self.out).commit(summary)
        pq.write_table(summary_rows(summary), self.out / SUMMARY_PARQUET)
        _view_duckdb(self.out)
        self.refresh_s = float(refresh_s)
        self.parts: dict[tuple[str, str, int], PartFolder] = {}
        self.episodes = ARBITRAGE_SCHEMA.empty_table()
        self.number = 0
        self.snapshot_cost = 0.0
        self.last_snapshot = 0.0
        self.dirty = False

    def write(self, batch: list[tuple[str, str, int, pa.Table]], episodes: Optional[pa.Table], summary: dict,
              status: dict, snapshot: bool = True) -> None:
        """New rows ``(table, UTC day, instrument #, rows)``, all episodes so far, the summary and status."""
        for name, day, idx, table in batch:
            key = (name, day, idx)
            folder = self.parts.get(key)
            if folder is None:
                folder = self.parts[key] = PartFolder(self.out / PARTS_DIR / name / day / f"{idx:03d}")
            folder.add(table, self.number)
            self.dirty = True
        self.number += 1
        if episodes is not None and episodes.num_rows != self.episodes.num_rows:
            self.episodes = episodes
            self.dirty = True
        write_text_atomic(self.out / STATUS_FILE, dump_summary(status))
        now = time.monotonic()
        if snapshot and self.dirty and now - self.last_snapshot >= max(self.refresh_s, self.snapshot_cost / SNAPSHOT_DUTY):
            self.snapshot(summary)

    def _stream(self, name: str):
        """Every part of ``name`` in the backtest's order: UTC day, then instrument, then time."""
        for key in sorted(k for k in self.parts if k[0] == name):
            yield from self.parts[key].tables()

    def snapshot(self, summary: dict) -> None:
        """Rebuild the SPEC-named Parquet files and results.duckdb from the parts, swapping each in."""
        t0 = time.monotonic()
        tmp = self.out / f".snapshot-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, schema in RESULT_TABLES.items():
                path = tmp / f"{name}.parquet"
                if name == "arbitrage":
                    pq.write_table(self.episodes, path, compression="zstd")
                    continue
                with pq.ParquetWriter(path, schema, compression="zstd") as w:
                    for table in self._stream(name):
                        w.write_table(table)
            pq.write_table(summary_rows(summary), tmp / SUMMARY_PARQUET)
            (tmp / SUMMARY_FILE).write_text(dump_summary(summary))
            # summary.json last: it always describes the files beside it (the dashboard reloads on it)
            for f in [f"{n}.parquet" for n in RESULT_TABLES] + [SUMMARY_PARQUET, SUMMARY_FILE]:
                os.replace(tmp / f, self.out / f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.dirty = False
        self.last_snapshot = time.monotonic()
        self.snapshot_cost = self.last_snapshot - t0

    def finish(self, summary: dict, status: dict) -> Path:
        """Write the final SPEC 6 folder (rows in the backtest's order) and swap it in for the live one."""
        writer = ResultsWriter(self.out)
        try:
            for name in RESULT_TABLES:
                if name == "arbitrage":
                    writer.append(name, self.episodes)
                else:
                    for table in self._stream(name):
                        writer.append(name, table)
            (writer.tmp / STATUS_FILE).write_text(dump_summary(status))
        except BaseException:
            writer.abort()
            raise
        return writer.commit(summary)


def _view_duckdb(folder: Path) -> None:
    """results.duckdb whose tables are views over the Parquet files beside it (absolute paths)."""
    import duckdb

    tmp = folder / f".{DUCKDB_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    con = duckdb.connect(str(tmp))
    try:
        for name in list(RESULT_TABLES) + ["summary"]:
            f = folder.resolve() / (SUMMARY_PARQUET if name == "summary" else f"{name}.parquet")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{str(f).replace(chr(39), chr(39) * 2)}')")
    finally:
        con.close()
    os.replace(tmp, folder / DUCKDB_FILE)
