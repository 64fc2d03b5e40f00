"""The numba decimal parser gives exactly float(text), or says it cannot (and msgspec takes over)."""

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from qfreplay.venues import binance
from qfreplay.venues.decimal import levels_from_json, lists_from_json

plain_decimal = st.builds(
    lambda whole, frac, zeros, dot: whole + ("." + frac + "0" * zeros if dot else ""),
    st.text("0123456789", min_size=0, max_size=12),
    st.text("0123456789", min_size=0, max_size=12),
    st.integers(0, 12),
    st.booleans(),
)
any_number = st.one_of(plain_decimal, st.sampled_from(["-1.5", "1e5", "1.2.3", "", ".", "abc", "12345678901234567890.5"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(any_number, any_number), max_size=4))
def test_levels_are_float_of_the_text_or_refused(pairs):
    raw = orjson.dumps([list(p) for p in pairs])

    got = levels_from_json(raw)

    if got is not None:
        px, sz = got
        assert px.tobytes() == np.array([float(p) for p, _ in pairs]).tobytes()
        assert sz.tobytes() == np.array([float(s) for _, s in pairs]).tobytes()
    else:
        assert any(not _plain(x) for p in pairs for x in p)


def _plain(text: str) -> bool:
    digits = text.replace(".", "", 1)
    return digits.isdigit() and digits.isascii() and len(digits) <= 15


def test_many_lists_in_one_call_match_one_by_one():
    lists = [b'[["61600.01000000","0.12300000"],["61599.99","1"]]', b"[]", b'[["0.5","2.25000000"]]']

    px, sz, starts = lists_from_json(lists)

    assert starts.tolist() == [0, 2, 2, 3]
    assert px.tolist() == [61600.01, 61599.99, 0.5] and sz.tolist() == [0.123, 1.0, 2.25]


def test_a_depth_run_splits_back_into_its_messages():
    frames = [
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":6,"b":[["10.5","1"]],"a":[]}}',
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":7,"u":7,"b":[],"a":[["11","2"],["12","0"]]}}',
    ]

    run = binance.depth_run([binance.depth_event(f) for f in frames])

    for i, frame in enumerate(frames):
        (one,) = binance.decode(frame)
        assert tuple(run.depth(i)[:5]) == tuple(one[:5])
        assert all(a.tolist() == b.tolist() for a, b in zip(run.depth(i)[5:], one[5:]))
