"""Micro-price momentum: follow the micro-price when it runs away from its own recent average.

The micro-price weighs the best bid and ask by the opposite side's resting volume, so it moves
before the mid does. The rule keeps an exponential moving average of it with a time decay
(half-life ``halflife_ms``) and goes long while the micro-price is more than ``threshold_bps``
above that average, short while it is as far below.
"""

from numba import njit

from qfreplay.engine.user import MICRO_PRICE, SPREAD_BPS

PARAMS = {"halflife_ms": 2000.0, "threshold_bps": 5.0, "max_spread_bps": 10.0, "confidence": 0.8}
HALFLIFE_MS, THRESHOLD_BPS, MAX_SPREAD_BPS, CONFIDENCE = range(4)  # positions in PARAMS

STATE_SIZE = 2
LAST_TS, AVERAGE = range(2)  # ts of the last row seen (0: none yet), moving average of the micro-price


@njit(cache=True)
def micro_momentum(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
    micro = feats[MICRO_PRICE]
    if state[LAST_TS] == 0.0:
        state[AVERAGE] = micro
    else:
        keep = 0.5 ** ((ts - state[LAST_TS]) / 1e6 / params[HALFLIFE_MS])
        state[AVERAGE] = keep * state[AVERAGE] + (1.0 - keep) * micro
    state[LAST_TS] = ts
    momentum_bps = (micro - state[AVERAGE]) / state[AVERAGE] * 1e4
    if feats[SPREAD_BPS] >= params[MAX_SPREAD_BPS]:
        return 0, 0.0
    if momentum_bps > params[THRESHOLD_BPS]:
        return 1, params[CONFIDENCE]
    if momentum_bps < -params[THRESHOLD_BPS]:
        return -1, params[CONFIDENCE]
    return 0, 0.0
