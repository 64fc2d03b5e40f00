"""Fixtures of the app tests: a synthetic two-venue market, its backtest results, a headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from tests.app.market import T0, market_config, write_market

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MINUTES = 10


@pytest.fixture(scope="session")
def market(tmp_path_factory) -> dict:
    """A 10-minute two-venue dataset (10 levels) and its backtest results folder."""
    root = tmp_path_factory.mktemp("market")
    data, out = root / "data", root / "results" / "demo"
    info = write_market(data, minutes=MINUTES, seed=7, levels=10)
    result = run_backtest(load_config_dict(market_config(data, out)))
    return {"data": data, "results": out, "summary": result.summary, "t0": T0, **info}


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright (skipped where /usr/bin/chromium is absent).

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while it is
    open, which would break every later test that calls asyncio.run().
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
