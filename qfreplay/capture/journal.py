"""The raw journal: every WebSocket frame and REST answer, losslessly, with its ``ts_recv``.

Lines are ``<ts_recv_ns> <payload>`` (hftbacktest's collector layout), gzip-compressed. Frames
are written verbatim; what is not a frame is a tagged line ``<ts> @<tag>\\t<json>[\\t<body>]``:

- ``@session`` first line of every file: venue, symbols, levels, interval_ms, session id
- ``@connect`` / ``@disconnect`` a WebSocket connection opened / closed (``conn`` id, url, reason)
- ``@rest`` a REST answer: ``{conn, symbol, kind, url, status, retry_after}`` then the body
- ``@event`` an event the recorder observed itself (e.g. a failed connection attempt)
- ``@ws`` / ``@wsx`` / ``@wsb`` a frame that starts with ``@``, contains a line break, or is
  binary (JSON-string or base64 encoded), so that every frame stays one line

Every flush appends one complete gzip member and the file is renamed from ``*.gz.part`` to
``*.gz`` when it is closed, so after a crash the journal is readable up to the last flush and
:func:`read_journal` also takes what it can from a truncated last member.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
import zlib
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Optional

import orjson

from ..errors import DataError

try:  # ISA-L inflates the same gzip streams about twice as fast as zlib
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; plain zlib is the fallback
    _inflate = zlib

NS_PER_HOUR = 3_600 * 1_000_000_000


class Record(NamedTuple):
    """One journal line: ``tag`` is '' for a frame, else the tag name; ``meta`` for tagged lines."""

    ts: int
    tag: str
    meta: Optional[dict]
    payload: bytes


def _date(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def raw_dir(root: str | Path, venue: str, date: str) -> Path:
    """``<root>/raw/venue=<venue>/date=<date>``."""
    return Path(root) / "raw" / f"venue={venue}" / f"date={date}"


class JournalWriter:
    """Append-only gzip journal of one venue, rotated hourly and on date change."""

    def __init__(self, root: str | Path, venue: str, header: dict, level: int = 3, rotate_ns: int = NS_PER_HOUR):
        self.root, self.venue, self.header = Path(root), venue, dict(header)
        self.level, self.rotate_ns = level, rotate_ns
        self._lines: list[bytes] = []
        self._size = 0
        self._file = None
        self._path: Optional[Path] = None
        self._slot: Optional[tuple[str, int]] = None
        self.files: list[Path] = []

    # -- writing

    def _open(self, ts: int) -> None:
        self.close()
        name = f"{self.venue}-{ts}-{uuid.uuid4().hex[:8]}.gz"
        self._path = raw_dir(self.root, self.venue, _date(ts)) / name
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path.with_name(name + ".part"), "ab")
        self._slot = (_date(ts), ts // self.rotate_ns)
        self._append(ts, b"@session\t" + orjson.dumps(self.header))

    def _append(self, ts: int, line: bytes) -> None:
        self._lines.append(b"%d %s\n" % (ts, line))
        self._size += len(line)

    def _ensure(self, ts: int) -> None:
        if self._file is None or self._slot != (_date(ts), ts // self.rotate_ns):
            self._open(ts)

    def frame(self, ts: int, payload: bytes | str) -> None:
        """A WebSocket frame as received."""
        self._ensure(ts)
        if isinstance(payload, str):
            data = payload.encode()
            if b"\n" in data or b"\r" in data:
                data = b"@wsx\t" + orjson.dumps(payload)
            elif data[:1] == b"@":
                data = b"@ws\t" + data
        else:
            data = b"@wsb\t" + base64.b64encode(bytes(payload))
        self._append(ts, data)

    def rest(self, ts: int, meta: dict, body: bytes) -> None:
        """A REST answer (``meta``: conn, symbol, kind, url, status, retry_after) and its body."""
        self._ensure(ts)
        if b"\n" in body or b"\r" in body:
            meta = {**meta, "body_json_string": True}
            body = orjson.dumps(body.decode("utf-8", "replace"))
        self._append(ts, b"@rest\t" + orjson.dumps(meta) + b"\t" + body)

    def note(self, ts: int, tag: str, meta: dict) -> None:
        """A tagged line: connect, disconnect, event."""
        self._ensure(ts)
        self._append(ts, b"@" + tag.encode() + b"\t" + orjson.dumps(meta))

    @property
    def pending_bytes(self) -> int:
        return self._size

    def flush(self) -> None:
        """Append the buffered lines as one complete gzip member."""
        if not self._lines or self._file is None:
            return
        data = b"".join(self._lines)
        self._lines, self._size = [], 0
        co = zlib.compressobj(self.level, zlib.DEFLATED, 31)
        self._file.write(co.compress(data) + co.flush())
        self._file.flush()

    def close(self) -> None:
        """Flush and publish the current file under its final name."""
        if self._file is None:
            return
        self.flush()
        self._file.close()
        self._file = None
        os.replace(self._path.with_name(self._path.name + ".part"), self._path)
        self.files.append(self._path)


# ----------------------------------------------------------------------------- reading


def _gzip_lines(path: Path, chunk: int = 1 << 16) -> Iterator[bytes]:
    """Lines of a multi-member gzip file; a truncated last member gives what it holds."""
    with open(path, "rb") as f:
        d = _inflate.decompressobj(31)
        tail = b""
        data = f.read(chunk)
        while data:
            try:
                out = d.decompress(data)
                while d.eof:  # member finished; the rest belongs to the next member
                    rest = d.unused_data
                    d = _inflate.decompressobj(31)
                    if not rest:
                        break
                    out += d.decompress(rest)
            except (zlib.error, _inflate.error):  # corrupt bytes after a crash: keep what came before
                data = b""
                break
            if out:
                lines = (tail + out).split(b"\n")
                tail = lines.pop()
                yield from lines
            data = f.read(chunk)
        # a truncated member leaves its incomplete last line in ``tail``: drop it
        if tail and d.eof:
            yield tail


def _plain_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield line[:-1]


def parse_line(line: bytes) -> Optional[Record]:
    """One journal line as a :class:`Record` (None for a blank or unreadable line)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    ts_text, _, rest = line.partition(b" ")
    try:
        ts = int(ts_text)
    except ValueError:
        return None
    if rest[:1] != b"@":
        return Record(ts, "", None, rest)
    tag, _, tail = rest[1:].partition(b"\t")
    tag_s = tag.decode()
    if tag_s == "ws":
        return Record(ts, "", None, tail)
    if tag_s == "wsx":
        return Record(ts, "", None, orjson.loads(tail).encode())
    if tag_s == "wsb":
        return Record(ts, "binary", None, base64.b64decode(tail))
    if tag_s == "rest":
        meta_b, _, body = tail.partition(b"\t")
        meta = orjson.loads(meta_b)
        if meta.get("body_json_string"):
            body = orjson.loads(body).encode()
        return Record(ts, "rest", meta, body)
    return Record(ts, tag_s, orjson.loads(tail) if tail else {}, b"")


