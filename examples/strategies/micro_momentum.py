"""Micro-price momentum: trade the way the micro-price leans from the mid, smoothed over time.

The micro-price sits nearer the side with less resting volume, i.e. where the price is likely to
move next. Its lean from the mid in bps is smoothed with a time-based exponential decay (half-life
``halflife_ms``), and the rule goes long / short while the smoothed lean is beyond ``threshold_bps``.
"""

from numba import njit

from qfreplay.engine.user import MICRO_PRICE, MID, SPREAD_BPS

PARAMS = {"halflife_ms": 500.0, "threshold_bps": 0.3, "max_spread_bps": 10.0, "confidence": 0.8}
HALFLIFE_MS, THRESHOLD_BPS, MAX_SPREAD_BPS, CONFIDENCE = range(4)  # positions in PARAMS

STATE_SIZE = 2
LAST_TS, LEAN = range(2)  # ts of the last row seen (0: none yet), smoothed lean in bps


@njit(cache=True)
def micro_momentum(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
    lean = (feats[MICRO_PRICE] - feats[MID]) / feats[MID] * 1e4
    if state[LAST_TS] == 0.0:
        smooth = lean
    else:
        dt_ms = (ts - state[LAST_TS]) / 1e6
        keep = 0.5 ** (dt_ms / params[HALFLIFE_MS])
        smooth = keep * state[LEAN] + (1.0 - keep) * lean
    state[LAST_TS] = ts
    state[LEAN] = smooth
    if feats[SPREAD_BPS] >= params[MAX_SPREAD_BPS]:
        return 0, 0.0
    if smooth > params[THRESHOLD_BPS]:
        return 1, params[CONFIDENCE]
    if smooth < -params[THRESHOLD_BPS]:
        return -1, params[CONFIDENCE]
    return 0, 0.0
