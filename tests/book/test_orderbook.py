"""The price-sorted order book against a plain dict reference."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qfreplay.book.orderbook import OrderBook


def _arr(levels):
    return np.array([p for p, _ in levels], float), np.array([s for _, s in levels], float)


def test_apply_sets_removes_and_orders_levels():
    book = OrderBook(levels=1, near_min=2)
    book.load(*_arr([(100.0, 1.0), (99.0, 2.0), (101.0, 3.0)]), *_arr([(102.0, 1.5), (104.0, 0.5)]))

    book.apply(*_arr([(99.0, 0.0), (100.5, 4.0)]), *_arr([(103.0, 2.0), (104.0, 0.0)]))
    bid_px, bid_sz, ask_px, ask_sz = book.top(3)

    assert bid_px.tolist() == [101.0, 100.5, 100.0]
    assert bid_sz.tolist() == [3.0, 4.0, 1.0]
    assert ask_px[:2].tolist() == [102.0, 103.0] and math.isnan(ask_px[2])
    assert ask_sz.tolist() == [1.5, 2.0, 0.0]
    assert book.best_bid == 101.0 and book.best_ask == 102.0 and not book.crossed


def test_crossed_book_is_detected():
    book = OrderBook()
    book.load(*_arr([(100.0, 1.0)]), *_arr([(101.0, 1.0)]))

    book.apply(*_arr([(101.0, 2.0)]), np.zeros(0), np.zeros(0))

    assert book.crossed


def test_snapshot_larger_than_the_near_part_keeps_every_level():
    book = OrderBook(levels=2, near_min=4)
    px = np.arange(1.0, 5001.0)

    book.load(px, np.ones_like(px), px + 10_000, np.ones_like(px))

    assert book.depth() == (5000, 5000)
    assert book.top(2)[0].tolist() == [5000.0, 4999.0]
    assert book.top(2)[2].tolist() == [10_001.0, 10_002.0]


updates = st.lists(
    st.tuples(st.booleans(), st.integers(1, 60).map(lambda t: t * 0.5), st.sampled_from([0.0, 0.0, 1.0, 2.5, 0.125])),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(updates)
def test_top_matches_a_dict_reference(ops):
    book, bids, asks = OrderBook(levels=1, near_min=2), {}, {}
    for is_bid, px, sz in ops:
        side = bids if is_bid else asks
        if sz > 0:
            side[px] = sz
        else:
            side.pop(px, None)
        one = (np.array([px]), np.array([sz]))
        empty = (np.zeros(0), np.zeros(0))
        book.apply(*(one if is_bid else empty), *(empty if is_bid else one))

    bid_px, bid_sz, ask_px, ask_sz = book.top(2)

    ref_b = sorted(bids.items(), reverse=True)[:2]
    ref_a = sorted(asks.items())[:2]
    assert [(p, s) for p, s in zip(bid_px, bid_sz) if s > 0] == ref_b
    assert [(p, s) for p, s in zip(ask_px, ask_sz) if s > 0] == ref_a
    assert book.levels() == (sorted(bids.items(), reverse=True), sorted(asks.items()))
    assert book.top(30)[0][: len(bids)].tolist() == sorted(bids, reverse=True)[:30]