def read_journal(path: str | Path, chunk: int = 1 << 16) -> Iterator[Record]:
    """Records of one journal file (``.gz``, ``.gz.part`` or plain text), in file order.

    ``chunk``: compressed bytes inflated at a time (64 KB keeps the inflated text in cache).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"raw journal {str(p)!r} does not exist")
    with open(p, "rb") as f:
        magic = f.read(2)
    lines = _gzip_lines(p, chunk) if magic == b"\x1f\x8b" else _plain_lines(p)
    for line in lines:
        ts_text, _, rest = line.partition(b" ")
        if rest[:1] != b"@" and line[-1:] != b"\r":  # a verbatim frame (most lines): parse_line's first case
            try:
                ts = int(ts_text)
            except ValueError:  # blank or unreadable
                continue
            yield Record(ts, "", None, rest)
            continue
        try:
            rec = parse_line(line)
        except (orjson.JSONDecodeError, ValueError, UnicodeDecodeError):
            rec = None
        if rec is not None:
            yield rec


def journal_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into the journal files under them (``*.gz``, ``*.gz.part``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and (f.name.endswith(".gz") or f.name.endswith(".gz.part")))
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"raw journal {str(p)!r} does not exist")
    return out


def read_header(path: str | Path) -> Optional[Record]:
    """The ``@session`` record opening a qfreplay journal, or None for other files."""
    for rec in read_journal(path, chunk=1 << 12):
        return rec if rec.tag == "session" else None
    return None
