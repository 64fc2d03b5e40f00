"""Synthetic crypto market: an event-level L2 model of Binance and Coinbase, and the dataset it records.

:class:`Market` drives one latent fair price per asset that every venue follows with its own lag
and noise, and runs a small order-book model per instrument on top of it: touch queues eaten by
aggressive flow, quoters stepping in to close the spread, churn deeper in the book, and now and
then a one-venue dislocation wide enough to pay cross-venue arbitrage after fees. Its event API
(:meth:`Market.advance`, :meth:`Market.book`, :meth:`Market.ticker`, :attr:`Market.now`) is what
the local exchange serves over the real Binance and Coinbase wire protocols.

:func:`simulate` records a :class:`Market` into the dataset of SPEC section 2 the way ``record``
would: receive latency, the row cadence, a connect per venue, and a few gaps, resyncs and a
reconnect, so that data-quality handling downstream has something to do. A seed gives the same
events, and :func:`simulate` the same bytes, every time.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import shutil
import zlib
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
import pyarrow as pa

from .errors import ConfigError, DataError
from .instruments import Instrument
from .results import move_into_place, temp_folder_beside
from .schema import EVENTS_SCHEMA, FLAG_RESYNC, TABLES, TICKER_SCHEMA, TRADES_SCHEMA, book_schema
from .store import write_partitioned

__all__ = ["DEFAULT_INSTRUMENTS", "DepthUpdate", "Event", "Market", "START_NS", "Trade", "parse_time", "simulate"]

MS = 1_000_000
SECOND = 1_000 * MS
MINUTE = 60 * SECOND

#: 2024-08-08T00:00:00Z, the default start of a simulation.
START_NS = 1_723_075_200 * SECOND

DEFAULT_INSTRUMENTS = (
    Instrument("binance", "BTC-USDT"),
    Instrument("binance", "ETH-USDT"),
    Instrument("coinbase", "BTC-USD"),
    Instrument("coinbase", "ETH-USD"),
)


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """New absolute sizes at price levels of one book; size 0 removes the level.

    Like a Binance ``depthUpdate`` diff or a Coinbase ``l2_data`` update. ``bids`` are sorted by
    price descending and ``asks`` ascending; each price appears at most once.
    """

    ts: int
    venue: str
    symbol: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class Trade:
    """One print: ``side`` +1 when the buyer was the aggressor (took the ask), −1 when the seller was."""

    ts: int
    venue: str
    symbol: str
    trade_id: int
    price: float
    size: float
    side: int


Event = Union[DepthUpdate, Trade]


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class _Asset:
    """The latent fair price of one asset, shared by every venue that lists it."""

    price: float  # at the start
    vol_bps: float  # diffusion, bps per sqrt(second)
    drift_bps: float  # drift per second per unit of order-flow pressure
    jump_rate: float  # small jumps per second
    jump_bps: float
    daily_vol_pct: float  # for the seeded 24 h history


_ASSETS = {
    "BTC": _Asset(price=61_800.0, vol_bps=0.70, drift_bps=0.05, jump_rate=1 / 240, jump_bps=4.0, daily_vol_pct=2.4),
    "ETH": _Asset(price=2_600.0, vol_bps=0.85, drift_bps=0.06, jump_rate=1 / 240, jump_bps=5.0, daily_vol_pct=3.2),
}


@dataclass(frozen=True)
class _Profile:
    """How one instrument's book looks and moves; calibrated on the captures in shared/data/real."""

    tick: float
    price_decimals: int
    size_decimals: int
    spreads: tuple[int, ...]  # target spreads in ticks that quoters close the book down to
    spread_weights: tuple[float, ...]
    near_ticks: int  # dense part of the book behind the touch
    near_density: float  # share of ticks holding a level there
    depth_ticks: int  # depth kept behind the touch (full book ~200-300 levels)
    far_density: float
    level_size: float  # median order size of a level next to the touch
    size_growth: float  # sizes grow as (1 + d / near_ticks) ** size_growth with distance d
    dust_share: float  # levels holding one tiny order
    dust_size: float
    wall_share: float  # occasional large walls, size ~ level_size * wall_mult
    wall_mult: float
    round_ticks: int  # round prices (every round_ticks) attract walls
    join_rate: float  # orders joining the touch per second
    join_size: float  # their median size
    touch_cancel_rate: float  # partial cancels at the touch per second
    pull_rate: float  # whole touch levels pulled per second when the reference is one band away
    churn: float  # cancels per level per second behind the touch (adds balance them)
    mod_rate: float  # size changes per second among the first levels
    trade_rate: float  # aggressive orders per second per side, neutral market
    trade_small: float  # median size of the retail part of the flow
    trade_large: float  # median size of the larger part
    large_share: float
    improve_rate: float  # how fast quoters close a spread wider than the target (per second)
    band_bps: float  # quotes are re-priced when the reference leaves mid by more than this
    lag_ms: float  # how far this venue trails the fair price
    noise_bps: float  # venue-specific deviation (std) around the lagged fair price
    message_rate: float  # Coinbase: l2 messages per second; 0 = Binance, one diff per 100 ms
    daily_volume: float  # base units, for the seeded 24 h ticker history
    first_trade_id: int


_BINANCE_BTC = _Profile(
    tick=0.01, price_decimals=2, size_decimals=5, spreads=(1,), spread_weights=(1.0,),
    near_ticks=3_000, near_density=1 / 28, depth_ticks=8_000, far_density=1 / 40,
    level_size=0.07, size_growth=0.6, dust_share=0.35, dust_size=0.0003, wall_share=0.03, wall_mult=25.0,
    round_ticks=1_000, join_rate=5.0, join_size=0.12, pull_rate=3.0, touch_cancel_rate=0.5, churn=0.12, mod_rate=25.0,
    trade_rate=7.0, trade_small=0.0002, trade_large=0.035, large_share=0.4,
    improve_rate=8.0, band_bps=1.6, lag_ms=0.0, noise_bps=0.5, message_rate=0.0,
    daily_volume=55_000.0, first_trade_id=3_735_000_000,
)
_BINANCE_ETH = _Profile(
    tick=0.01, price_decimals=2, size_decimals=4, spreads=(1, 2, 3), spread_weights=(0.55, 0.3, 0.15),
    near_ticks=300, near_density=0.45, depth_ticks=1_400, far_density=0.12,
    level_size=1.6, size_growth=0.6, dust_share=0.3, dust_size=0.004, wall_share=0.03, wall_mult=25.0,
    round_ticks=100, join_rate=4.0, join_size=1.5, pull_rate=5.0, touch_cancel_rate=0.5, churn=0.12, mod_rate=25.0,
    trade_rate=5.0, trade_small=0.008, trade_large=0.5, large_share=0.4,
    improve_rate=12.0, band_bps=2.0, lag_ms=20.0, noise_bps=0.7, message_rate=0.0,
    daily_volume=650_000.0, first_trade_id=1_521_000_000,
)
_COINBASE_BTC = _Profile(
    tick=0.01, price_decimals=2, size_decimals=8, spreads=(1, 2, 3, 4, 6), spread_weights=(0.35, 0.25, 0.2, 0.12, 0.08),
    near_ticks=2_500, near_density=1 / 25, depth_ticks=9_000, far_density=1 / 46,
    level_size=0.06, size_growth=0.6, dust_share=0.25, dust_size=0.0005, wall_share=0.03, wall_mult=20.0,
    round_ticks=1_000, join_rate=1.2, join_size=0.06, pull_rate=3.0, touch_cancel_rate=0.5, churn=0.08, mod_rate=10.0,
    trade_rate=0.9, trade_small=0.0003, trade_large=0.015, large_share=0.35,
    improve_rate=8.0, band_bps=2.4, lag_ms=140.0, noise_bps=1.0, message_rate=16.0,
    daily_volume=14_500.0, first_trade_id=690_400_000,
)
_COINBASE_ETH = _Profile(
    tick=0.01, price_decimals=2, size_decimals=8,
    spreads=(3, 4, 5, 6, 8, 10, 13), spread_weights=(0.12, 0.2, 0.18, 0.15, 0.15, 0.1, 0.1),
    near_ticks=400, near_density=0.5, depth_ticks=1_800, far_density=0.08,
    level_size=2.2, size_growth=0.6, dust_share=0.2, dust_size=0.02, wall_share=0.03, wall_mult=20.0,
    round_ticks=100, join_rate=0.8, join_size=0.3, pull_rate=3.0, touch_cancel_rate=0.6, churn=0.08, mod_rate=8.0,
    trade_rate=0.6, trade_small=0.01, trade_large=0.5, large_share=0.4,
    improve_rate=6.0, band_bps=3.0, lag_ms=190.0, noise_bps=1.3, message_rate=15.0,
    daily_volume=300_000.0, first_trade_id=520_300_000,
)

