"""Local L2 order books and their synchronization with a venue's stream (SPEC section 3)."""

from .cadence import RowCadence
from .orderbook import OrderBook

__all__ = ["OrderBook", "RowCadence"]
