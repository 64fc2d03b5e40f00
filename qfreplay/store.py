"""The dataset on disk (SPEC section 2): hive paths, atomic Parquet writes, loading into numpy columns."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import DataError
from .instruments import Instrument
from .schema import TABLES, table_schema

NS_PER_DAY = 86_400 * 1_000_000_000


def date_of(ts_ns: int) -> str:
    """``YYYY-MM-DD`` (UTC) of a ns timestamp."""
    return dt.datetime.fromtimestamp(int(ts_ns) // 1_000_000_000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def day_bounds(date: str) -> tuple[int, int]:
    """[start, end) in ns of a UTC date."""
    d = dt.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    start = int(d.timestamp()) * 1_000_000_000
    return start, start + NS_PER_DAY


def partition_dir(root: str | Path, table: str, venue: str, symbol: str, date: str) -> Path:
    """``<root>/<table>/venue=<venue>/symbol=<symbol>/date=<date>``."""
    return Path(root) / table / f"venue={venue}" / f"symbol={symbol}" / f"date={date}"


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: all but the book's level lists, whose many distinct
    floats make Parquet give up on the dictionary anyway (plain + zstd is smaller and faster)."""
    return [f.name for f in schema if not pa.types.is_fixed_size_list(f.type)]


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` (zstd) to a hidden temp name beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=_dictionary_columns(table.schema))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def new_file_name(table: str, first_ts: int, suffix: Optional[str] = None) -> str:
    """A file name that never collides with an earlier file: table, first ts_recv, random suffix.

    A given ``suffix`` replaces the random one, for writers that must be reproducible byte for
    byte (``simulate``); they own the folder, so no collision is possible.
    """
    return f"{table}-{int(first_ts)}-{suffix or uuid.uuid4().hex[:8]}.parquet"


def write_partitioned(
    root: str | Path, table_name: str, venue: str, symbol: str, table: pa.Table, suffix: Optional[str] = None
) -> list[Path]:
    """Write rows of one instrument's table, split by the UTC date of ``ts_recv``; returns the files.

    ``suffix``: a fixed file-name suffix instead of a random one (see :func:`new_file_name`).
    """
    if table.num_rows == 0:
        return []
    ts = table.column("ts_recv").to_numpy()
    days = ts // NS_PER_DAY
    written = []
    for day in np.unique(days):
        mask = days == day
        part = table.filter(pa.array(mask)) if not mask.all() else table
        first = int(ts[mask][0])
        path = partition_dir(root, table_name, venue, symbol, date_of(first)) / new_file_name(table_name, first, suffix)
        written.append(write_parquet_atomic(part, path))
    return written


def _visible(files: Iterable[Path]) -> list[Path]:
    return sorted(f for f in files if f.suffix == ".parquet" and not f.name.startswith((".", "_")))


def list_instruments(root: str | Path, table: str = "book") -> list[Instrument]:
    """Instruments that have at least one partition of ``table`` under ``root``."""
    base = Path(root) / table
    out = []
    for vdir in sorted(base.glob("venue=*")):
        for sdir in sorted(vdir.glob("symbol=*")):
            out.append(Instrument(vdir.name.split("=", 1)[1], sdir.name.split("=", 1)[1]))
    return out


def check_dataset(root: str | Path) -> Path:
    """Raise :class:`DataError` unless ``root`` is a dataset folder with a book table."""
    p = Path(root)
    if not p.exists():
        raise DataError(f"data folder {str(p)!r} does not exist")
    if not p.is_dir():
        raise DataError(f"data path {str(p)!r} is not a folder")
    if not list_instruments(p):
        raise DataError(f"data folder {str(p)!r} has no book data (expected {p}/book/venue=…/symbol=…/date=…/*.parquet)")
    return p


def partition_dates(
    root: str | Path, table: str, venue: str, symbol: str, start: Optional[int] = None, end: Optional[int] = None
) -> list[str]:
    """Sorted dates of an instrument's partitions that may hold rows in [start, end)."""
    base = Path(root) / table / f"venue={venue}" / f"symbol={symbol}"
    dates = []
    for d in sorted(base.glob("date=*")):
        date = d.name.split("=", 1)[1]
        try:
            lo, hi = day_bounds(date)
        except ValueError:
            raise DataError(f"partition folder {str(d)!r} does not name a date YYYY-MM-DD") from None
        if (start is not None and hi <= start) or (end is not None and lo >= end):
            continue
        if _visible(d.iterdir()):
            dates.append(date)
    return dates


def _read_file(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    try:
        t = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {str(path)!r}: {str(exc).splitlines()[0]}") from None
    if schema is not None:
        missing = [n for n in schema.names if n not in t.column_names]
        if missing:
            raise DataError(f"Parquet file {str(path)!r} lacks column(s) {', '.join(missing)}")
        t = t.select(schema.names)
    return t


def read_partition(
    root: str | Path, table: str, venue: str, symbol: str, date: str, start: Optional[int] = None, end: Optional[int] = None
) -> pa.Table:
    """All rows of one instrument-day of ``table`` with start ≤ ts_recv < end, sorted by (ts_recv, seq)."""
    files = _visible(partition_dir(root, table, venue, symbol, date).glob("*.parquet"))
    ref = table_schema(table) if table != "book" else None
    parts = [_read_file(f, ref) for f in files]
    if table == "book":
        parts = [_check_book(p, f) for p, f in zip(parts, files)]
        sizes = {p.schema.field("bid_px").type.list_size for p in parts}
        if len(sizes) > 1:
            raise DataError(f"book files of {venue}:{symbol} on {date} mix level counts {sorted(sizes)}")
    if not parts:
        return table_schema(table).empty_table()
    t = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    if start is not None or end is not None:
        ts = t.column("ts_recv")
        mask = None
        if start is not None:
            mask = pc.greater_equal(ts, start)
        if end is not None:
            m2 = pc.less(ts, end)
            mask = m2 if mask is None else pc.and_(mask, m2)
        t = t.filter(mask)
    has_seq = "seq" in t.column_names
    keys = [("ts_recv", "ascending")] + ([("seq", "ascending")] if has_seq else [])
    if t.num_rows > 1 and (len(parts) > 1 or not _sorted(t, has_seq)):
        t = t.sort_by(keys)
    return t


def _sorted(t: pa.Table, has_seq: bool) -> bool:
    """Whether rows are already in (ts_recv, seq) order."""
    dts = np.diff(t.column("ts_recv").to_numpy())
    if not has_seq:
        return not np.any(dts < 0)
    dseq = np.diff(t.column("seq").to_numpy())
    return not np.any((dts < 0) | ((dts == 0) & (dseq < 0)))


def _check_book(t: pa.Table, path: Path) -> pa.Table:
    names = ["ts_recv", "ts_event", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz", "flags"]
    missing = [n for n in names if n not in t.column_names]
    if missing:
        raise DataError(f"book file {str(path)!r} lacks column(s) {', '.join(missing)}")
    typ = t.schema.field("bid_px").type
    if not pa.types.is_fixed_size_list(typ):
        raise DataError(f"book file {str(path)!r}: bid_px is {typ}, expected fixed_size_list<double>[N]")
    return t.select(names)


class BookArrays(NamedTuple):
    """One instrument's book rows as contiguous numpy columns (levels as 2-D ``(rows, N)`` arrays)."""

    ts_recv: np.ndarray
    ts_event: np.ndarray
    seq: np.ndarray
    flags: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_recv)

    @property
    def levels(self) -> int:
        return self.bid_px.shape[1]

    def slice(self, lo: int, hi: int) -> "BookArrays":
        return BookArrays(*(a[lo:hi] for a in self))


def _levels_2d(col: pa.ChunkedArray, n: int, levels: int) -> np.ndarray:
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    flat = arr.flatten()  # respects slicing offsets
    values = flat.to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values.reshape(n, levels), dtype=np.float64)


def book_arrays(t: pa.Table) -> BookArrays:
    """Turn a book table into :class:`BookArrays` (zero-copy for the 1-D columns where Arrow allows)."""
    n = t.num_rows
    levels = t.schema.field("bid_px").type.list_size
    one = lambda name, dtype: np.ascontiguousarray(t.column(name).to_numpy(), dtype=dtype)  # noqa: E731
    return BookArrays(
        one("ts_recv", np.int64),
        one("ts_event", np.int64),
        one("seq", np.int64),
        one("flags", np.uint8),
        *(_levels_2d(t.column(c), n, levels) for c in ("bid_px", "bid_sz", "ask_px", "ask_sz")),
    )


def empty_book(levels: int) -> BookArrays:
    """A book with no rows."""
    z = np.zeros((0, levels))
    return BookArrays(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8), z, z.copy(), z.copy(), z.copy())


def iter_book_days(
    root: str | Path, instrument: Instrument, start: Optional[int] = None, end: Optional[int] = None
) -> Iterator[tuple[str, BookArrays]]:
    """Yield (date, rows) of one instrument one UTC day at a time, in time order."""
    for date in partition_dates(root, "book", instrument.venue, instrument.symbol, start, end):
        t = read_partition(root, "book", instrument.venue, instrument.symbol, date, start, end)
        if t.num_rows:
            yield date, book_arrays(t)


def load_book(root: str | Path, instrument: Instrument, start: Optional[int] = None, end: Optional[int] = None) -> BookArrays:
    """All book rows of one instrument in [start, end) as one :class:`BookArrays`."""
    days = [b for _, b in iter_book_days(root, instrument, start, end)]
    if not days:
        return empty_book(20)
    if len(days) == 1:
        return days[0]
    return BookArrays(*(np.concatenate(cols) for cols in zip(*days)))


def read_table(
    root: str | Path, table: str, instrument: Instrument, start: Optional[int] = None, end: Optional[int] = None
) -> pa.Table:
    """All rows of a dataset table for one instrument in [start, end), sorted by ts_recv."""
    if table not in TABLES:
        raise DataError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    parts = [
        read_partition(root, table, instrument.venue, instrument.symbol, d, start, end)
        for d in partition_dates(root, table, instrument.venue, instrument.symbol, start, end)
    ]
    if not parts:
        return table_schema(table).empty_table()
    return pa.concat_tables(parts)
