"""When a book row is due (SPEC section 2, ``interval_ms``): the one rule shared by ``record``,
``normalize`` and ``live``.

Intervals are aligned to multiples of ``interval_ms`` on ``ts_recv``. A book that had at least one
update applied in an interval emits one row at the end of that interval, showing the book after
its last update. The row is emitted either lazily, when the next update of that book (or any
later record) shows that the interval is over, or by a timer in live mode; both give the same row,
because nothing is applied to the book in between. ``interval_ms: 0`` emits after every message.
"""

from __future__ import annotations

from numba import njit

#: ``due_at`` of a book without a pending row, where it is an int64 (compiled kernels).
NO_ROW = -1


def row_due_at(ts_recv: int, interval_ns: int) -> int:
    """End of the ``interval_ns`` interval holding ``ts_recv`` (``interval_ns > 0``)."""
    return (ts_recv // interval_ns + 1) * interval_ns


#: :func:`row_due_at` for numba kernels (the same rule, compiled).
row_due_at_nb = njit(cache=True, nogil=True)(row_due_at)


class RowCadence:
    """Tracks whether one book has an un-emitted row and when it falls due."""

    __slots__ = ("interval_ns", "due_at")

    def __init__(self, interval_ms: int):
        self.interval_ns = int(interval_ms) * 1_000_000
        self.due_at: int | None = None  # end of the interval holding the pending row

    @property
    def pending(self) -> bool:
        return self.due_at is not None

    def mark(self, ts_recv: int) -> bool:
        """Record an update applied at ``ts_recv``; True when the row must be emitted right away."""
        if self.interval_ns == 0:
            self.due_at = ts_recv
            return True
        if self.due_at is None:
            self.due_at = row_due_at(ts_recv, self.interval_ns)
        return False

    def due(self, now_ns: int) -> bool:
        """True when a pending row's interval has ended by ``now_ns``."""
        return self.due_at is not None and now_ns >= self.due_at

    def clear(self) -> None:
        self.due_at = None