_PROFILES = {
    ("binance", "BTC"): _BINANCE_BTC,
    ("binance", "ETH"): _BINANCE_ETH,
    ("coinbase", "BTC"): _COINBASE_BTC,
    ("coinbase", "ETH"): _COINBASE_ETH,
}

#: Order-flow response: aggressive buying grows by exp(FLOW_GAP · gap_bps) when the venue's
#: reference price is above its mid; and by exp(FLOW_TILT · pressure) with latent pressure.
_FLOW_GAP = 0.45
_FLOW_TILT = 0.12
#: How much resting liquidity leans with u = tanh(PRESSURE·pressure + GAP_LEAN·gap/band): new bid
#: sizes × (1 + LEAN·u), asks × (1 − LEAN·u). This is what makes book imbalance informative.
_LEAN = 0.4
_PRESSURE = 0.8
_GAP_LEAN = 0.05


def _profile(inst: Instrument) -> _Profile:
    venue = "binance" if inst.venue in ("binance", "binanceus") else inst.venue
    base = inst.symbol.split("-")[0]
    try:
        return _PROFILES[(venue, base)]
    except KeyError:
        raise ConfigError(
            f"no simulated market for {inst}; simulated: binance and coinbase, assets {', '.join(_ASSETS)}"
        ) from None


