"""A slow, plain-Python reading of SPEC sections 4 and 5: the yardstick the numba engine is tested against.

One row at a time, lists and dicts, no numba and nothing imported from ``qfreplay.engine``: every
rule is written out where it applies, so that the code can be checked against the SPEC text line by
line.

Where the SPEC leaves a choice open, the comment marked ``AMBIGUOUS`` says which reading is taken
here (the readings match what the engine does, see ``tests/engine/test_reference.py``):

1. Missing level: "price NaN or size ≤ 0". A NaN *size* is taken as missing too (it is not > 0).
2. Invalid rows: *all* features are NaN, OFI included; signal 0, confidence 0, valid False. Their
   equity rows carry the current position and cash (nothing can fill on them) and the previous
   equity.
3. OFI: "the row right after an invalid row" is the next row in (ts_recv, seq) order; the
   previous row of the formula is always row i−1 (which is then valid). Sizes in the formula are
   the raw level-0 sizes (level 0 is never missing on a valid row).
4. Times in ms (`latency_ms`, `cooldown_ms`, `max_hold_ms`, `max_staleness_ms`) become integer ns
   by rounding ``ms × 10^6`` to the nearest ns; every comparison is then on integer ns.
5. "A pending order fills" in step 1 frees the slot, so the same row may place a new order in
   step 3 (cooldown permitting). The cooldown counts from the *placement* time of the last order.
   A pending order's quantity is fixed when it is placed; one that is still pending after the last
   row never fills.
6. max_hold: "opened ≥ max_hold_ms ago" is ``ts_recv_i − opening fill's ts ≥ max_hold_ns``. It only
   replaces a target that *equals* the position (a flip or flatten asked by the signal wins).
7. fill_model book: walks all N stored levels, skipping missing ones; what is left after the
   last visible level fills at that level's price.
8. Round trips: ts_open is the opening time of the position (the fill that opened it from flat or
   flipped it), ts_close the reducing fill's ts_recv. Adding to a position keeps its opening time
   and adds the whole fee to the opening fees; a flipping fill's fee is split pro rata between the
   closed and the newly opened quantity.
9. max_drawdown runs over the equity of every row (invalid rows carry the previous equity), the
   running peak starting at the first row's equity.
10. Sharpe: minutes are ``ts_recv // 60 s`` (UTC); the last equity of a minute is that of its last
    row (invalid rows included, they carry). Only minutes that have rows count, so a gap of several
    minutes is one change. The change from the initial 0 to the first minute is not a change.
    "Zero deviation" is an exact 0.
11. Hit rate: t is the signal row's ts_recv and mid(t) that row's own mid (not a later row at the
    same ts); mid(t+h) is the mid of the last valid row (in (ts_recv, seq) order) with
    ts_recv ≤ t + h. "The last row" of the exclusion rule is the last row in range, valid or not;
    a signal is kept iff t ≤ ts_last − h. Every non-zero signal counts, whatever its confidence.
12. Arbitrage: at a timeline point with several valid rows of one instrument at that ts, the last
    one in (ts_recv, seq) order is used. "Older than max_staleness_ms" is strict:
    ``t − ts_row > max_staleness_ns`` is skipped. The profit walk uses all N stored levels and ends
    when either side reaches its last level or a missing level (a NaN price cannot net > 0; a
    zero size is read the same way, not stepped over). An episode still open after
    the last point ends there. ts_end is the last positive point; a one-point episode lasts 0 ms.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np

FLAG_RESYNC = 1
NS_PER_MINUTE = 60 * 1_000_000_000
HORIZONS = (("1s", 1_000_000_000), ("5s", 5_000_000_000), ("30s", 30_000_000_000))
NAN = float("nan")


def ms_to_ns(ms: Optional[float]) -> Optional[int]:
    """ms (float) to whole ns. AMBIGUOUS 4: rounded to the nearest ns."""
    return None if ms is None else int(round(float(ms) * 1_000_000))


# ---------------------------------------------------------------------------------------- rows


@dataclass
class Row:
    ts: int
    seq: int
    flags: int
    bid_px: list
    bid_sz: list
    ask_px: list
    ask_sz: list


def rows_of(book: Any, start: Optional[int] = None, end: Optional[int] = None) -> list[Row]:
    """Rows with start ≤ ts_recv < end, in (ts_recv, seq) order, as plain Python values."""
    rows = []
    for i in range(len(book.ts_recv)):
        ts = int(book.ts_recv[i])
        if (start is not None and ts < start) or (end is not None and ts >= end):
            continue
        rows.append(Row(ts, int(book.seq[i]), int(book.flags[i]),
                        [float(x) for x in book.bid_px[i]], [float(x) for x in book.bid_sz[i]],
                        [float(x) for x in book.ask_px[i]], [float(x) for x in book.ask_sz[i]]))
    rows.sort(key=lambda r: (r.ts, r.seq))  # stable: equal (ts, seq) keep their order
    return rows


def is_missing(px: float, sz: float) -> bool:
    """SPEC 4: a level is missing when its price is NaN or its size ≤ 0 (AMBIGUOUS 1: NaN size too)."""
    return math.isnan(px) or not sz > 0


def is_valid(row: Row) -> bool:
    """SPEC 4: level 0 of both sides present and best bid < best ask."""
    if is_missing(row.bid_px[0], row.bid_sz[0]) or is_missing(row.ask_px[0], row.ask_sz[0]):
        return False
    return row.bid_px[0] < row.ask_px[0]


# ------------------------------------------------------------------------------------ features

FEATURES = ("mid", "spread_bps", "bid_vol", "ask_vol", "imbalance", "micro_price", "ofi")


def features(rows: list[Row], levels: int) -> list[dict]:
    """SPEC 4 features of every row: a dict per row with the FEATURES and ``valid``."""
    out = []
    prev: Optional[Row] = None  # the previous row if it was valid
    for i, row in enumerate(rows):
        if not is_valid(row):
            f = {name: NAN for name in FEATURES}
            f["valid"] = False
            out.append(f)
            prev = None
            continue
        n_levels = min(levels, len(row.bid_px))
        bb, ba = row.bid_px[0], row.ask_px[0]
        qb, qa = row.bid_sz[0], row.ask_sz[0]
        mid = (bb + ba) / 2
        spread_bps = (ba - bb) / mid * 1e4
        bid_vol = 0.0
        ask_vol = 0.0
        for k in range(n_levels):
            if not is_missing(row.bid_px[k], row.bid_sz[k]):
                bid_vol += row.bid_sz[k]
            if not is_missing(row.ask_px[k], row.ask_sz[k]):
                ask_vol += row.ask_sz[k]
        total = bid_vol + ask_vol
        imbalance = (bid_vol - ask_vol) / total if total != 0 else 0.0
        micro = (ba * bid_vol + bb * ask_vol) / total if total != 0 else mid
        # OFI: 0 on the first row, a RESYNC row and right after an invalid row (prev is None then)
        if i == 0 or (row.flags & FLAG_RESYNC) or prev is None:
            ofi = 0.0
        else:
            pbb, pba, pqb, pqa = prev.bid_px[0], prev.ask_px[0], prev.bid_sz[0], prev.ask_sz[0]
            ofi = ((qb if bb >= pbb else 0.0) - (pqb if bb <= pbb else 0.0)
                   - (qa if ba <= pba else 0.0) + (pqa if ba >= pba else 0.0))
        out.append({"mid": mid, "spread_bps": spread_bps, "bid_vol": bid_vol, "ask_vol": ask_vol,
                    "imbalance": imbalance, "micro_price": micro, "ofi": ofi, "valid": True})
        prev = row
    return out


def imbalance_signal(f: dict, imbalance_threshold: float = 0.15, max_spread_bps: float = 10.0,
                     confidence_base: float = 0.6, confidence_slope: float = 2.0,
                     confidence_cap: float = 0.95) -> tuple[int, float]:
    """SPEC 4 built-in signal and confidence of one row's features."""
    if not f["valid"]:
        return 0, 0.0
    imb, spread = f["imbalance"], f["spread_bps"]
    if imb > imbalance_threshold and spread < max_spread_bps:
        signal = 1
    elif imb < -imbalance_threshold and spread < max_spread_bps:
        signal = -1
    else:
        return 0, 0.0
    return signal, min(confidence_cap, confidence_base + confidence_slope * abs(imb))


