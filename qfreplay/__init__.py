"""qfreplay: record L2 order books from Binance and Coinbase, replay them through numba kernels, run the same engine live."""

__version__ = "0.1.0"

__all__ = ["__version__"]
