"""cryptofeed's own Binance book handling over a raw journal (runs inside benchmarks/.venv-cryptofeed).

Feeds every diff-depth frame of an hftbacktest-layout journal to ``Binance.message_handler``
(its JSON parsing with Decimal, U/u checks and sorted-dict book), the REST snapshot served from
the journal itself, and a callback that does nothing, so only cryptofeed's book work is timed.
Prints one JSON line: {"messages", "seconds", "cpu_seconds", "book_callbacks"}.
"""

import asyncio
import gzip
import json
import sys
import time

from cryptofeed.defines import L2_BOOK
from cryptofeed.exchanges import Binance
from cryptofeed.symbols import Symbols


def main(path: str, repeat: int) -> None:
    lines = [line.split(b" ", 1)[1] for line in gzip.open(path, "rb")]
    snapshot = next(x for x in lines if x.startswith(b'{"lastUpdateId"')).decode()
    frames = [x.decode() for x in lines if b"@depth" in x[:48]]
    Symbols.set("BINANCE", {"BTC-USDT": "BTCUSDT"}, {"tick_size": {"BTC-USDT": "0.01"}, "instrument_type": {"BTC-USDT": "spot"}})

    calls = [0]

    async def noop(book, receipt_timestamp):
        calls[0] += 1

    async def run() -> float:
        best, best_cpu = float("inf"), float("inf")
        for _ in range(repeat):
            calls[0] = 0
            feed = Binance(symbols=["BTC-USDT"], channels=[L2_BOOK], callbacks={L2_BOOK: noop})

            async def read(*args, **kwargs):
                return snapshot

            feed.http_conn.read = read
            t0, c0 = time.perf_counter(), time.process_time()
            with gzip.open(path, "rb") as fh:  # decompress like the qfreplay side does
                raw = [line.split(b" ", 1)[1].decode() for line in fh]
            for msg in raw:
                if '@depth' in msg[:48]:
                    await feed.message_handler(msg, None, 0.0)
            best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
        return best, best_cpu

    seconds, cpu = asyncio.run(run())
    print(json.dumps({"messages": len(frames), "seconds": seconds, "cpu_seconds": cpu, "book_callbacks": calls[0]}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
