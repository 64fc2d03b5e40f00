"""Numba kernels of SPEC sections 4 and 5: plain ``@njit(cache=True)`` functions over preallocated arrays.

No I/O, no object mode, no Python objects. Every kernel takes its state as small arrays that the
caller keeps between calls, so a range processed in chunks (or one live row at a time) gives the
same result as one call over everything.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

# Columns of the per-row feature matrix ``feats`` (n, N_FEATURES).
F_MID, F_SPREAD_BPS, F_BID_VOL, F_ASK_VOL, F_IMBALANCE, F_MICRO_PRICE, F_OFI = range(7)
FEATURE_NAMES = ("mid", "spread_bps", "bid_vol", "ask_vol", "imbalance", "micro_price", "ofi")
N_FEATURES = 7

# Feature state (float64): has a previous row, previous row valid, its bb, ba, qb, qa.
FS_HAS_PREV, FS_PREV_VALID, FS_BB, FS_BA, FS_QB, FS_QA = range(6)
FEATURE_STATE_SIZE = 6

# Execution parameters (float64): see ``execution_params``.
XP_MIN_CONF, XP_SIZE, XP_SLIP, XP_FEE, XP_BOOK_FILL, XP_FLATTEN = range(6)
XP_SIZE_ = 6
# Execution int parameters (int64): latency, cooldown, max hold (ns; max hold < 0 = none).
XI_LATENCY, XI_COOLDOWN, XI_MAX_HOLD = range(3)

# Execution int state.
(IS_HAS_PENDING, IS_PENDING_DUE, IS_PENDING_TS, IS_HAS_LAST_ORDER, IS_LAST_ORDER_TS, IS_OPEN_TS,
 IS_HAS_MINUTE, IS_MINUTE, IS_ROWS, IS_INVALID, IS_FILLS, IS_ROUND_TRIPS, IS_WINS, IS_HAS_PEAK) = range(14)
INT_STATE_SIZE = 14
# Execution float state.
(FS_POSITION, FS_CASH, FS_PENDING_QTY, FS_AVG_ENTRY, FS_OPEN_FEES, FS_EQUITY, FS_PEAK, FS_MAX_DD,
 FS_MINUTE_EQ, FS_HAS_PREV_MINUTE, FS_PREV_MINUTE_EQ, FS_W_N, FS_W_MEAN, FS_W_M2, FS_FEES, FS_REALIZED) = range(16)
FLOAT_STATE_SIZE = 16

NS_PER_MINUTE = 60_000_000_000

_F1 = types.float64[::1]
#: The strategy call as every run makes it: (ts, feats, bid_px, bid_sz, ask_px, ask_sz, position,
#: params, state) -> (signal, confidence). The book levels are read-only (zero-copy from Arrow in a
#: backtest; live marks its rows read-only too), so one compiled variant serves every run.
_LEVELS = types.Array(types.float64, 1, "C", readonly=True)
STRATEGY_SIG = types.Tuple((types.int64, types.float64))(
    types.int64, _F1, _LEVELS, _LEVELS, _LEVELS, _LEVELS, types.float64, _F1, _F1)
# The strategy reaches the execution kernel as a dispatcher argument, so numba specializes (and
# inlines) it per strategy. Passing it as a first-class FunctionType instead would make one cached
# kernel serve all strategies, but measured twice the per-row cost through the indirect call.


@njit(cache=True)
def _missing(px, sz):
    """A level is missing when its price is NaN or its size is not > 0."""
    return math.isnan(px) or not (sz > 0.0)


@njit(cache=True, fastmath={"reassoc"})
def _depth(px, sz, L):
    """Sum of the sizes of the first L present levels (branch-free, so that it vectorizes)."""
    total = 0.0
    for j in range(L):
        s = sz[j]
        total += s if (s > 0.0 and px[j] == px[j]) else 0.0
    return total


@njit(cache=True, error_model="numpy")
def features_kernel(bid_px, bid_sz, ask_px, ask_sz, flags, levels, state, feats, valid):
    """Features of SPEC 4 for every row; invalid rows get NaN features and ``valid`` False."""
    n, nlev = bid_px.shape
    L = min(levels, nlev)
    for i in range(n):
        bb = bid_px[i, 0]
        ba = ask_px[i, 0]
        qb = bid_sz[i, 0]
        qa = ask_sz[i, 0]
        ok = not (_missing(bb, qb) or _missing(ba, qa)) and bb < ba
        if not ok:
            for k in range(N_FEATURES):
                feats[i, k] = np.nan
            valid[i] = False
        else:
            valid[i] = True
            mid = (bb + ba) / 2.0
            bv = _depth(bid_px[i], bid_sz[i], L)
            av = _depth(ask_px[i], ask_sz[i], L)
            tot = bv + av
            feats[i, F_MID] = mid
            feats[i, F_SPREAD_BPS] = (ba - bb) / mid * 1e4
            feats[i, F_BID_VOL] = bv
            feats[i, F_ASK_VOL] = av
            if tot > 0.0:
                feats[i, F_IMBALANCE] = (bv - av) / tot
                feats[i, F_MICRO_PRICE] = (ba * bv + bb * av) / tot
            else:
                feats[i, F_IMBALANCE] = 0.0
                feats[i, F_MICRO_PRICE] = mid
            if state[FS_HAS_PREV] == 0.0 or state[FS_PREV_VALID] == 0.0 or (flags[i] & 1) != 0:
                feats[i, F_OFI] = 0.0
            else:
                pbb = state[FS_BB]
                pba = state[FS_BA]
                e = 0.0
                if bb >= pbb:
                    e += qb
                if bb <= pbb:
                    e -= state[FS_QB]
                if ba <= pba:
                    e -= qa
                if ba >= pba:
                    e += state[FS_QA]
                feats[i, F_OFI] = e
            state[FS_BB] = bb
            state[FS_BA] = ba
            state[FS_QB] = qb
            state[FS_QA] = qa
        state[FS_HAS_PREV] = 1.0
        state[FS_PREV_VALID] = 1.0 if ok else 0.0


@njit(cache=True)
def imbalance_strategy(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
    """The original dashboard's rule: params = [θ, max_spread_bps, base, slope, cap]."""
    imb = feats[F_IMBALANCE]
    spread = feats[F_SPREAD_BPS]
    theta = params[0]
    if spread < params[1]:
        if imb > theta:
            return 1, min(params[4], params[2] + params[3] * abs(imb))
        if imb < -theta:
            return -1, min(params[4], params[2] + params[3] * abs(imb))
    return 0, 0.0


