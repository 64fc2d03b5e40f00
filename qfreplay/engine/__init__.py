"""The engine: numba kernels (``kernels``) and their orchestration (``backtest``, ``live``)."""