# ----------------------------------------------------------------------------------- execution


@dataclass
class ExecParams:
    min_confidence: float = 0.6
    position_size: float = 0.01
    slippage_bps: float = 5.0
    fee_bps: float = 10.0
    fill_model: str = "fixed"
    latency_ms: float = 0.0
    cooldown_ms: float = 0.0
    max_hold_ms: Optional[float] = None
    flatten_on_neutral: bool = False


def fill_price(row: Row, qty: float, fill_model: str, slippage_bps: float) -> float:
    """SPEC 4: price of a fill of signed ``qty`` at ``row`` (before fees)."""
    s = slippage_bps / 1e4
    buy = qty > 0
    if fill_model == "fixed":
        return row.ask_px[0] * (1 + s) if buy else row.bid_px[0] * (1 - s)
    prices, sizes = (row.ask_px, row.ask_sz) if buy else (row.bid_px, row.bid_sz)
    left = abs(qty)
    cost = 0.0
    last_px = NAN
    for px, sz in zip(prices, sizes):
        if is_missing(px, sz):
            continue  # AMBIGUOUS 7
        take = min(left, sz)
        cost += take * px
        left -= take
        last_px = px
        if left <= 0:
            break
    if left > 0:
        cost += left * last_px  # beyond the visible depth: the last visible level's price
    vwap = cost / abs(qty)
    return vwap * (1 + s) if buy else vwap * (1 - s)


