"""Order-flow imbalance with a decay: trade the direction of recent net order flow at the touch.

Each row's OFI (SPEC section 4: size added to the bid or taken from the ask counts up, the
opposite counts down) is accumulated with an exponential time decay (half-life ``halflife_ms``)
and measured in units of the average resting depth (``bid_vol`` and ``ask_vol`` over the first
``features.levels`` levels). Above ``threshold`` the rule buys, below
``-threshold`` it sells; confidence rises with the excess, up to ``max_confidence``.
"""

from numba import njit

from qfreplay.engine.user import ASK_VOL, BID_VOL, OFI, SPREAD_BPS

PARAMS = {"halflife_ms": 10000.0, "threshold": 1.0, "max_spread_bps": 10.0, "confidence": 0.7, "max_confidence": 0.95}
HALFLIFE_MS, THRESHOLD, MAX_SPREAD_BPS, CONFIDENCE, MAX_CONFIDENCE = range(5)

STATE_SIZE = 2
LAST_TS, FLOW = range(2)  # ts of the last row seen (0: none yet), decayed OFI


@njit(cache=True)
def ofi_decay(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
    flow = feats[OFI]
    if state[LAST_TS] != 0.0:
        dt_ms = (ts - state[LAST_TS]) / 1e6
        flow += state[FLOW] * 0.5 ** (dt_ms / params[HALFLIFE_MS])
    state[LAST_TS] = ts
    state[FLOW] = flow
    depth = 0.5 * (feats[BID_VOL] + feats[ASK_VOL])
    pressure = flow / depth if depth > 0.0 else 0.0
    if feats[SPREAD_BPS] >= params[MAX_SPREAD_BPS] or abs(pressure) <= params[THRESHOLD]:
        return 0, 0.0
    confidence = min(params[MAX_CONFIDENCE], params[CONFIDENCE] + (abs(pressure) - params[THRESHOLD]))
    return (1 if pressure > 0.0 else -1), confidence
