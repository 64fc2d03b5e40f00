"""Smoothed book imbalance with hysteresis: enter on a strong imbalance, hold until it fades.

The imbalance of the first ``features.levels`` levels is smoothed (an exponential moving average
over rows). A flat book enters when it passes ``enter``; an open position keeps its signal while
the imbalance stays beyond ``exit`` on its side, then the rule goes neutral (pair it with
``execution.flatten_on_neutral: true`` so neutral closes the position). Uses the ``position``
argument, which the built-in rule ignores.
"""

from numba import njit

from qfreplay.engine.user import IMBALANCE, SPREAD_BPS

PARAMS = {"alpha": 0.02, "enter": 0.5, "exit": 0.0, "max_spread_bps": 10.0, "confidence": 0.8}
ALPHA, ENTER, EXIT, MAX_SPREAD_BPS, CONFIDENCE = range(5)

STATE_SIZE = 2
STARTED, SMOOTH = range(2)  # 1 once a row was seen, smoothed imbalance


@njit(cache=True)
def imbalance_hysteresis(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
    imb = feats[IMBALANCE]
    if state[STARTED] == 0.0:
        state[STARTED] = 1.0
        state[SMOOTH] = imb
    else:
        state[SMOOTH] += params[ALPHA] * (imb - state[SMOOTH])
    smooth = state[SMOOTH]
    conf = params[CONFIDENCE]
    if position > 0.0 and smooth > params[EXIT]:
        return 1, conf
    if position < 0.0 and smooth < -params[EXIT]:
        return -1, conf
    if feats[SPREAD_BPS] < params[MAX_SPREAD_BPS]:
        if smooth > params[ENTER]:
            return 1, conf
        if smooth < -params[ENTER]:
            return -1, conf
    return 0, 0.0