@dataclass
class Account:
    """Cash, position and the average-cost book of the open position."""

    fee_bps: float
    position: float = 0.0
    cash: float = 0.0
    avg_entry: float = NAN
    open_fees: float = 0.0  # opening fees of the open position not yet charged to a round trip
    opened_at: int = 0
    fills: list = field(default_factory=list)
    round_trips: list = field(default_factory=list)

    def fill(self, ts_order: int, ts_fill: int, qty: float, price: float) -> None:
        fee = abs(qty) * price * self.fee_bps / 1e4
        self.cash -= qty * price + fee
        pos = self.position
        if pos == 0 or (pos > 0) == (qty > 0):
            # opens or adds: average cost, whole fee is an opening fee
            new = pos + qty
            self.avg_entry = (abs(pos) * (self.avg_entry if pos != 0 else 0.0) + abs(qty) * price) / abs(new)
            self.open_fees += fee
            if pos == 0:
                self.opened_at = ts_fill
            self.position = new
        else:
            closed = min(abs(qty), abs(pos))
            side = 1 if pos > 0 else -1
            open_share = self.open_fees * closed / abs(pos)
            close_share = fee * closed / abs(qty)
            pnl = closed * (price - self.avg_entry) * side - open_share - close_share
            self.round_trips.append({"ts_open": self.opened_at, "ts_close": ts_fill, "side": side, "qty": closed,
                                     "entry_px": self.avg_entry, "exit_px": price,
                                     "fees": open_share + close_share, "pnl": pnl})
            self.open_fees -= open_share
            self.position = pos + qty
            if abs(qty) > abs(pos):  # flip: the rest opens a new position at the fill price
                self.avg_entry = price
                self.open_fees = fee * (abs(qty) - closed) / abs(qty)
                self.opened_at = ts_fill
            elif abs(qty) == abs(pos):
                self.position = 0.0
                self.avg_entry = NAN
                self.open_fees = 0.0
        self.fills.append({"ts_order": ts_order, "ts_fill": ts_fill, "qty": qty, "price": price, "fee": fee,
                           "position": self.position, "cash": self.cash})

    def unrealized(self, mid: float) -> float:
        """position × (mid − average entry) − the open position's unamortized opening fees."""
        if self.position == 0:
            return 0.0
        return self.position * (mid - self.avg_entry) - self.open_fees


@dataclass
class InstrumentResult:
    signals: list  # per row: features, signal, confidence, valid, ts_recv, seq
    fills: list
    equity: list  # per row: ts_recv, seq, position, cash, equity
    round_trips: list
    summary: dict
    account: Account