def _rng(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream named by ``names``: adding an instrument changes no other stream."""
    key = tuple(zlib.crc32(n.encode()) for n in names)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


# ----------------------------------------------------------------------------- latent paths


class _OU:
    """An Ornstein-Uhlenbeck path on a fixed grid, generated lazily in chunks (deterministic)."""

    def __init__(self, rng: np.random.Generator, tau_s: float, std: float, grid_ns: int, chunk: int, start_ns: int):
        self.rng, self.grid, self.chunk_len, self.start = rng, grid_ns, chunk, start_ns
        self.a = math.exp(-grid_ns / SECOND / tau_s)
        self.scale = std * math.sqrt(1 - self.a**2)
        self.x = float(rng.standard_normal() * std)
        self.chunks: dict[int, np.ndarray] = {}
        self.next = 0

    def chunk(self, k: int) -> np.ndarray:
        while self.next <= k:
            eps = self.rng.standard_normal(self.chunk_len) * self.scale
            out = np.empty(self.chunk_len)
            x, a = self.x, self.a
            for i, e in enumerate(eps.tolist()):
                x = a * x + e
                out[i] = x
            self.x = x
            self.chunks[self.next] = out
            self.chunks.pop(self.next - 6, None)
            self.next += 1
        return self.chunks[k]

    def value(self, t: int) -> float:
        i = max(0, (t - self.start) // self.grid)
        k, j = divmod(i, self.chunk_len)
        return float(self.chunk(k)[j])


@dataclass(frozen=True)
class _Dislocation:
    start: int
    venue: str
    bps: float  # signed
    rise: int
    hold: int
    decay: int

    def offset(self, t: int) -> float:
        x = t - self.start
        if x < 0:
            return 0.0
        if x < self.rise:
            return self.bps * x / self.rise
        x -= self.rise
        if x < self.hold:
            return self.bps * (1.0 - 0.25 * x / self.hold)
        return 0.75 * self.bps * math.exp(-(x - self.hold) / self.decay)


class _AssetPath:
    """Fair price, order-flow pressure and dislocation schedule of one asset."""

    GRID = 10 * MS
    CHUNK = 6_000  # 60 s of 10 ms steps

    def __init__(self, name: str, asset: _Asset, seed: int, start_ns: int, venues: list[str]):
        self.asset, self.start, self.venues = asset, start_ns, venues
        self.rng = _rng(seed, "fair", name)
        self.pressure = _OU(_rng(seed, "pressure", name), 20.0, 1.0, 100 * MS, self.CHUNK // 10, start_ns)
        self.log_fair0 = math.log(asset.price)
        self.chunks: dict[int, np.ndarray] = {}
        self.next = 0
        self.disloc_rng = _rng(seed, "dislocation", name)
        self.dislocations: list[_Dislocation] = []
        self.disloc_starts: list[int] = []
        self.next_disloc = start_ns + int(self.disloc_rng.uniform(20, 240) * SECOND)

    def _chunk(self, k: int) -> np.ndarray:
        while self.next <= k:
            a, n, dt_s = self.asset, self.CHUNK, self.GRID / SECOND
            pressure = np.repeat(self.pressure.chunk(self.next), 10)
            steps = a.drift_bps * dt_s * pressure + a.vol_bps * math.sqrt(dt_s) * self.rng.standard_normal(n)
            jumps = self.rng.random(n) < a.jump_rate * dt_s
            steps[jumps] += a.jump_bps * self.rng.standard_normal(int(jumps.sum()))
            path = self.log_fair0 + np.cumsum(steps * 1e-4)
            self.log_fair0 = float(path[-1])
            self.chunks[self.next] = path
            self.chunks.pop(self.next - 6, None)
            self.next += 1
        return self.chunks[k]

    def log_fair(self, t: int) -> float:
        i = max(0, (t - self.start) // self.GRID)
        k, j = divmod(i, self.CHUNK)
        return float(self._chunk(k)[j])

    def dislocation_bps(self, venue: str, t: int) -> float:
        """Offset of ``venue`` from the fair price at ``t`` caused by a dislocation, in bps."""
        while self.next_disloc <= t:
            r = self.disloc_rng
            self.dislocations.append(
                _Dislocation(
                    start=self.next_disloc,
                    venue=self.venues[int(r.integers(len(self.venues)))],
                    bps=float(r.choice([-1.0, 1.0]) * r.uniform(27.0, 60.0)),
                    rise=int(r.uniform(30, 160) * MS),
                    hold=int(min(5.0, max(0.15, r.lognormal(math.log(1.0), 0.8))) * SECOND),
                    decay=int(r.uniform(80, 300) * MS),
                )
            )
            self.disloc_starts.append(self.next_disloc)
            self.next_disloc += int(r.uniform(4.0, 11.0) * MINUTE)
        i = bisect_right(self.disloc_starts, t) - 1
        if i < 0:
            return 0.0
        d = self.dislocations[i]
        return d.offset(t) if d.venue == venue else 0.0

    def pressure_at(self, t: int) -> float:
        return self.pressure.value(t)


# ----------------------------------------------------------------------------- one side of a book


class _Ladder:
    """One side of a book: integer keys ascending, best first (asks: tick, bids: −tick), and sizes.

    Plain lists and bisect: the model changes a handful of levels per step, where numpy's
    per-call cost would dominate.
    """

    __slots__ = ("keys", "sizes")

    def __init__(self, keys: list[int] | None = None, sizes: list[float] | None = None):
        self.keys: list[int] = list(keys or [])
        self.sizes: list[float] = list(sizes or [])

    def __len__(self) -> int:
        return len(self.keys)

    def copy(self) -> "_Ladder":
        return _Ladder(self.keys, self.sizes)

    def get(self, key: int) -> float:
        i = bisect_left(self.keys, key)
        return self.sizes[i] if i < len(self.keys) and self.keys[i] == key else 0.0

    def set(self, key: int, size: float) -> None:
        """Set the absolute size at ``key``; size 0 removes the level."""
        keys = self.keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            if size > 0:
                self.sizes[i] = size
            else:
                del keys[i], self.sizes[i]
        elif size > 0:
            keys.insert(i, key)
            self.sizes.insert(i, size)

    def insert_new(self, keys: list[int], sizes: list[float]) -> tuple[list[int], list[float]]:
        """Insert sorted ``keys`` where there is no level yet (occupied keys are skipped); returns those inserted."""
        if not self.keys or keys[0] > self.keys[-1]:
            self.keys += keys
            self.sizes += sizes
        elif keys[-1] < self.keys[0]:
            self.keys[0:0] = keys
            self.sizes[0:0] = sizes
        else:
            free = [(k, s) for k, s in zip(keys, sizes) if self.get(k) == 0.0]
            for k, s in free:
                self.set(k, s)
            keys, sizes = [k for k, _ in free], [s for _, s in free]
        return keys, sizes


# ----------------------------------------------------------------------------- one instrument's book model


class _Book:
    """The book model of one instrument: plans its steps ahead and publishes them as events.

    A step is 100 ms on Binance (one diff) and one message on Coinbase. In a step: aggressive
    orders eat the touch (their rate leans towards the venue's reference price and the latent
    pressure), quotes re-price when the reference leaves the book by more than ``band_bps``,
    quoters close a spread wider than the target, and passive orders come and go behind the
    touch (their sizes lean with the pressure, which is what makes book imbalance informative).
    """

    POOL = 4096

    def __init__(self, index: int, inst: Instrument, path: _AssetPath, seed: int, start_ns: int):
        self.index, self.inst, self.path = index, inst, path
        self.venue, self.symbol = inst.venue, inst.symbol
        self.p = p = _profile(inst)
        self.rng = _rng(seed, "book", str(inst))
        self._u: list[float] = []
        self._n: list[float] = []
        self._ui = self._ni = 0
        self.noise = _OU(_rng(seed, "noise", str(inst)), 3.0, p.noise_bps, 100 * MS, 600, start_ns)
        self.lag = int(p.lag_ms * MS)
        self.lot = 10.0 ** -p.size_decimals
        self.spread_p = np.asarray(p.spread_weights) / sum(p.spread_weights)
        self.spread = self._draw_spread()
        self.n_expected = p.near_density * p.near_ticks + p.far_density * (p.depth_ticks - p.near_ticks)
        self.near_share = p.near_density * p.near_ticks / self.n_expected
        self.slip = max(2, int(p.band_bps * 2e-4 * path.asset.price / p.tick))
        # market makers' favourite order sizes, repeated across levels as in the real books
        self.clips = [self._round(p.level_size * x) for x in self.rng.lognormal(0.3, 0.7, 4).tolist()]
        self.trade_id = p.first_trade_id + int(self.rng.integers(0, 100_000))
        self.pending: deque = deque()
        self.t = start_ns  # end of the last planned step
        if p.message_rate <= 0:  # Binance: one diff per 100 ms on a ms grid
            self.next_step = -(-start_ns // MS) * MS + int(self.rng.integers(1, 100)) * MS
        else:
            self.next_step = start_ns + self._gap_ns()
        self.chg: tuple[dict, dict] = ({}, {})
        self.trades: list[Trade] = []
        self._build(start_ns)
        self.published = (self.sides[0].copy(), self.sides[1].copy())

    # ------------------------------------------------------------------ random draws

    def _unif(self) -> float:
        if self._ui == len(self._u):
            self._u, self._ui = self.rng.random(self.POOL).tolist(), 0
        self._ui += 1
        return self._u[self._ui - 1]

    def _norm(self) -> float:
        if self._ni == len(self._n):
            self._n, self._ni = self.rng.standard_normal(self.POOL).tolist(), 0
        self._ni += 1
        return self._n[self._ni - 1]

    def _draw_spread(self) -> int:
        return int(self.p.spreads[int(self.rng.choice(len(self.p.spreads), p=self.spread_p))])

    def _gap_ns(self) -> int:
        return max(MS // 10, int(self.rng.exponential(1.0 / self.p.message_rate) * SECOND))

    def _round(self, size: float) -> float:
        return max(round(size, self.p.size_decimals), self.lot)

    def _size(self, d: int, key: int, lean: float) -> float:
        """Size of a new order ``d`` ticks behind the touch: dust, a standard order, a market maker's clip or a wall."""
        p = self.p
        base = p.level_size * (1.0 + d / p.near_ticks) ** p.size_growth
        kind = self._unif()
        if kind < 0.25:
            size = self.clips[int(kind * 16)]
        elif kind > 1.0 - p.dust_share:
            size = p.dust_size * math.exp(0.8 * self._norm())
        else:
            size = base * math.exp(self._norm())
        wall = self._unif()
        if wall < p.wall_share or (wall < 0.5 and key % p.round_ticks == 0):
            size = base * p.wall_mult * math.exp(0.5 * self._norm())
        if d < p.near_ticks // 2:
            size *= lean
        return self._round(size)

    def _trade_size(self) -> float:
        p = self.p
        if self._unif() < p.large_share:
            return self._round(p.trade_large * math.exp(1.1 * self._norm()))
        return self._round(p.trade_small * math.exp(1.3 * self._norm()))

    def reference(self, t: int) -> float:
        """Where this venue wants its mid to be at ``t``, in ticks: lagged fair price, noise, dislocation."""
        bps = self.noise.value(t) + self.path.dislocation_bps(self.venue, t)
        return math.exp(self.path.log_fair(t - self.lag) + bps * 1e-4) / self.p.tick

    # ------------------------------------------------------------------ book changes

    def _set(self, side: int, key: int, size: float) -> None:
        self.sides[side].set(key, size)
        self.chg[side][key] = size

    def _layer(self, lo: int, hi: int, touch: int, lean: float) -> tuple[list[int], list[float]]:
        """Random levels at keys in (lo, hi] within the kept depth behind ``touch``, sorted."""
        p = self.p
        hi = min(hi, touch + p.depth_ticks)
        keys: list[int] = []
        sizes: list[float] = []
        key = lo
        while True:
            density = p.near_density if key - touch < p.near_ticks else p.far_density
            key += 1 + int(math.log(1.0 - self._unif()) / math.log(1.0 - density))  # geometric gaps
            if key > hi:
                return keys, sizes
            keys.append(key)
            sizes.append(self._size(key - touch, abs(key), lean))

    def _fill(self, side: int, lo: int, hi: int, touch: int, lean: float, head: tuple = ()) -> None:
        """Place levels at free keys in (lo, hi] (and ``head``, a key and its size, ahead of them)."""
        keys, sizes = self._layer(lo, hi, touch, lean)
        if head:
            keys.insert(0, head[0])
            sizes.insert(0, head[1])
        if keys:
            keys, sizes = self.sides[side].insert_new(keys, sizes)
            self.chg[side].update(zip(keys, sizes))

    def _touch_size(self, lean: float) -> float:
        return self._round(self.p.join_size * lean * math.exp(0.7 + 0.8 * self._norm()))

    def _new_touch(self, side: int, key: int, lean: float) -> None:
        """A quoter steps in at ``key`` ahead of the current best; the gap behind fills in."""
        ladder = self.sides[side]
        old = ladder.keys[0] if ladder.keys else key + self.p.depth_ticks + 1
        if key < old:
            self._fill(side, key, old - 1, key, lean, head=(key, self._touch_size(lean)))

    def _take(self, side: int, qty: float, ts: int, aggressor: int, limit: int, sure: int = 1 << 30, maybe: float = 1.0) -> None:
        """An aggressive order of ``qty`` eats ``side`` from the touch up to key ``limit``.

        The first ``sure`` levels trade; each level after them trades with probability ``maybe``
        and is otherwise cancelled by its owner (a re-quote).
        """
        ladder, chg, sign, dec = self.sides[side], self.chg[side], (1 if side == 1 else -1), self.p.size_decimals
        keys, sizes = ladder.keys, ladder.sizes
        while qty > 0.5 * self.lot and len(keys) > 1 and keys[0] <= limit:
            key, size = keys[0], sizes[0]
            take = min(qty, size)
            if sure > 0 or self._unif() < maybe:
                self._print(ts, key * sign, take, aggressor)
            sure -= 1
            left = round(size - take, dec)
            if left < 0.5 * self.lot:
                del keys[0], sizes[0]
                chg[key] = 0.0
            else:
                sizes[0] = left
                chg[key] = left
            qty -= take

    def _print(self, ts: int, tick: int, size: float, side: int) -> None:
        self.trade_id += 1
        price = round(tick * self.p.tick, self.p.price_decimals)
        self.trades.append(Trade(ts, self.venue, self.symbol, self.trade_id, price, round(size, self.p.size_decimals), side))

    def _build(self, t: int) -> None:
        p = self.p
        bid = int(math.floor(self.reference(t) - self.spread / 2))
        self.sides = (_Ladder(), _Ladder())
        for side, key in ((0, -bid), (1, bid + self.spread)):
            touch = self._round(p.join_rate / p.touch_cancel_rate * p.join_size * 2.0)
            self._fill(side, key, key + p.depth_ticks, key, 1.0, head=(key, touch))
        self.far = [self.sides[0].keys[0] + p.depth_ticks, self.sides[1].keys[0] + p.depth_ticks]
        self.chg = ({}, {})

    # ------------------------------------------------------------------ one step

    def plan_step(self) -> None:
        """Run the model one step (100 ms on Binance, one message on Coinbase); events wait in ``pending``."""
        t1 = self.next_step
        self._step(self.t, t1)
        self.t = t1
        self.next_step = t1 + (100 * MS if self.p.message_rate <= 0 else self._gap_ns())

    def _step(self, t0: int, t1: int) -> None:
        p, rng = self.p, self.rng
        bids, asks = self.sides
        dt_s = (t1 - t0) / SECOND
        r = self.reference(t1)
        mid = 0.5 * (asks.keys[0] - bids.keys[0])
        gap = (r - mid) / mid * 1e4
        u = math.tanh(_PRESSURE * self.path.pressure_at(t1) + _GAP_LEAN * gap / p.band_bps)
        lean_b, lean_a = 1.0 + _LEAN * u, 1.0 - _LEAN * u
        n_levels = len(bids) + len(asks)
        push = max(-2.0, min(2.0, _FLOW_GAP * gap)) + _FLOW_TILT * u
        counts = rng.poisson(
            np.array([
                p.trade_rate * math.exp(push),
                p.trade_rate * math.exp(-push),
                p.join_rate * lean_b, p.join_rate * lean_a,
                p.touch_cancel_rate, p.touch_cancel_rate,
                p.churn * self.n_expected, p.churn * self.n_expected,
                p.churn * n_levels / 2, p.churn * n_levels / 2,
                p.mod_rate / 2, p.mod_rate / 2,
                0.15,  # a new target spread
                p.pull_rate * max(0.0, -gap / p.band_bps - 0.25),  # bids pulled ahead of a fall
                p.pull_rate * max(0.0, gap / p.band_bps - 0.25),  # asks pulled ahead of a rise
            ]) * dt_s
        ).tolist()
        if counts[12]:
            self.spread = self._draw_spread()

        # aggressive orders, in time order
        n_orders = counts[0] + counts[1]
        if n_orders:
            sides = [1] * counts[0] + [-1] * counts[1]
            rng.shuffle(sides)
            times = np.sort(rng.integers(t0 + 1, t1 + 1, n_orders))
            if p.message_rate <= 0:  # Binance stamps in ms
                times = np.minimum(-(-times // MS) * MS, t1)
            for aggressor, ts in zip(sides, times.tolist()):
                side = 1 if aggressor > 0 else 0
                self._take(side, self._trade_size(), ts, aggressor, self.sides[side].keys[0] + self.slip)

        # makers pull the touch that the reference is running away from
        for side in (0, 1):
            ladder = self.sides[side]
            for _ in range(counts[13 + side]):
                if len(ladder) > 1:
                    self._set(side, ladder.keys[0], 0.0)

        # quotes re-price when the venue's reference runs away from the book
        bb, ba = -bids.keys[0], asks.keys[0]
        mid = 0.5 * (bb + ba)
        gap = (r - mid) / mid * 1e4
        if abs(gap) > p.band_bps:
            bid = int(math.floor(r - self.spread / 2))
            ask = bid + self.spread
            if gap > 0:  # asks below the new ask are swept, bids step up
                self._sweep(1, ask, t1, +1, lean_a)
                if bid > bb:
                    self._new_touch(0, -bid, lean_b)
            else:
                self._sweep(0, -bid, t1, -1, lean_b)
                if ask < ba:
                    self._new_touch(1, ask, lean_a)

        # quoters close a spread wider than the target, mostly on the side the price is heading to
        bb, ba = -bids.keys[0], asks.keys[0]
        if ba - bb > self.spread and self._unif() < 1.0 - math.exp(-p.improve_rate * dt_s):
            mid = 0.5 * (bb + ba)
            toward = 0.5 + 0.4 * math.tanh(2.0 * (r - mid) / mid * 1e4 / p.band_bps)
            if self._unif() < toward:
                self._new_touch(0, -(ba - self.spread), lean_b)
            else:
                self._new_touch(1, bb + self.spread, lean_a)

        for side, lean, joins, cancels, adds, removes, mods in (
            (0, lean_b, counts[2], counts[4], counts[6], counts[8], counts[10]),
            (1, lean_a, counts[3], counts[5], counts[7], counts[9], counts[11]),
        ):
            self._flow(side, lean, joins, cancels, adds, removes, mods)
            self._coverage(side, lean)
        self._publish(t1)

    def _sweep(self, side: int, new_key: int, ts: int, aggressor: int, lean: float) -> None:
        """Remove every level of ``side`` ahead of ``new_key``: the first levels trade, deeper ones are mostly pulled."""
        ladder, p = self.sides[side], self.p
        n = bisect_left(ladder.keys, new_key)
        if n == 0:
            return
        if n >= len(ladder):  # the whole kept side goes: quoters re-layer behind new_key first
            self._fill(side, new_key, new_key + p.depth_ticks, new_key, lean, head=(new_key, self._touch_size(lean)))
            self.far[side] = max(self.far[side], new_key + p.depth_ticks)
        sure = 1 + int(self._unif() * 3)
        self._take(side, sum(ladder.sizes[:n]) + self.lot, ts, aggressor, new_key - 1, sure=sure, maybe=0.08)
        if ladder.keys[0] > new_key:
            self._new_touch(side, new_key, lean)

    def _flow(self, side: int, lean: float, joins: int, cancels: int, adds: int, removes: int, mods: int) -> None:
        """Passive orders of one side in a step: joins and partial cancels at the touch, orders
        coming and going behind it, and orders replaced among the first levels."""
        p, ladder = self.p, self.sides[side]
        keys = ladder.keys
        touch = keys[0]
        if joins or cancels:
            size = ladder.sizes[0]
            for _ in range(joins):
                size += p.join_size * lean * math.exp(self._norm())
            for _ in range(cancels):
                size *= 0.9 - 0.6 * self._unif()
            size = round(size, p.size_decimals)
            self._set(side, touch, 0.0 if size < self.lot and len(keys) > 1 else max(size, self.lot))
        for _ in range(removes):
            if len(keys) > 2:
                self._set(side, keys[1 + int(self._unif() * (len(keys) - 1))], 0.0)
        for _ in range(mods):
            if len(keys) > 2:
                key = keys[1 + int(self._unif() * (min(len(keys), 30) - 1))]
                self._set(side, key, self._size(key - touch, abs(key), lean))
        for _ in range(adds):
            if self._unif() < self.near_share:
                d = 1 + int(self._unif() * p.near_ticks)
            else:
                d = p.near_ticks + 1 + int(self._unif() * (p.depth_ticks - p.near_ticks))
            key = touch + d
            self._set(side, key, self._round(self._size(d, abs(key), lean) + ladder.get(key)))  # may join a level

    def _coverage(self, side: int, lean: float) -> None:
        """Keep ``depth_ticks`` of book behind the touch: fill what the touch moved towards, trim the rest."""
        ladder = self.sides[side]
        touch = ladder.keys[0]
        limit = touch + self.p.depth_ticks
        if self.far[side] < limit:
            self._fill(side, self.far[side], limit, touch, lean)
            self.far[side] = limit
        elif self.far[side] > limit + self.p.depth_ticks // 3:
            cut = bisect_right(ladder.keys, limit)
            self.chg[side].update(dict.fromkeys(ladder.keys[cut:], 0.0))
            del ladder.keys[cut:], ladder.sizes[cut:]
            self.far[side] = limit

    def _publish(self, t1: int) -> None:
        """Queue this step's trades and its one depth update for release in time order."""
        for trade in self.trades:
            self.pending.append((trade.ts, trade, None))
        self.trades = []
        cb, ca = self.chg
        if cb or ca:
            tick, dec = self.p.tick, self.p.price_decimals
            payload = (sorted(cb.items()), sorted(ca.items()))
            levels = [[(round(abs(k) * tick, dec), s) for k, s in changes] for changes in payload]
            update = DepthUpdate(t1, self.venue, self.symbol, levels[0], levels[1])
            self.pending.append((t1, update, payload))
            self.chg = ({}, {})

    # ------------------------------------------------------------------ published view

    def release(self, payload: tuple[list, list]) -> None:
        """Apply a released depth update to the published book."""
        for ladder, changes in zip(self.published, payload):
            for key, size in changes:
                ladder.set(key, size)

    def top_keys(self, levels: int) -> tuple[list[int], list[float], list[int], list[float]]:
        """The first ``levels`` levels as key and size lists (bids, asks), padded with key 0 / size 0."""
        bids, asks = self.published
        nb, na = min(levels, len(bids)), min(levels, len(asks))
        return (bids.keys[:nb] + [0] * (levels - nb), bids.sizes[:nb] + [0.0] * (levels - nb),
                asks.keys[:na] + [0] * (levels - na), asks.sizes[:na] + [0.0] * (levels - na))

    def key_prices(self, keys: np.ndarray) -> np.ndarray:
        """Prices of keys (either side); key 0 (no level) gives NaN."""
        prices = np.round(np.abs(keys) * self.p.tick, self.p.price_decimals)
        prices[keys == 0] = np.nan
        return prices

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        tick, dec = self.p.tick, self.p.price_decimals
        bids, asks = ([(round(abs(k) * tick, dec), s) for k, s in zip(ladder.keys, ladder.sizes)] for ladder in self.published)
        return bids, asks


# ----------------------------------------------------------------------------- 24 h statistics


class _Stats:
    """Rolling 24 h ticker statistics from 1-minute bars, the first day seeded so numbers look real."""

    def __init__(self, book: _Book, history: np.ndarray, rng: np.random.Generator, start_ns: int):
        p = book.p
        self.decimals = p.price_decimals
        self.base = start_ns // MINUTE - 1440  # minute number of bar 0
        n = len(history) - 1
        closes = np.exp(history[1:] + rng.normal(0.0, 0.3e-4, n))
        opens = np.exp(history[:-1] + rng.normal(0.0, 0.3e-4, n))
        spread = np.abs(rng.normal(0.0, 1.0, (2, n))) * np.abs(history[1:] - history[:-1]).mean()
        minute = np.arange(n)
        season = 1.0 + 0.35 * np.sin(2 * np.pi * (minute / 1440.0 + rng.random()))
        volume = p.daily_volume / 1440.0 * season * rng.lognormal(-0.18, 0.6, n)
        cap = n + 4096
        self.o, self.h, self.l, self.c = (np.zeros(cap) for _ in range(4))
        self.v, self.q = np.zeros(cap), np.zeros(cap)
        self.o[:n], self.c[:n] = opens, closes
        self.h[:n] = np.maximum(opens, closes) * np.exp(spread[0])
        self.l[:n] = np.minimum(opens, closes) * np.exp(-spread[1])
        self.v[:n] = volume
        self.q[:n] = volume * (opens + closes) / 2
        self.n = n  # bars in use (the last one is the current minute once trading starts)
        self.last = float(closes[-1])

    def _bar(self, minute: int) -> int:
        i = minute - self.base
        while self.n <= i:
            if self.n == len(self.o):
                for name in ("o", "h", "l", "c", "v", "q"):
                    setattr(self, name, np.concatenate([getattr(self, name), np.zeros(len(self.o))]))
            self.o[self.n] = self.h[self.n] = self.l[self.n] = self.c[self.n] = self.last
            self.n += 1
        return i

    def on_trade(self, trade: Trade) -> None:
        i = self._bar(trade.ts // MINUTE)
        price = trade.price
        if price > self.h[i]:
            self.h[i] = price
        if price < self.l[i]:
            self.l[i] = price
        self.c[i] = price
        self.v[i] += trade.size
        self.q[i] += trade.size * price
        self.last = price

    def snapshot(self, now: int) -> dict:
        i = self._bar(now // MINUTE)
        lo = max(0, i - 1439)
        first = self.o[lo]
        d = self.decimals
        return {
            "last": round(self.last, d),
            "open": round(float(first), d),
            "high": round(float(max(self.h[lo : i + 1].max(), self.last)), d),
            "low": round(float(min(self.l[lo : i + 1].min(), self.last)), d),
            "volume": round(float(self.v[lo : i + 1].sum()), 8),
            "quote_volume": round(float(self.q[lo : i + 1].sum()), 4),
            "change_pct": round(float(self.last / first - 1.0) * 100.0, 3),
        }


def _history(seed: int, name: str, asset: _Asset) -> np.ndarray:
    """Log prices of the 24 h before the start, one a minute, ending at the start price."""
    rng = _rng(seed, "history", name)
    steps = rng.normal(0.0, asset.daily_vol_pct / 100.0 / math.sqrt(1440.0), 1440)
    steps += rng.normal(0.0, 0.5 * asset.daily_vol_pct / 100.0) / 1440.0  # a trend of the day
    return math.log(asset.price) - np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])


# ----------------------------------------------------------------------------- the market


class Market:
    """A deterministic synthetic market of several venues and assets, advanced event by event.

    One latent fair price per asset (BTC ~61 800, ETH ~2 600) is shared by the venues; each venue
    trails it with its own lag and noise, and now and then one venue dislocates by 27–60 bps for a
    fraction of a second to a few seconds. Binance books publish one :class:`DepthUpdate` per
    100 ms with all changes of the interval; Coinbase books publish many smaller ones (about 15 a
    second). Trades carry the aggressor side. The same seed gives the same events however
    :meth:`advance` is called.

    Args:
        seed: seed of every random stream.
        instruments: default binance BTC-USDT, ETH-USDT and coinbase BTC-USD, ETH-USD.
        start_ns: the market's clock at creation (ns since the epoch, UTC).
    """

    def __init__(self, seed: int, instruments: list[Instrument] | None = None, start_ns: int = START_NS):
        insts = [Instrument.parse(i) if isinstance(i, str) else Instrument(*i) for i in (instruments or DEFAULT_INSTRUMENTS)]
        if len(set(insts)) != len(insts):
            raise ConfigError("simulate: an instrument is listed twice")
        for inst in insts:
            _profile(inst)
        self.seed = int(seed)
        self._now = int(start_ns)
        assets: dict[str, list[str]] = {}
        for inst in insts:
            assets.setdefault(inst.symbol.split("-")[0], []).append(inst.venue)
        self._paths = {name: _AssetPath(name, _ASSETS[name], self.seed, self._now, sorted(set(v))) for name, v in assets.items()}
        self._books: dict[tuple[str, str], _Book] = {}
        self._stats: dict[tuple[str, str], _Stats] = {}
        for i, inst in enumerate(insts):
            name = inst.symbol.split("-")[0]
            book = _Book(i, inst, self._paths[name], self.seed, self._now)
            self._books[inst] = book
            hist = _history(self.seed, name, _ASSETS[name])
            self._stats[inst] = _Stats(book, hist, _rng(self.seed, "history", str(inst)), self._now)
        self.instruments: tuple[Instrument, ...] = tuple(insts)

    @property
    def now(self) -> int:
        """The market clock in ns: the ``until_ns`` of the last :meth:`advance` (or the start)."""
        return self._now

    def advance(self, until_ns: int) -> list[Event]:
        """All events with ``now < ts <= until_ns`` in time order, advancing the market to ``until_ns``.

        Event types are :class:`DepthUpdate` (absolute new sizes; size 0 removes a level) and
        :class:`Trade`. After the call, :meth:`book` and :meth:`ticker` show the market after
        exactly these events. Equal timestamps keep instrument order, and a step's trades come
        before the depth update that shows their effect. An ``until_ns`` in the past returns ``[]``.
        """
        return list(self.events(until_ns))

    def events(self, until_ns: int) -> Iterator[Event]:
        """Like :meth:`advance`, lazily: when an event is yielded, :meth:`book` already includes it.

        Consume the iterator to the end before calling it again.
        """
        until = int(until_ns)
        if until <= self._now:
            return
        queues = [self._drain(book, until) for book in self._books.values()]
        for _ts, _i, event, payload, book in heapq.merge(*queues, key=lambda item: (item[0], item[1])):
            self._now = event.ts
            if payload is not None:
                book.release(payload)
            else:
                self._stats[book.inst].on_trade(event)
            yield event
        self._now = until

    @staticmethod
    def _drain(book: _Book, until: int) -> Iterator[tuple]:
        pending = book.pending
        while True:
            if not pending:
                if book.t >= until:
                    return
                book.plan_step()  # planned lazily, so that all books stay close in time
                continue
            if pending[0][0] > until:
                return
            ts, event, payload = pending.popleft()
            yield ts, book.index, event, payload, book

    def _book(self, venue: str, symbol: str) -> _Book:
        try:
            return self._books[Instrument(venue, symbol)]
        except KeyError:
            known = ", ".join(str(i) for i in self.instruments)
            raise ConfigError(f"instrument {venue}:{symbol} is not simulated; simulated: {known}") from None

    def book(self, venue: str, symbol: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The full current book ``(bids descending, asks ascending)`` of ``(price, size)``, ~200+ levels a side."""
        return self._book(venue, symbol).levels()

    def top(self, venue: str, symbol: str, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The first ``levels`` levels as ``bid_px, bid_sz, ask_px, ask_sz`` arrays (missing: NaN / 0)."""
        book = self._book(venue, symbol)
        bid_keys, bid_sizes, ask_keys, ask_sizes = book.top_keys(levels)
        return (book.key_prices(np.array(bid_keys, dtype=np.int64)), np.array(bid_sizes),
                book.key_prices(np.array(ask_keys, dtype=np.int64)), np.array(ask_sizes))

    def ticker(self, venue: str, symbol: str) -> dict:
        """Rolling 24 h statistics: last, open, high, low, volume (base), quote_volume, change_pct (%)."""
        self._book(venue, symbol)
        return self._stats[Instrument(venue, symbol)].snapshot(self._now)

    def dislocations(self, until_ns: int | None = None) -> list[dict]:
        """The scheduled one-venue dislocations that start up to ``until_ns`` (default: now)."""
        until = self._now if until_ns is None else int(until_ns)
        out = []
        for name, path in self._paths.items():
            path.dislocation_bps(path.venues[0], until)
            for d in path.dislocations:
                if d.start <= until:
                    out.append({"asset": name, "venue": d.venue, "start": d.start, "bps": d.bps,
                                "duration_ms": (d.rise + d.hold) / MS})
        return sorted(out, key=lambda d: d["start"])


# ----------------------------------------------------------------------------- recording: simulate()

_STREAM_URLS = {"binance": "wss://stream.binance.com:9443/stream", "coinbase": "wss://advanced-trade-ws.coinbase.com"}
_FIRST_UPDATE_ID = {"BTC": 50_093_000_000, "ETH": 38_612_000_000}
_LATENCY_MS = {"binance": 4.2, "coinbase": 2.7}  # venue event time -> local receive time
_SNAPSHOT_MS = {"binance": (120.0, 420.0), "coinbase": (220.0, 650.0)}  # REST depth / level2 snapshot


class _Link:
    """One venue connection as the recorder saw it: receive latency, outages, Coinbase sequence_num."""

    def __init__(self, venue: str, rng: np.random.Generator, outage: tuple[int, int]):
        self.venue, self.rng, self.outage = venue, rng, outage
        self.base = _LATENCY_MS["binance" if venue != "coinbase" else "coinbase"] * MS
        self.phase = float(rng.uniform(0.0, 2 * math.pi))
        self.jitter: list[float] = []  # exponential jitter, now and then a hiccup of 5-40 ms
        self.i = 0
        self.last = 0
        self.seq = int(rng.integers(1_000, 50_000))  # Coinbase sequence_num, all channels of the connection
        self.seq_seen = self.seq
        self.state = "up"  # "up", "down" (in the outage), "back" (after it)
        self.tracks: list[_Track] = []  # the books recorded over this connection

    def recv(self, ts_event: int) -> int:
        """Local receive time of a message the venue stamped ``ts_event``: a few ms later, jittered, in order."""
        if self.i == len(self.jitter):
            hiccups = (self.rng.random(4096) < 0.005) * self.rng.uniform(5.0, 40.0, 4096) * MS
            self.jitter = (self.rng.exponential(0.35 * MS, 4096) + hiccups).tolist()
            self.i = 0
        lat = self.base * (1.0 + 0.2 * math.sin(ts_event / (97.0 * SECOND) * 2 * math.pi + self.phase)) + self.jitter[self.i]
        self.i += 1
        self.last = max(self.last + 1_000, ts_event + int(lat))
        return self.last

    def check(self, ts: int) -> None:
        """Drop or restore the connection when the clock ``ts`` crosses the outage."""
        down, up = self.outage
        if self.state == "up" and ts >= down:
            self.state = "down"
            for track in self.tracks:
                detail = f"connection closed: code 1006 (abnormal closure); reconnecting in {(up - down) / SECOND:.1f} s"
                track.events.append((self.recv(down), "disconnect", detail))
                track.unsync(up)
        if self.state == "down" and ts >= up:
            self.state = "back"
            self.last = max(self.last, up)
            for track in self.tracks:
                track.events.append((up, "connect", _connect_detail(self.venue, [t.inst.symbol for t in self.tracks])))
                track.resync_at = up + self.snapshot_delay()

    def snapshot_delay(self) -> int:
        lo, hi = _SNAPSHOT_MS["binance" if self.venue != "coinbase" else "coinbase"]
        return int(self.rng.uniform(lo, hi) * MS)


class _Track:
    """What the recorder writes for one instrument: book rows at the cadence, trades, ticker, events."""

    def __init__(self, inst: Instrument, market: Market, link: _Link, rng: np.random.Generator,
                 levels: int, interval_ms: int, connected: int, gaps: list[tuple[int, int]]):
        from .book.cadence import RowCadence

        self.inst, self.market, self.link, self.rng, self.levels = inst, market, link, rng, levels
        self.book = market._books[inst]
        self.binance = inst.venue != "coinbase"
        self.cadence = RowCadence(interval_ms)
        self.meta: list[tuple[int, int, int, int]] = []  # ts_recv, ts_event, seq, flags
        self.tops: list[tuple] = []
        self.pending: tuple | None = None
        self.trades: list[tuple] = []
        self.ticker: list[tuple] = []
        self.events: list[tuple[int, str, str]] = []
        self.update_id = _FIRST_UPDATE_ID[inst.symbol.split("-")[0]] + int(rng.integers(0, 10**6))
        self.synced = False
        self.resync_at = connected + link.snapshot_delay()
        self.flag = 0
        self.gaps = gaps  # (time, messages lost), in time order
        self.lost = 0
        self.gap_from = 0

    # the book stream

    def on_update(self, update: DepthUpdate) -> None:
        n = len(update.bids) + len(update.asks)
        first = self.update_id + 1
        if self.binance:
            self.update_id += n + int(self.rng.poisson(0.25 * n))  # ids of updates merged away count too
            seq = self.update_id
        else:
            self.link.seq += 1
            seq = self.link.seq
        if self.link.state == "down":
            return
        if self.lost:
            self.lost -= 1
            return
        if self.gaps and update.ts >= self.gaps[0][0] and self.synced:
            self.lost = self.gaps.pop(0)[1] - 1  # this message and a few more never arrive
            self.gap_from = first - 1 if self.binance else self.link.seq_seen
            return
        ts_recv = self.link.recv(update.ts)
        if self.gap_from:
            if self.binance:
                detail = (f"{self.inst.symbol}: depth update U={first} > book id {self.gap_from} + 1; "
                          "rebuilding from a REST snapshot")
            else:
                detail = (f"{self.inst.symbol}: sequence_num jumped from {self.gap_from} to {seq}; "
                          "resubscribing level2 for a fresh snapshot")
            self.events.append((ts_recv, "gap", detail))
            self.gap_from = 0
            self.unsync(ts_recv + self.link.snapshot_delay())
        if not self.binance:
            self.link.seq_seen = seq
        if not self.synced:
            if ts_recv < self.resync_at:
                return
            if self.binance:
                detail = f"{self.inst.symbol}: book rebuilt from a REST snapshot (lastUpdateId={first - 1})"
            else:
                bids, asks = self.market.book(self.inst.venue, self.inst.symbol)
                detail = f"{self.inst.symbol}: book rebuilt from a level2 snapshot ({len(bids)} bids, {len(asks)} asks)"
            self.events.append((self.resync_at, "resync", detail))
            self.synced = True
            self.flag = FLAG_RESYNC
        self.row(ts_recv, update.ts, seq)

    def row(self, ts_recv: int, ts_event: int, seq: int) -> None:
        """The book after an applied update; SPEC 2: one row per interval, at its end."""
        flags, self.flag = self.flag, 0
        if self.cadence.due(ts_recv):
            self.emit()
        elif self.pending is not None:
            flags |= self.pending[3]  # the row of this interval is still the first after a resync
        self.pending = (ts_recv, ts_event, seq, flags, self.book.top_keys(self.levels))
        if self.cadence.mark(ts_recv):
            self.emit()

    def emit(self) -> None:
        if self.pending is not None:
            self.meta.append(self.pending[:4])
            self.tops.append(self.pending[4])
            self.pending = None
        self.cadence.clear()

    def unsync(self, resync_at: int) -> None:
        self.emit()  # the last row of the synchronized book
        self.synced = False
        self.resync_at = resync_at

    # the other streams

    def on_trade(self, trade: Trade) -> None:
        if self.link.state == "down":
            return
        if not self.binance:
            self.link.seq += 1
            self.link.seq_seen = self.link.seq
        self.trades.append((self.link.recv(trade.ts), trade.ts, trade.trade_id, trade.price, trade.size, trade.side))

    def on_ticker(self, now: int) -> None:
        if self.link.state == "down":
            return
        t = self.market.ticker(self.inst.venue, self.inst.symbol)
        if self.binance:
            values = (t["last"], t["open"], t["high"], t["low"], t["volume"], t["quote_volume"], t["change_pct"])
        else:  # Coinbase's ticker channel has no 24 h open nor quote volume
            self.link.seq += 1
            self.link.seq_seen = self.link.seq
            values = (t["last"], math.nan, t["high"], t["low"], t["volume"], math.nan, t["change_pct"])
        self.ticker.append((self.link.recv(now), now) + values)

    def glitch(self) -> None:
        """One row with a momentarily empty side (NaN level 0), for data-quality handling to catch."""
        plain = [i for i in range(len(self.meta) // 5, 4 * len(self.meta) // 5) if self.meta[i][3] == 0]
        if not plain:
            return
        i = plain[int(self.rng.integers(len(plain)))]
        side = 2 * int(self.rng.integers(2))
        top = list(self.tops[i])
        top[side] = [0] * self.levels  # key 0: no level
        top[side + 1] = [0.0] * self.levels
        self.tops[i] = tuple(top)

    # tables

    def tables(self) -> dict[str, pa.Table]:
        meta = np.array(self.meta, dtype=np.int64).reshape(-1, 4)
        def lvl(k: int) -> pa.Array:
            column = [t[k] for t in self.tops]
            if k % 2 == 0:
                values = self.book.key_prices(np.array(column, dtype=np.int64).reshape(-1))
            else:
                values = np.array(column, dtype=np.float64).reshape(-1)
            return pa.FixedSizeListArray.from_arrays(pa.array(values), self.levels)

        book = pa.Table.from_arrays(
            [pa.array(meta[:, 0]), pa.array(meta[:, 1]), pa.array(meta[:, 2]), lvl(0), lvl(1), lvl(2), lvl(3),
             pa.array(meta[:, 3].astype(np.uint8))],
            schema=book_schema(self.levels),
        )
        events = sorted(self.events)
        return {
            "book": book,
            "trades": pa.Table.from_pylist([dict(zip(TRADES_SCHEMA.names, r)) for r in self.trades], schema=TRADES_SCHEMA)
            if self.trades else TRADES_SCHEMA.empty_table(),
            "ticker": pa.Table.from_pylist([dict(zip(TICKER_SCHEMA.names, r)) for r in self.ticker], schema=TICKER_SCHEMA)
            if self.ticker else TICKER_SCHEMA.empty_table(),
            "events": pa.Table.from_pylist([dict(zip(EVENTS_SCHEMA.names, r)) for r in events], schema=EVENTS_SCHEMA),
        }


def _connect_detail(venue: str, symbols: list[str]) -> str:
    if venue == "coinbase":
        channels = "level2, market_trades, ticker, heartbeats"
        return f"connected to {_STREAM_URLS['coinbase']}; subscribed {channels} for {', '.join(symbols)}"
    streams = "/".join(f"{s.replace('-', '').lower()}@{c}" for s in symbols for c in ("depth@100ms", "trade", "ticker"))
    return f"connected to {_STREAM_URLS['binance']}?streams={streams}"


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"output {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise DataError(f"output folder {str(out)!r} is not empty; pass --force to replace it")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in TABLES and not p.name.startswith("."))
        if foreign:
            raise DataError(
                f"refusing to replace {str(out)!r}: it holds {foreign[0]!r}, which is not part of a dataset "
                f"(expected only {', '.join(TABLES)})"
            )


def simulate(
    out: str | Path,
    minutes: float = 30,
    seed: int = 7,
    levels: int = 20,
    interval_ms: int = 100,
    start_ns: int | None = None,
    progress: bool = False,
    force: bool = False,
) -> dict[str, int]:
    """Run a :class:`Market` and write the dataset of SPEC section 2 under ``out``, as ``record`` would.

    ``book`` rows follow the cadence rule (at most one per book per ``interval_ms``, at the end of
    every interval with an update; ``ts_recv`` a few ms after the venue's ``ts_event``), plus
    ``trades``, ``ticker`` (one row a second) and ``events``: a ``connect`` per venue, an initial
    ``resync`` per book, two ``gap``/``resync`` incidents per venue and one ``disconnect``/``connect``
    per venue, after which the next book row carries ``FLAG_RESYNC``. One row per book has an
    empty side (an invalid row). Everything is written to a hidden folder beside ``out`` and
    renamed into place at the end, so an error leaves nothing half-written. The same arguments
    give the same files, byte for byte.

    Args:
        out: dataset folder; must be missing or empty unless ``force`` (then it must hold only a dataset).
        minutes: simulated duration.
        seed: random seed.
        levels: book levels per row.
        interval_ms: book row cadence; 0 writes a row after every update.
        start_ns: start time (ns since the epoch, UTC); default 2024-08-08T00:00:00Z.
        progress: show a progress bar on stderr.
        force: replace an existing dataset folder.

    Returns:
        Row counts per table.
    """
    if not (isinstance(minutes, (int, float)) and 0 < minutes <= 7 * 24 * 60):
        raise ConfigError(f"minutes must be > 0 and at most a week, got {minutes!r}")
    if not (isinstance(levels, int) and 1 <= levels <= 500):
        raise ConfigError(f"levels must be an integer from 1 to 500, got {levels!r}")
    if not (isinstance(interval_ms, int) and interval_ms >= 0):
        raise ConfigError(f"interval_ms must be an integer >= 0, got {interval_ms!r}")
    if not (isinstance(seed, int) and seed >= 0):
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    out = Path(out)
    _check_out(out, force)
    start = START_NS if start_ns is None else int(start_ns)
    end = start + int(round(minutes * MINUTE))

    market = Market(seed, start_ns=start)
    plan = _rng(seed, "incidents")
    venues = sorted({i.venue for i in market.instruments})
    links, tracks = {}, {}
    for venue in venues:
        down = start + int(plan.uniform(0.25, 0.75) * (end - start))
        links[venue] = _Link(venue, _rng(seed, "link", venue), (down, down + int(plan.uniform(1.0, 4.0) * SECOND)))
        insts = [i for i in market.instruments if i.venue == venue]
        gaps: dict[Instrument, list] = {i: [] for i in insts}
        order = plan.permutation(len(insts))  # spread the two incidents over the venue's books
        for k, (lo, hi) in enumerate(((0.08, 0.45), (0.55, 0.92))):
            inst = insts[int(order[k % len(insts)])]
            gaps[inst].append((start + int(plan.uniform(lo, hi) * (end - start)), int(plan.integers(1, 4))))
        connected = start + int(plan.uniform(1.0, 5.0) * MS)
        for inst in insts:
            tracks[inst] = _Track(inst, market, links[venue], _rng(seed, "recorder", str(inst)), levels, interval_ms,
                                  connected, sorted(gaps[inst]))
            tracks[inst].events.append((connected, "connect", _connect_detail(venue, [i.symbol for i in insts])))
            links[venue].tracks.append(tracks[inst])

    bar = _progress(progress, end - start)
    try:
        chunk = start
        while chunk < end:
            chunk = min(chunk + SECOND, end)
            for event in market.events(chunk):
                links[event.venue].check(event.ts)
                track = tracks[(event.venue, event.symbol)]
                if isinstance(event, Trade):
                    track.on_trade(event)
                else:
                    track.on_update(event)
            for track in tracks.values():
                track.link.check(chunk)
                track.on_ticker(chunk)
            if bar is not None:
                bar[0].update(bar[1], completed=chunk - start)
    finally:
        if bar is not None:
            bar[0].stop()
    for track in tracks.values():
        track.emit()
        track.glitch()
    return _write(out, tracks, seed, force)


def _progress(show: bool, total: int):
    if not show:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    return bar, bar.add_task("simulate", total=total)


def _write(out: Path, tracks: dict[Instrument, _Track], seed: int, force: bool) -> dict[str, int]:
    """Write every table into a hidden folder beside ``out``, then rename it into place."""
    tmp = temp_folder_beside(out)
    counts = dict.fromkeys(TABLES, 0)
    try:
        for inst, track in tracks.items():
            for name, table in track.tables().items():
                write_partitioned(tmp, name, inst.venue, inst.symbol, table, suffix=f"sim{seed}")
                counts[name] += table.num_rows
        move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def parse_time(text: str) -> int:
    """An ISO 8601 time (``2024-08-08T00:00:00Z``; no zone means UTC) as ns since the epoch."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(f"time {text!r} is not ISO 8601, for example 2024-08-08T00:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp()) * SECOND + t.microsecond * 1_000