@njit(cache=True, inline="always")
def _walk(px, sz, i, want):
    """Volume-weighted price of ``want`` taken from row i's levels; beyond the visible depth at the last one."""
    left = want
    cost = 0.0
    last = np.nan
    for j in range(px.shape[1]):
        p = px[i, j]
        s = sz[i, j]
        if math.isnan(p) or not (s > 0.0):
            continue
        take = min(left, s)
        cost += take * p
        left -= take
        last = p
        if left <= 0.0:
            break
    if left > 0.0:
        cost += left * last
    return cost / want


@njit(cache=True, inline="always")
def fill_price(q, bid_px, bid_sz, ask_px, ask_sz, i, book_fill, slip):
    """Price of a fill of signed quantity ``q`` against book row i (fixed: touch; book: walk all levels).

    Takes the 2-D level arrays and a row index rather than row views: a view per call costs
    reference counting that dominated the cost of a fill.
    """
    if q > 0:
        base = _walk(ask_px, ask_sz, i, q) if book_fill else ask_px[i, 0]
        return base * (1.0 + slip)
    base = _walk(bid_px, bid_sz, i, -q) if book_fill else bid_px[i, 0]
    return base * (1.0 - slip)


@njit(cache=True, inline="always")
def _apply_fill(q, price, fee_bps, ts_order, ts_fill, ist, fst, f_ts, f_vals, rt_ts, rt_side, rt_vals):
    """Book a fill: cash, position, average-cost round trips; append to the fill and round-trip buffers."""
    fee = abs(q) * price * fee_bps / 1e4
    pos = fst[FS_POSITION]
    fst[FS_CASH] -= q * price + fee
    fst[FS_FEES] += fee
    if pos == 0.0 or (pos > 0.0) == (q > 0.0):
        # opening or adding
        apos = abs(pos)
        fst[FS_AVG_ENTRY] = (apos * fst[FS_AVG_ENTRY] + abs(q) * price) / (apos + abs(q))
        fst[FS_OPEN_FEES] += fee
        if pos == 0.0:
            ist[IS_OPEN_TS] = ts_fill
    else:
        apos = abs(pos)
        aq = abs(q)
        closed = min(aq, apos)
        direction = 1.0 if pos > 0.0 else -1.0
        open_share = fst[FS_OPEN_FEES] * closed / apos
        close_share = fee * closed / aq
        pnl = closed * (price - fst[FS_AVG_ENTRY]) * direction - open_share - close_share
        k = ist[IS_ROUND_TRIPS]
        rt_ts[k, 0] = ist[IS_OPEN_TS]
        rt_ts[k, 1] = ts_fill
        rt_side[k] = 1 if pos > 0.0 else -1
        rt_vals[k, 0] = closed
        rt_vals[k, 1] = fst[FS_AVG_ENTRY]
        rt_vals[k, 2] = price
        rt_vals[k, 3] = open_share + close_share
        rt_vals[k, 4] = pnl
        ist[IS_ROUND_TRIPS] = k + 1
        if pnl > 0.0:
            ist[IS_WINS] += 1
        fst[FS_REALIZED] += pnl
        fst[FS_OPEN_FEES] -= open_share
        if aq > apos:  # flip: the rest opens a new position at the fill price
            fst[FS_AVG_ENTRY] = price
            fst[FS_OPEN_FEES] = fee * (aq - apos) / aq
            ist[IS_OPEN_TS] = ts_fill
        elif aq == apos:
            fst[FS_AVG_ENTRY] = 0.0
            fst[FS_OPEN_FEES] = 0.0
    fst[FS_POSITION] = pos + q
    k = ist[IS_FILLS]
    f_ts[k, 0] = ts_order
    f_ts[k, 1] = ts_fill
    f_vals[k, 0] = q
    f_vals[k, 1] = price
    f_vals[k, 2] = fee
    f_vals[k, 3] = fst[FS_POSITION]
    f_vals[k, 4] = fst[FS_CASH]
    ist[IS_FILLS] = k + 1


