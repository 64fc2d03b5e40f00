"""``qfreplay normalize``: rebuild book / trades / ticker / events from raw journals.

Runs the very feeds the recorder runs (capture/feed.py) over the journaled records, so the rows
are the ones the recorder wrote. Also reads hftbacktest's Binance spot collector files, which
have no ``@session`` header: name their venue and symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from ..errors import ConfigError, DataError
from ..instruments import check_venue, normalize_symbol
from ..schema import DEFAULT_LEVELS
from .feed import make_feed
from .journal import journal_files, read_header, read_journal
from .writer import DatasetWriter

DEFAULT_INTERVAL_MS = 100


@dataclass
class NormalizeStats:
    """What a normalize run read and wrote."""

    files: int = 0
    records: int = 0
    messages: int = 0
    counts: dict = field(default_factory=dict)
    written: list = field(default_factory=list)


@dataclass
class _Stream:
    venue: str
    symbols: list[str]
    levels: int
    interval_ms: int
    files: list[tuple[int, Path]]


def _streams(files: list[Path], venue: Optional[str], symbol: Optional[str], levels: Optional[int], interval_ms: Optional[int]) -> list[_Stream]:
    groups: dict[tuple, _Stream] = {}
    for f in files:
        head = read_header(f)
        if head is None:
            if not venue or not symbol:
                raise ConfigError(
                    f"raw file {str(f)!r} has no qfreplay header (an hftbacktest collector file?): pass --venue and --symbol"
                )
            key = ("plain", venue, symbol, str(f))
            groups[key] = _Stream(venue, [symbol], levels or DEFAULT_LEVELS, DEFAULT_INTERVAL_MS if interval_ms is None else interval_ms, [(0, f)])
            continue
        m = head.meta
        v = m.get("venue")
        if venue and v != venue:
            continue
        syms = [normalize_symbol(s) for s in m.get("symbols", [])]
        if symbol:
            if symbol not in syms:
                continue
            syms = [symbol]
        key = ("session", v, m.get("session"), tuple(syms))
        st = groups.get(key)
        if st is None:
            st = groups[key] = _Stream(
                v, syms, levels or int(m.get("levels", DEFAULT_LEVELS)),
                int(m.get("interval_ms", DEFAULT_INTERVAL_MS)) if interval_ms is None else interval_ms, [],
            )
        st.files.append((head.ts, f))
    out = list(groups.values())
    for st in out:
        st.files.sort()
    out.sort(key=lambda s: s.files[0][0])
    return out


def normalize(
    raw: Iterable[str | Path],
    out: str | Path,
    venue: Optional[str] = None,
    symbol: Optional[str] = None,
    levels: Optional[int] = None,
    interval_ms: Optional[int] = None,
) -> NormalizeStats:
    """Rebuild the dataset tables under ``out`` from raw journal files or folders."""
    venue = check_venue(venue) if venue else None
    symbol = normalize_symbol(symbol) if symbol else None
    files = journal_files(raw)
    if not files:
        raise DataError(f"no raw journal files (*.gz, *.gz.part) in {', '.join(map(str, raw))}")
    streams = _streams(files, venue, symbol, levels, interval_ms)
    stats = NormalizeStats(files=len(files))
    writers: dict[int, DatasetWriter] = {}
    for st in streams:
        writer = writers.get(st.levels)
        if writer is None:
            writer = writers[st.levels] = DatasetWriter(out, st.levels)
        feed = make_feed(st.venue, st.symbols, st.levels, st.interval_ms, writer)
        for _, f in st.files:
            stats.records += feed.feed_many(read_journal(f))
        feed.close()
        stats.messages += feed.messages
    for w in writers.values():
        stats.written += w.publish()
        for k, v in w.counts.items():
            stats.counts[k] = stats.counts.get(k, 0) + v
    return stats
