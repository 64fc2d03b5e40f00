"""The contract between ``qfreplay live`` and the dashboard: what a live session object offers.

The dashboard only reads files; the live engine owns the session. Hand an object with these
attributes to :func:`qfreplay.app.build_app` / :func:`qfreplay.app.serve_app` as ``live=``.
:class:`LiveSession` is what is required; the methods of :class:`LiveControls` are optional,
looked up with ``getattr``, and the dashboard hides what a session does not provide (no
``manual_fill``: no execution buttons).

On every refresh (1–10 s) the dashboard re-reads summary.json and, when it changed, the result
tables; lists the dataset's files (reading only new ones); and calls ``unpublished`` and
``now_ns`` when the session has them.

Threading: the dashboard calls the methods from the Panel server's thread (the Tornado IO
loop), so they must be quick and thread-safe with the engine loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

import pyarrow as pa


@runtime_checkable
class LiveSession(Protocol):
    """A running live session as the dashboard sees it (the required part).

    Attributes:
        results_dir: the results folder the session keeps (re)writing in the SPEC 6 layout
            (signals/fills/equity/round_trips/arbitrage Parquet, summary.json). It may not exist
            yet when the dashboard starts. The dashboard re-reads it when summary.json changes,
            so write summary.json last (or swap the folder atomically, as ``ResultsWriter.commit`` does).
        data_dir: the dataset root the session records into (SPEC 2), for the book, heatmap,
            ticker, trades and events; None falls back to the ``data`` key of summary.json's config.
    """

    results_dir: Path
    data_dir: Optional[Path]


class LiveControls(LiveSession, Protocol):
    """The optional methods a live session may offer the dashboard."""

    def set_params(self, **params: float) -> Any:
        """Apply sidebar changes to rows processed from now on.

        Called with ``min_confidence`` (0…1) and ``position_size`` (> 0, base units), the
        ``execution.*`` keys of the config. Raise a ``QfreplayError`` to reject a value; its
        message is shown to the user.
        """

    def manual_fill(self, instrument: str, qty: float) -> dict[str, Any]:
        """Execute a simulated market order at the current book, recorded as a fill.

        ``instrument`` is ``venue:SYMBOL``; ``qty`` is signed base units (+ buys at the ask,
        − sells at the bid, with the session's fill model, slippage and fee). The fill must land
        in the results' fills table like any other. Return the fills row as a dict (at least
        ``ts_fill``, ``qty``, ``price``, ``fee``, ``position``); raise a ``QfreplayError`` when it
        cannot fill (no valid book, unknown instrument) — its message is shown to the user.
        """

    def unpublished(self, table: str, instrument: str) -> Optional[pa.Table]:
        """Rows the session recorded but has not yet written to ``data_dir``.

        ``table`` is ``book``, ``trades``, ``ticker`` or ``events``; ``instrument`` is
        ``venue:SYMBOL``. Return them in the SPEC 2 schema of that table (what the dataset file
        will hold), in ts_recv order, or None. The recorder publishes its files only now and then
        (hourly), so without this the Order Book, Analytics and Data Quality tabs lag by as much.
        Rows the dataset already holds may be returned too; the dashboard keeps only those after
        the last row of the files.
        """

    def now_ns(self) -> int:
        """The session's market clock (ns since the epoch, UTC).

        The dashboard shows nothing later than this: a replay (``qfreplay live --replay``) has
        its whole dataset on disk from the start, and the book views follow the engine instead.
        """