def execute(rows: list[Row], feats: list[dict], signals: list[tuple[int, float]], p: ExecParams) -> tuple[Account, list]:
    """SPEC 4 execution: returns the account (fills, round trips) and the equity rows."""
    acct = Account(p.fee_bps)
    latency = ms_to_ns(p.latency_ms)
    cooldown = ms_to_ns(p.cooldown_ms)
    max_hold = ms_to_ns(p.max_hold_ms)
    pending = None  # (ts_order, due, qty)
    last_order: Optional[int] = None
    equity = 0.0
    out = []
    for row, f, (signal, confidence) in zip(rows, feats, signals):
        if f["valid"]:
            ts = row.ts
            # 1. a pending order that is due fills here
            if pending is not None and pending[1] <= ts:
                ts_order, _, qty = pending
                acct.fill(ts_order, ts, qty, fill_price(row, qty, p.fill_model, p.slippage_bps))
                pending = None
            # 2. target
            if signal != 0 and confidence >= p.min_confidence:
                target = signal * p.position_size
            elif signal == 0 and p.flatten_on_neutral:
                target = 0.0
            else:
                target = acct.position
            if (max_hold is not None and acct.position != 0 and ts - acct.opened_at >= max_hold
                    and target == acct.position):
                target = 0.0
            # 3. order
            if pending is None and target != acct.position and (last_order is None or ts - last_order >= cooldown):
                qty = target - acct.position
                last_order = ts
                if latency == 0:
                    acct.fill(ts, ts, qty, fill_price(row, qty, p.fill_model, p.slippage_bps))
                else:
                    pending = (ts, ts + latency, qty)
            equity = acct.cash + acct.position * f["mid"]
        out.append({"ts_recv": row.ts, "seq": row.seq, "position": acct.position, "cash": acct.cash,
                    "equity": equity})
    return acct, out


# ------------------------------------------------------------------------------------- summary


def max_drawdown(equities: list[float]) -> float:
    if not equities:
        return 0.0
    peak = equities[0]
    worst = 0.0
    for e in equities:
        peak = max(peak, e)
        worst = max(worst, peak - e)
    return worst


