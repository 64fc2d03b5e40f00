"""The signal stage: a strategy is a jitted function plus its parameter vector and state size.

A strategy function has the signature::

    fn(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state) -> (signal, confidence)

called on every valid row, in order, by :func:`~qfreplay.engine.kernels.execution_kernel`:
``ts`` int ns, ``feats`` the row's float64 features in the order of ``kernels.FEATURE_NAMES``,
the row's N levels per side, the current position, ``params`` float64 and a persistent float64
``state`` array that the engine carries across chunks and live rows. The built-in imbalance rule
is one such function; user strategies plug in the same way, so backtest, live and sweep share one
code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import SignalConfig
from . import kernels


@dataclass(frozen=True)
class Strategy:
    """A compiled strategy, its parameters and how much state it keeps."""

    name: str
    fn: Any
    params: np.ndarray
    state_size: int = 0
    param_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # compile the variant runs call now (from numba's cache after the first time), so that
        # errors surface before any work; the return type is the function's own
        args = tuple(kernels.STRATEGY_SIG.args)
        if args not in [tuple(sig) for sig in self.fn.signatures]:
            self.fn.compile(args)
        object.__setattr__(self, "params", np.ascontiguousarray(self.params, dtype=np.float64))

    def new_state(self) -> np.ndarray:
        return np.zeros(max(self.state_size, 1), dtype=np.float64)


IMBALANCE_PARAMS = ("imbalance_threshold", "max_spread_bps", "confidence_base", "confidence_slope", "confidence_cap")


def imbalance(signal: SignalConfig) -> Strategy:
    """The built-in rule of SPEC section 4 with the config's parameters (``signal.params`` may set them too)."""
    from .user import resolve_params

    params = resolve_params("imbalance", {k: float(getattr(signal, k)) for k in IMBALANCE_PARAMS}, signal.params)
    return Strategy("imbalance", kernels.imbalance_strategy, params, 0, IMBALANCE_PARAMS)


def load_strategy(signal: SignalConfig) -> Strategy:
    """The strategy the config names (``imbalance`` or user code ``file.py:name`` / ``module:name``)."""
    if signal.strategy == "imbalance":
        return imbalance(signal)
    from .user import load_user_strategy

    return load_user_strategy(signal)
