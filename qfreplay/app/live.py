"""The contract between ``qfreplay live`` and the dashboard: what a live session object offers.

The dashboard only reads files; the live engine owns the session. Hand an object with these
attributes to :func:`qfreplay.app.build_app` / :func:`qfreplay.app.serve_app` as ``live=``.
Only ``results_dir`` is required; the dashboard looks the others up with ``getattr`` and hides
what a session does not provide (no ``manual_fill``: no execution buttons).

Threading: the dashboard calls ``set_params`` and ``manual_fill`` from the Panel server's
thread (the Tornado IO loop), so they must be quick and thread-safe with the engine loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable


@runtime_checkable
class LiveSession(Protocol):
    """A running live session as the dashboard sees it.

    Attributes:
        results_dir: the results folder the session keeps (re)writing in the SPEC 6 layout
            (signals/fills/equity/round_trips/arbitrage Parquet, summary.json). The dashboard
            re-reads it on every refresh when summary.json changed, so write summary.json last
            (or swap the folder atomically, as ``ResultsWriter.commit`` does).
        data_dir: the dataset root the session records into (SPEC 2), for the book, heatmap,
            ticker, trades and events; None falls back to the ``data`` key of summary.json's config.
    """

    results_dir: Path
    data_dir: Optional[Path]

    def set_params(self, **params: float) -> None:
        """Optional. Apply sidebar changes to rows processed from now on.

        Called with ``min_confidence`` (0…1) and ``position_size`` (> 0, base units), the
        ``execution.*`` keys of the config. Raise a ``QfreplayError`` to reject a value; its
        message is shown to the user.
        """

    def manual_fill(self, instrument: str, qty: float) -> dict[str, Any]:
        """Optional. Execute a simulated market order at the current book, recorded as a fill.

        ``instrument`` is ``venue:SYMBOL``; ``qty`` is signed base units (+ buys at the ask,
        − sells at the bid, with the session's fill model, slippage and fee). The fill must land
        in the results' fills table like any other. Return the fills row as a dict (at least
        ``ts_fill``, ``qty``, ``price``, ``fee``, ``position``); raise a ``QfreplayError`` when it
        cannot fill (no valid book, unknown instrument) — its message is shown to the user.
        """
