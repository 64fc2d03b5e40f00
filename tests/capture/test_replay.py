"""Replaying a real capture through the local exchange: the served book is the capture's book."""

import asyncio
from pathlib import Path

import numpy as np
import pytest

from qfreplay.capture.replay import ReplayMarket
from qfreplay.venues import binance
from qfreplay.venues.local import LocalExchange

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
BTC_FILE = REAL / "btcusdt_20240808.gz"


@pytest.mark.skipif(not BTC_FILE.exists(), reason=f"real capture {BTC_FILE} not present (../shared/data/real is optional)")
def test_replayed_capture_is_served_with_consistent_snapshots():
    import httpx

    market = ReplayMarket(BTC_FILE, start_ns=1_000_000_000_000_000_000)

    async def main():
        async with LocalExchange(market=market, instruments=["binance:BTC-USDT"], speed=20.0) as ex:
            await asyncio.sleep(0.5)
            async with httpx.AsyncClient() as http:
                snap = (await http.get(binance.depth_url(ex.binance_rest_url), params=binance.depth_params("BTCUSDT", 5))).json()
            truth = ex.true_book("binance", "BTC-USDT", snap["lastUpdateId"], 5)
            return snap, truth

    snap, truth = asyncio.run(asyncio.wait_for(main(), 20))
    assert market.instruments[0].symbol == "BTC-USDT"
    assert [float(p) for p, _ in snap["bids"]] == truth[0].tolist()
    assert 61000 < truth[0][0] < 62500 and np.all(truth[0] < truth[2][0])