@njit(cache=True, inline="always")
def _mark(ts, equity, ist, fst):
    """Drawdown and per-minute P&L bookkeeping for one row's equity."""
    if ist[IS_HAS_PEAK] == 0:
        ist[IS_HAS_PEAK] = 1
        fst[FS_PEAK] = equity
    elif equity > fst[FS_PEAK]:
        fst[FS_PEAK] = equity
    dd = fst[FS_PEAK] - equity
    if dd > fst[FS_MAX_DD]:
        fst[FS_MAX_DD] = dd
    # IS_MINUTE holds the start of the current UTC minute; divide only when a row leaves it
    if ist[IS_HAS_MINUTE] == 0 or ts < ist[IS_MINUTE] or ts - ist[IS_MINUTE] >= NS_PER_MINUTE:
        if ist[IS_HAS_MINUTE] != 0:
            close_minute(fst)
        ist[IS_HAS_MINUTE] = 1
        ist[IS_MINUTE] = (ts // NS_PER_MINUTE) * NS_PER_MINUTE
    fst[FS_MINUTE_EQ] = equity


@njit(cache=True, inline="always")
def close_minute(fst):
    """Close the current UTC minute: its last equity's change from the previous one into Welford sums."""
    eq = fst[FS_MINUTE_EQ]
    if fst[FS_HAS_PREV_MINUTE] != 0.0:
        x = eq - fst[FS_PREV_MINUTE_EQ]
        n = fst[FS_W_N] + 1.0
        d = x - fst[FS_W_MEAN]
        fst[FS_W_MEAN] += d / n
        fst[FS_W_M2] += d * (x - fst[FS_W_MEAN])
        fst[FS_W_N] = n
    fst[FS_HAS_PREV_MINUTE] = 1.0
    fst[FS_PREV_MINUTE_EQ] = eq


# Not cached on disk here: numba keys this kernel's specializations by the strategy dispatcher
# object, so a cached one never matches in another process, and past 128 index entries saving any
# new one fails ("underlying object has vanished"). Runs call ``specialize.execution_kernel_for``,
# which compiles this same source with the strategy bound as a global, and that is cached.
@njit(error_model="numpy")
def execution_kernel(strategy, sparams, sstate, ts, feats, valid, bid_px, bid_sz, ask_px, ask_sz,
                     xp, xi, ist, fst, out_signal, out_conf, out_pos, out_cash, out_equity,
                     f_ts, f_vals, rt_ts, rt_side, rt_vals):
    """Signals, orders, fills and mark-to-market of SPEC 4 over rows; fills/round trips appended from ist counters."""
    n = ts.shape[0]
    min_conf = xp[XP_MIN_CONF]
    size = xp[XP_SIZE]
    slip = xp[XP_SLIP] / 1e4
    fee_bps = xp[XP_FEE]
    book_fill = xp[XP_BOOK_FILL] != 0.0
    flatten = xp[XP_FLATTEN] != 0.0
    latency = xi[XI_LATENCY]
    cooldown = xi[XI_COOLDOWN]
    max_hold = xi[XI_MAX_HOLD]
    for i in range(n):
        t = ts[i]
        ist[IS_ROWS] += 1
        if not valid[i]:
            ist[IS_INVALID] += 1
            out_signal[i] = 0
            out_conf[i] = 0.0
        else:
            if ist[IS_HAS_PENDING] != 0 and ist[IS_PENDING_DUE] <= t:
                q = fst[FS_PENDING_QTY]
                p = fill_price(q, bid_px, bid_sz, ask_px, ask_sz, i, book_fill, slip)
                _apply_fill(q, p, fee_bps, ist[IS_PENDING_TS], t, ist, fst, f_ts, f_vals, rt_ts, rt_side, rt_vals)
                ist[IS_HAS_PENDING] = 0
            raw, conf = strategy(t, feats[i], bid_px[i], bid_sz[i], ask_px[i], ask_sz[i], fst[FS_POSITION], sparams, sstate)
            sig = 1 if raw > 0 else (-1 if raw < 0 else 0)
            conf = float(conf)
            out_signal[i] = sig
            out_conf[i] = conf
            pos = fst[FS_POSITION]
            if sig != 0 and conf >= min_conf:
                target = sig * size
            elif sig == 0 and flatten:
                target = 0.0
            else:
                target = pos
            if max_hold >= 0 and pos != 0.0 and t - ist[IS_OPEN_TS] >= max_hold and target == pos:
                target = 0.0
            if (ist[IS_HAS_PENDING] == 0 and target != pos
                    and (ist[IS_HAS_LAST_ORDER] == 0 or t - ist[IS_LAST_ORDER_TS] >= cooldown)):
                q = target - pos
                ist[IS_HAS_LAST_ORDER] = 1
                ist[IS_LAST_ORDER_TS] = t
                if latency <= 0:
                    p = fill_price(q, bid_px, bid_sz, ask_px, ask_sz, i, book_fill, slip)
                    _apply_fill(q, p, fee_bps, t, t, ist, fst, f_ts, f_vals, rt_ts, rt_side, rt_vals)
                else:
                    ist[IS_HAS_PENDING] = 1
                    ist[IS_PENDING_DUE] = t + latency
                    ist[IS_PENDING_TS] = t
                    fst[FS_PENDING_QTY] = q
            fst[FS_EQUITY] = fst[FS_CASH] + fst[FS_POSITION] * feats[i, F_MID]
        out_pos[i] = fst[FS_POSITION]
        out_cash[i] = fst[FS_CASH]
        out_equity[i] = fst[FS_EQUITY]
        _mark(t, fst[FS_EQUITY], ist, fst)


@njit(cache=True)
def hit_rate_kernel(ts, mid, signal, start, horizon, final, counts):
    """Count decided signals from ``start`` on (SPEC 4 hit rate); returns the first undecided index.

    A signal at t is decided once a row later than t + h is seen (or, with ``final``, at the end,
    where signals later than the last row's ts − h are left out). ``mid`` is NaN on invalid rows.
    counts[0] += counted, counts[1] += hits.
    """
    n = ts.shape[0]
    j = start - 1
    last_valid = np.nan
    for i in range(start, n):
        s = signal[i]
        if s == 0:
            continue
        target = ts[i] + horizon
        if j < i:
            j = i
            last_valid = mid[i]
        while j + 1 < n and ts[j + 1] <= target:
            j += 1
            if not math.isnan(mid[j]):
                last_valid = mid[j]
        if j + 1 >= n:
            if not final:
                return i
            if target > ts[n - 1]:
                continue
        move = last_valid - mid[i]
        if abs(move) > 1e-9 * mid[i]:
            counts[0] += 1
            if (move > 0.0 and s > 0) or (move < 0.0 and s < 0):
                counts[1] += 1
    return n


# ----------------------------------------------------------------------------- arbitrage (SPEC 5)

# Arbitrage int state: has row of A, of B, their ts, pending point flag and time, then per direction
# (2): in episode, ts_start, ts_end, points.
AI_HAS, AI_TS, AI_PENDING, AI_PENDING_TS, AI_EP = 0, 2, 4, 5, 6
ARB_INT_STATE_SIZE = AI_EP + 2 * 4
# Arbitrage float state per direction (2): max_net, sum_net, max_size, max_profit.
ARB_FLOAT_STATE_SIZE = 2 * 4


@njit(cache=True)
def profit_walk(ask_px, ask_sz, bid_px, bid_sz, fx, fy):
    """Profit of buying X's asks and selling Y's bids level by level while each chunk nets > 0."""
    nx = ask_px.shape[0]
    ny = bid_px.shape[0]
    ix = 0
    iy = 0
    if _missing(ask_px[0], ask_sz[0]) or _missing(bid_px[0], bid_sz[0]):
        return 0.0
    left_x = ask_sz[0]
    left_y = bid_sz[0]
    profit = 0.0
    while True:
        edge = bid_px[iy] * (1.0 - fy) - ask_px[ix] * (1.0 + fx)
        if not (edge > 0.0):
            break
        chunk = min(left_x, left_y)
        profit += chunk * edge
        left_x -= chunk
        left_y -= chunk
        if left_x <= 0.0:
            ix += 1
            if ix >= nx or _missing(ask_px[ix], ask_sz[ix]):
                break
            left_x = ask_sz[ix]
        if left_y <= 0.0:
            iy += 1
            if iy >= ny or _missing(bid_px[iy], bid_sz[iy]):
                break
            left_y = bid_sz[iy]
    return profit


@njit(cache=True)
def _close_episode(d, ai, af, ep_ts, ep_vals, ep_dir, count):
    base = AI_EP + 4 * d
    if ai[base] == 0:
        return count
    ep_ts[count, 0] = ai[base + 1]
    ep_ts[count, 1] = ai[base + 2]
    ep_dir[count] = d
    pts = ai[base + 3]
    ep_vals[count, 0] = pts
    ep_vals[count, 1] = af[4 * d]
    ep_vals[count, 2] = af[4 * d + 1] / pts
    ep_vals[count, 3] = af[4 * d + 2]
    ep_vals[count, 4] = af[4 * d + 3]
    ai[base] = 0
    return count + 1


@njit(cache=True)
def _arb_point(t, books, ai, af, fees, stale, ep_ts, ep_vals, ep_dir, count):
    """Evaluate one timeline point t with the last valid rows of A and B (books[side, {bpx,bsz,apx,asz}, level])."""
    fresh = (ai[AI_HAS] != 0 and ai[AI_HAS + 1] != 0
             and t - ai[AI_TS] <= stale and t - ai[AI_TS + 1] <= stale)
    for d in range(2):
        if not fresh:
            count = _close_episode(d, ai, af, ep_ts, ep_vals, ep_dir, count)
            continue
        x = d  # d = 0: buy A sell B; d = 1: buy B sell A
        y = 1 - d
        fx = fees[x]
        fy = fees[y]
        ask_x = books[x, 2, 0]
        bid_y = books[y, 0, 0]
        net = (bid_y * (1.0 - fy) - ask_x * (1.0 + fx)) / ask_x * 1e4
        if not (net > 0.0):
            count = _close_episode(d, ai, af, ep_ts, ep_vals, ep_dir, count)
            continue
        size_top = min(books[x, 3, 0], books[y, 1, 0])
        walk = profit_walk(books[x, 2], books[x, 3], books[y, 0], books[y, 1], fx, fy)
        base = AI_EP + 4 * d
        if ai[base] == 0:
            ai[base] = 1
            ai[base + 1] = t
            ai[base + 3] = 0
            af[4 * d] = net
            af[4 * d + 1] = 0.0
            af[4 * d + 2] = size_top
            af[4 * d + 3] = walk
        else:
            af[4 * d] = max(af[4 * d], net)
            af[4 * d + 2] = max(af[4 * d + 2], size_top)
            af[4 * d + 3] = max(af[4 * d + 3], walk)
        ai[base + 2] = t
        ai[base + 3] += 1
        af[4 * d + 1] += net
    return count


@njit(cache=True)
def arbitrage_kernel(ts, side, bid_px, bid_sz, ask_px, ask_sz, fees, stale, final, books, ai, af,
                     ep_ts, ep_vals, ep_dir):
    """Scan the merged valid rows of A (side 0) and B (side 1) in time order; returns episodes closed.

    A point is evaluated once a later row arrives (or at the end with ``final``), so rows that share
    a time are one point whatever chunk or live call they came in.
    """
    n = ts.shape[0]
    nlev = bid_px.shape[1]
    count = 0
    for i in range(n):
        t = ts[i]
        if ai[AI_PENDING] != 0 and t > ai[AI_PENDING_TS]:
            count = _arb_point(ai[AI_PENDING_TS], books, ai, af, fees, stale, ep_ts, ep_vals, ep_dir, count)
        s = side[i]
        for j in range(nlev):
            books[s, 0, j] = bid_px[i, j]
            books[s, 1, j] = bid_sz[i, j]
            books[s, 2, j] = ask_px[i, j]
            books[s, 3, j] = ask_sz[i, j]
        ai[AI_HAS + s] = 1
        ai[AI_TS + s] = t
        ai[AI_PENDING] = 1
        ai[AI_PENDING_TS] = t
    if final:
        if ai[AI_PENDING] != 0:
            count = _arb_point(ai[AI_PENDING_TS], books, ai, af, fees, stale, ep_ts, ep_vals, ep_dir, count)
            ai[AI_PENDING] = 0
        for d in range(2):
            count = _close_episode(d, ai, af, ep_ts, ep_vals, ep_dir, count)
    return count
