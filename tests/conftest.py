"""Shared fixtures: small datasets written with the project's own store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.factories import random_book, write_book

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """Two venues, one asset, 600 rows each, a few invalid and RESYNC rows."""
    rng = np.random.default_rng(11)
    root = tmp_path / "data"
    write_book(root, "binance", "BTC-USDT", random_book(rng, 600, levels=5, mid0=100.0))
    write_book(root, "coinbase", "BTC-USD", random_book(rng, 600, levels=5, mid0=100.02))
    return root