def sharpe(ts: list[int], equities: list[float]) -> float:
    last_of_minute: dict[int, float] = {}
    for t, e in zip(ts, equities):
        last_of_minute[t // NS_PER_MINUTE] = e  # rows are in time order: the last one wins
    values = [last_of_minute[m] for m in sorted(last_of_minute)]
    changes = [b - a for a, b in zip(values, values[1:])]
    if len(changes) < 2:
        return NAN
    mean = sum(changes) / len(changes)
    var = sum((c - mean) ** 2 for c in changes) / (len(changes) - 1)
    std = math.sqrt(var)
    if std == 0:
        return NAN
    return mean / std * math.sqrt(525600)


def hit_rates(rows: list[Row], feats: list[dict], signals: list[tuple[int, float]]) -> dict:
    valid_ts = [r.ts for r, f in zip(rows, feats) if f["valid"]]
    valid_mid = [f["mid"] for f in feats if f["valid"]]
    out = {}
    for name, h in HORIZONS:
        counted = hits = 0
        if rows:
            last_ts = rows[-1].ts
            for row, f, (signal, _) in zip(rows, feats, signals):
                if signal == 0 or row.ts > last_ts - h:
                    continue
                j = bisect.bisect_right(valid_ts, row.ts + h) - 1
                move = valid_mid[j] - f["mid"]
                if abs(move) <= 1e-9 * f["mid"]:
                    continue
                counted += 1
                hits += (move > 0) == (signal > 0)
        out[name] = hits / counted if counted else NAN
    return out


def summarize(rows: list[Row], feats: list[dict], signals: list, acct: Account, equity: list[dict]) -> dict:
    eq = [e["equity"] for e in equity]
    rts = acct.round_trips
    realized = sum(rt["pnl"] for rt in rts)
    return {
        "rows": len(rows),
        "invalid_rows": sum(1 for f in feats if not f["valid"]),
        "total_pnl": eq[-1] if eq else 0.0,
        "realized_pnl": realized,
        "fees": sum(fl["fee"] for fl in acct.fills),
        "fills": len(acct.fills),
        "round_trips": len(rts),
        "win_rate": sum(1 for rt in rts if rt["pnl"] > 0) / len(rts) if rts else NAN,
        "avg_pnl_per_round_trip": realized / len(rts) if rts else NAN,
        "max_drawdown": max_drawdown(eq),
        "sharpe": sharpe([r.ts for r in rows], eq),
        "hit_rate": hit_rates(rows, feats, signals),
    }


def run_instrument(rows: list[Row], levels: int = 20, signal_params: Optional[dict] = None,
                   exec_params: Optional[ExecParams] = None) -> InstrumentResult:
    """SPEC 4 end to end for one instrument's rows (already in range and in order)."""
    p = exec_params or ExecParams()
    feats = features(rows, levels)
    sigs = [imbalance_signal(f, **(signal_params or {})) for f in feats]
    acct, equity = execute(rows, feats, sigs, p)
    signals = [{"ts_recv": r.ts, "seq": r.seq, **{k: f[k] for k in FEATURES}, "signal": s, "confidence": c,
                "valid": f["valid"]} for r, f, (s, c) in zip(rows, feats, sigs)]
    return InstrumentResult(signals, acct.fills, equity, acct.round_trips,
                            summarize(rows, feats, sigs, acct, equity), acct)


def run_instrument_cfg(rows: list[Row], cfg: Any) -> InstrumentResult:
    """:func:`run_instrument` with the ``features``, ``signal`` and ``execution`` values of a config."""
    sig = cfg.signal
    signal_params = {k: getattr(sig, k) for k in ("imbalance_threshold", "max_spread_bps", "confidence_base",
                                                   "confidence_slope", "confidence_cap")}
    p = ExecParams(**{k: getattr(cfg.execution, k) for k in ExecParams.__dataclass_fields__})
    return run_instrument(rows, cfg.features.levels, signal_params, p)


# ----------------------------------------------------------------------------------- arbitrage


def profit_walk(buy: Row, sell: Row, f_buy: float, f_sell: float) -> float:
    """SPEC 5: walk X's asks and Y's bids from level 0 while each level pair nets > 0."""
    def visible(prices, sizes):
        out = []  # AMBIGUOUS 12: the walk ends at the first missing level of either book
        for px, sz in zip(prices, sizes):
            if is_missing(px, sz):
                break
            out.append((px, sz))
        return out

    asks = visible(buy.ask_px, buy.ask_sz)
    bids = visible(sell.bid_px, sell.bid_sz)
    i = j = 0
    ask_left = asks[0][1]
    bid_left = bids[0][1]
    profit = 0.0
    while True:
        edge = bids[j][0] * (1 - f_sell) - asks[i][0] * (1 + f_buy)
        if not edge > 0:
            break
        chunk = min(ask_left, bid_left)
        profit += chunk * edge
        ask_left -= chunk
        bid_left -= chunk
        if ask_left <= 0:
            i += 1
            if i == len(asks):
                break
            ask_left = asks[i][1]
        if bid_left <= 0:
            j += 1
            if j == len(bids):
                break
            bid_left = bids[j][1]
    return profit


def arbitrage(rows_a: list[Row], rows_b: list[Row], a: tuple[str, str], b: tuple[str, str],
              fee_a_bps: float = 10.0, fee_b_bps: float = 10.0, slippage_bps: float = 0.0,
              max_staleness_ms: float = 1000.0) -> list[dict]:
    """SPEC 5 episodes of one pair; ``a``/``b`` are (venue, symbol). Episodes in the order they end."""
    staleness = ms_to_ns(max_staleness_ms)
    valid_a = [r for r in rows_a if is_valid(r)]
    valid_b = [r for r in rows_b if is_valid(r)]
    ts_a = [r.ts for r in valid_a]
    ts_b = [r.ts for r in valid_b]
    timeline = sorted(set(ts_a) | set(ts_b))
    f_a = (fee_a_bps + slippage_bps) / 1e4
    f_b = (fee_b_bps + slippage_bps) / 1e4
    # direction 0: buy on A, sell on B; direction 1: buy on B, sell on A
    names = [(a, b), (b, a)]
    open_eps: list[Optional[dict]] = [None, None]
    episodes: list[dict] = []

    def close(d: int) -> None:
        ep = open_eps[d]
        if ep is None:
            return
        (bv, bs), (sv, ss) = names[d]
        episodes.append({"buy_venue": bv, "buy_symbol": bs, "sell_venue": sv, "sell_symbol": ss,
                         "ts_start": ep["ts_start"], "ts_end": ep["ts_end"],
                         "duration_ms": (ep["ts_end"] - ep["ts_start"]) / 1e6, "points": len(ep["net"]),
                         "max_net_bps": max(ep["net"]), "mean_net_bps": sum(ep["net"]) / len(ep["net"]),
                         "max_size_top": max(ep["size"]), "max_profit_walk": max(ep["profit"])})
        open_eps[d] = None

    for t in timeline:
        ia = bisect.bisect_right(ts_a, t) - 1
        ib = bisect.bisect_right(ts_b, t) - 1
        if ia < 0 or ib < 0 or t - ts_a[ia] > staleness or t - ts_b[ib] > staleness:
            close(0)
            close(1)
            continue
        ra, rb = valid_a[ia], valid_b[ib]
        for d, (x, y, fx, fy) in enumerate(((ra, rb, f_a, f_b), (rb, ra, f_b, f_a))):
            ask_x, bid_y = x.ask_px[0], y.bid_px[0]
            net = (bid_y * (1 - fy) - ask_x * (1 + fx)) / ask_x * 1e4
            if net > 0:
                size_top = min(x.ask_sz[0], y.bid_sz[0])
                profit = profit_walk(x, y, fx, fy)
                ep = open_eps[d]
                if ep is None:
                    ep = open_eps[d] = {"ts_start": t, "net": [], "size": [], "profit": []}
                ep["ts_end"] = t
                ep["net"].append(net)
                ep["size"].append(size_top)
                ep["profit"].append(profit)
            else:
                close(d)
    close(0)
    close(1)
    return episodes


def top_episodes(episodes: Iterable[dict], n: int = 5) -> list[dict]:
    """The top ``n`` by max_net_bps, ties to the earlier ts_start."""
    return sorted(episodes, key=lambda e: (-e["max_net_bps"], e["ts_start"]))[:n]


# ------------------------------------------------------------------------------------ backtest


def reference_backtest(cfg: Any, books: dict[str, Any]) -> dict:
    """SPEC 4 + 5 for a whole config: ``books`` maps ``venue:SYMBOL`` to its book arrays.

    Returns ``{"instruments": {name: InstrumentResult}, "arbitrage": [episodes], "summary": {...}}``
    where ``summary`` has the SPEC 6 ``instruments`` and ``arbitrage`` parts (NaN, not null).
    """
    rows = {name: rows_of(book, cfg.start_ns, cfg.end_ns) for name, book in books.items()}
    results = {name: run_instrument_cfg(rows[name], cfg) for name in cfg.instruments}
    episodes = []
    arb = cfg.arbitrage
    for name_a, name_b in arb.pairs:
        va, sa = name_a.split(":")
        vb, sb = name_b.split(":")
        episodes += arbitrage(rows.get(name_a, []), rows.get(name_b, []), (va, sa), (vb, sb),
                              arb.fee_bps.get(va, 10.0), arb.fee_bps.get(vb, 10.0), arb.slippage_bps,
                              arb.max_staleness_ms)
    summary = {
        "instruments": {name: r.summary for name, r in results.items()},
        "arbitrage": {"episodes": len(episodes), "total_duration_ms": float(sum(e["duration_ms"] for e in episodes)),
                      "top": top_episodes(episodes)},
    }
    return {"instruments": results, "arbitrage": episodes, "summary": summary}


def as_columns(records: list[dict], names: Iterable[str]) -> dict[str, np.ndarray]:
    """Records to numpy columns (handy for comparing with an Arrow table)."""
    return {n: np.array([r[n] for r in records]) for n in names}
