"""Arrow schemas of the dataset tables (SPEC section 2) and the results tables (SPEC section 6).

This module is the one contract between recorder, store, engine, results and app.
"""

from __future__ import annotations

import pyarrow as pa

TABLES = ("book", "trades", "ticker", "events")

#: Bit 0 of ``book.flags``: first row after the book was (re)built from a snapshot.
FLAG_RESYNC = 1

EVENT_KINDS = ("connect", "disconnect", "gap", "resync", "malformed", "rate_limited", "error")

DEFAULT_LEVELS = 20


def book_schema(levels: int = DEFAULT_LEVELS) -> pa.Schema:
    """Schema of the ``book`` table with ``levels`` price levels a side."""
    lvl = pa.list_(pa.float64(), levels)
    return pa.schema(
        [
            ("ts_recv", pa.int64()),
            ("ts_event", pa.int64()),
            ("seq", pa.int64()),
            ("bid_px", lvl),
            ("bid_sz", lvl),
            ("ask_px", lvl),
            ("ask_sz", lvl),
            ("flags", pa.uint8()),
        ]
    )


TRADES_SCHEMA = pa.schema(
    [
        ("ts_recv", pa.int64()),
        ("ts_event", pa.int64()),
        ("trade_id", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("side", pa.int8()),
    ]
)

TICKER_SCHEMA = pa.schema(
    [
        ("ts_recv", pa.int64()),
        ("ts_event", pa.int64()),
        ("last", pa.float64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("volume", pa.float64()),
        ("quote_volume", pa.float64()),
        ("change_pct", pa.float64()),
    ]
)

EVENTS_SCHEMA = pa.schema(
    [
        ("ts_recv", pa.int64()),
        ("kind", pa.string()),
        ("detail", pa.string()),
    ]
)


def table_schema(table: str, levels: int = DEFAULT_LEVELS) -> pa.Schema:
    """Schema of a dataset table by name."""
    if table == "book":
        return book_schema(levels)
    return {"trades": TRADES_SCHEMA, "ticker": TICKER_SCHEMA, "events": EVENTS_SCHEMA}[table]


# ----------------------------------------------------------------------------- results (SPEC 6)

_KEY = [("venue", pa.string()), ("symbol", pa.string())]

SIGNALS_SCHEMA = pa.schema(
    _KEY
    + [
        ("ts_recv", pa.int64()),
        ("seq", pa.int64()),
        ("mid", pa.float64()),
        ("spread_bps", pa.float64()),
        ("bid_vol", pa.float64()),
        ("ask_vol", pa.float64()),
        ("imbalance", pa.float64()),
        ("micro_price", pa.float64()),
        ("ofi", pa.float64()),
        ("signal", pa.int8()),
        ("confidence", pa.float64()),
        ("valid", pa.bool_()),
    ]
)

FILLS_SCHEMA = pa.schema(
    _KEY
    + [
        ("ts_order", pa.int64()),
        ("ts_fill", pa.int64()),
        ("qty", pa.float64()),
        ("price", pa.float64()),
        ("fee", pa.float64()),
        ("position", pa.float64()),
        ("cash", pa.float64()),
    ]
)

EQUITY_SCHEMA = pa.schema(
    _KEY
    + [
        ("ts_recv", pa.int64()),
        ("seq", pa.int64()),
        ("position", pa.float64()),
        ("cash", pa.float64()),
        ("equity", pa.float64()),
    ]
)

ROUND_TRIPS_SCHEMA = pa.schema(
    _KEY
    + [
        ("ts_open", pa.int64()),
        ("ts_close", pa.int64()),
        ("side", pa.int8()),
        ("qty", pa.float64()),
        ("entry_px", pa.float64()),
        ("exit_px", pa.float64()),
        ("fees", pa.float64()),
        ("pnl", pa.float64()),
    ]
)

ARBITRAGE_SCHEMA = pa.schema(
    [
        ("buy_venue", pa.string()),
        ("buy_symbol", pa.string()),
        ("sell_venue", pa.string()),
        ("sell_symbol", pa.string()),
        ("ts_start", pa.int64()),
        ("ts_end", pa.int64()),
        ("duration_ms", pa.float64()),
        ("points", pa.int64()),
        ("max_net_bps", pa.float64()),
        ("mean_net_bps", pa.float64()),
        ("max_size_top", pa.float64()),
        ("max_profit_walk", pa.float64()),
    ]
)

RESULT_TABLES = {
    "signals": SIGNALS_SCHEMA,
    "fills": FILLS_SCHEMA,
    "equity": EQUITY_SCHEMA,
    "round_trips": ROUND_TRIPS_SCHEMA,
    "arbitrage": ARBITRAGE_SCHEMA,
}
