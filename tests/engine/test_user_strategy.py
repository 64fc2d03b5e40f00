"""User strategies: loading, parameters, parity of backtest with chunked and row-by-row runs, and every user error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qfreplay.cli import cli
from qfreplay.config import load_config_dict
from qfreplay.engine.backtest import run_backtest
from qfreplay.engine.run import InstrumentRun
from qfreplay.engine.strategy import load_strategy
from qfreplay.errors import StrategyError
from qfreplay.results import dump_summary
from qfreplay.store import load_book
from tests.factories import random_book, write_book

REPO = Path(__file__).resolve().parents[2]
HYSTERESIS = f"{REPO}/examples/strategies/imbalance_hysteresis.py:imbalance_hysteresis"

HEADER = "from numba import njit\nfrom qfreplay.engine.user import MID, IMBALANCE\n"
ARGS = "ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One instrument over two UTC days (so state must carry across the day boundary)."""
    root = tmp_path_factory.mktemp("user") / "data"
    rng = np.random.default_rng(5)
    day = 86_400 * 10**9
    t0 = 1_723_075_200_000_000_000 + day - 60 * 10**9  # one minute before midnight
    write_book(root, "binance", "BTC-USDT", random_book(rng, 1500, levels=4, t0=t0))
    return root


def config(root: Path, strategy: str, params: dict | None = None, **sections) -> object:
    data = {"data": str(root), "instruments": ["binance:BTC-USDT"], "arbitrage": {"pairs": []},
            "signal": {"strategy": strategy, "params": params or {}}}
    data.update(sections)
    return load_config_dict(data)


def write_strategy(folder: Path, name: str, body: str, header: str = HEADER) -> Path:
    path = folder / f"{name}.py"
    path.write_text(header + textwrap.dedent(body))
    return path


def load_error(spec: str, params: dict | None = None) -> str:
    with pytest.raises(StrategyError) as info:
        load_strategy(load_config_dict({"signal": {"strategy": spec, "params": params or {}}}).signal)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- loading and parity


def test_backtest_equals_chunked_and_row_by_row_runs(dataset):
    # the hysteresis rule reads its persistent state and the current position on every row
    cfg = config(dataset, HYSTERESIS, {"alpha": 0.2, "enter": 0.3, "exit": 0.05}, execution={"latency_ms": 150, "cooldown_ms": 200, "flatten_on_neutral": True,
                                           "min_confidence": 0.6})
    strategy = load_strategy(cfg.signal)
    inst = cfg.instrument_list[0]
    whole = run_backtest(cfg, write=False, collect=True)
    book = load_book(dataset, inst)

    chunked, by_row = InstrumentRun(inst, cfg, strategy), InstrumentRun(inst, cfg, strategy)
    parts = [chunked.step(book.slice(lo, lo + 97)) for lo in range(0, len(book), 97)]
    rows = [by_row.step(book.slice(i, i + 1)) for i in range(len(book))]

    signals = whole.tables["signals"]
    equity = whole.tables["equity"]
    assert signals.num_rows == len(book) and np.abs(signals.column("signal").to_numpy()).sum() > 20
    for run, pieces in ((chunked, parts), (by_row, rows)):
        assert np.array_equal(np.concatenate([p.signal for p in pieces]), signals.column("signal").to_numpy())
        assert np.array_equal(np.concatenate([p.confidence for p in pieces]), signals.column("confidence").to_numpy())
        assert np.array_equal(np.concatenate([p.position for p in pieces]), equity.column("position").to_numpy())
        assert np.array_equal(np.concatenate([p.equity for p in pieces]), equity.column("equity").to_numpy())
        fills = np.concatenate([p.fill_vals for p in pieces])
        assert np.array_equal(fills[:, 1], whole.tables["fills"].column("price").to_numpy())
        assert dump_summary(run.summary()) == dump_summary(whole.summary["instruments"][str(inst)])


def test_module_spec_declares_params_and_state(dataset, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))

    strategy = load_strategy(config(dataset, "examples.strategies.ofi_decay:ofi_decay", {"threshold": 2.5}).signal)
    result = run_backtest(config(dataset, "examples.strategies.ofi_decay:ofi_decay", {"halflife_ms": 1000, "threshold": 0.2}),
                          write=False, collect=True)

    assert strategy.param_names == ("halflife_ms", "threshold", "max_spread_bps", "confidence", "max_confidence")
    assert strategy.params.tolist() == [10000.0, 2.5, 10.0, 0.7, 0.95]
    assert strategy.state_size == 2
    assert result.summary["instruments"]["binance:BTC-USDT"]["fills"] > 0
    assert set(result.tables["signals"].column("signal").to_pylist()) == {-1, 0, 1}


def test_builtin_imbalance_takes_its_parameters_under_params_too(dataset):
    via_params = run_backtest(config(dataset, "imbalance", {"imbalance_threshold": 0.3, "confidence_base": 0.7}),
                              write=False).summary["instruments"]
    via_keys = run_backtest(load_config_dict({"data": str(dataset), "instruments": ["binance:BTC-USDT"],
                                              "arbitrage": {"pairs": []},
                                              "signal": {"imbalance_threshold": 0.3, "confidence_base": 0.7}}),
                            write=False).summary["instruments"]

    assert dump_summary(via_params) == dump_summary(via_keys)
    assert "has no parameter 'theta'" in load_error("imbalance", {"theta": 0.2})


# ----------------------------------------------------------------------------- user errors, one line each


def test_missing_file_module_and_function(tmp_path):
    path = write_strategy(tmp_path, "ok", f"""
        @njit(cache=True)
        def rule({ARGS}):
            return 0, 0.0
    """)
    assert load_error(f"{tmp_path}/nope.py:rule") == f"strategy file '{tmp_path}/nope.py' does not exist"
    assert load_error("no_such_package.rules:rule") == (
        "strategy module 'no_such_package.rules' cannot be imported: no module named 'no_such_package' "
        "(give a file path ending in .py, or make the module importable)")
    assert load_error(f"{path}:rul") == f"strategy file '{path}' has no function 'rul'; its numba functions: rule"
    assert load_error("rule") == (
        "signal.strategy 'rule' must be 'imbalance', 'path/to/file.py:function' or 'package.module:function'")


def test_plain_python_function_is_not_a_strategy(tmp_path):
    path = write_strategy(tmp_path, "plain", f"""
        def rule({ARGS}):
            return 0, 0.0
    """)
    assert "'rule' is not a numba function; decorate it with @njit(cache=True)" in load_error(f"{path}:rule")


def test_syntax_error_names_file_and_line(tmp_path):
    path = write_strategy(tmp_path, "broken", f"""
        @njit(cache=True)
        def rule({ARGS})
            return 0, 0.0
    """)
    assert load_error(f"{path}:rule") == f"strategy file '{path}' line 5: SyntaxError: expected ':'"


def test_numba_compile_error_names_file_line_and_problem(tmp_path):
    path = write_strategy(tmp_path, "typo", f"""
        @njit(cache=True)
        def rule({ARGS}):
            spread = feats.spread
            return 1, spread
    """)
    assert load_error(f"{path}:rule") == (
        f"strategy '{path}:rule' does not compile: {path} line 6: Unknown attribute 'spread' of type array(float64, 1d, C)")


def test_unknown_name_is_located_in_the_source(tmp_path):
    path = write_strategy(tmp_path, "name", f"""
        @njit(cache=True)
        def rule({ARGS}):
            x = feats[MID]
            return 1, treshold * x
    """)
    assert load_error(f"{path}:rule") == (
        f"strategy '{path}:rule' does not compile: {path} line 7: NameError: name 'treshold' is not defined")


def test_wrong_return_type_and_arguments(tmp_path):
    one = write_strategy(tmp_path, "one", f"""
        @njit(cache=True)
        def rule({ARGS}):
            return feats[IMBALANCE]
    """)
    short = write_strategy(tmp_path, "short", """
        @njit(cache=True)
        def rule(ts, feats):
            return 1, 0.5
    """)
    assert load_error(f"{one}:rule") == (
        f"strategy '{one}:rule' must return (signal, confidence), two numbers; it returns float64")
    assert load_error(f"{short}:rule") == (
        f"strategy '{short}:rule' must take the arguments ({ARGS}); it takes (ts, feats)")


def test_undeclared_and_non_numeric_parameters(tmp_path):
    path = write_strategy(tmp_path, "declared", f"""
        PARAMS = {{"threshold": 0.2, "confidence": 0.8}}
        STATE_SIZE = 1

        @njit(cache=True)
        def rule({ARGS}):
            if feats[IMBALANCE] > params[0]:
                return 1, params[1]
            return 0, 0.0
    """)
    assert load_error(f"{path}:rule", {"treshold": 0.3}) == (
        f"strategy '{path}:rule' has no parameter 'treshold'; its parameters: threshold, confidence")
    assert load_error(f"{path}:rule", {"threshold": "high"}) == "signal.params.threshold must be a number (got 'high')"


def test_bad_declarations(tmp_path):
    params = write_strategy(tmp_path, "params_list", f"""
        PARAMS = [0.2]

        @njit(cache=True)
        def rule({ARGS}):
            return 0, 0.0
    """)
    state = write_strategy(tmp_path, "state_neg", f"""
        STATE_SIZE = -1

        @njit(cache=True)
        def rule({ARGS}):
            return 0, 0.0
    """)
    assert load_error(f"{params}:rule") == (
        f"strategy file '{params}': PARAMS must be a dict of parameter name → default number")
    assert load_error(f"{state}:rule") == f"strategy file '{state}': STATE_SIZE must be a whole number ≥ 0 (got -1)"


def test_import_time_exception_names_the_line(tmp_path):
    path = write_strategy(tmp_path, "raises", "\nLOOKBACK = int('ten')\n")
    assert load_error(f"{path}:rule") == (
        f"strategy file '{path}' line 4: ValueError: invalid literal for int() with base 10: 'ten'")


def test_cli_backtest_with_a_broken_strategy_exits_2_and_writes_nothing(dataset, tmp_path):
    path = write_strategy(tmp_path, "cli_typo", f"""
        @njit(cache=True)
        def rule({ARGS}):
            return 1, feats.mid
    """)
    out = tmp_path / "results"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {dataset}\nout: {out}\ninstruments: [binance:BTC-USDT]\narbitrage: {{pairs: []}}\n"
                   f"signal: {{strategy: '{path}:rule'}}\n")

    result = CliRunner().invoke(cli, ["backtest", "--config", str(cfg)])

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: strategy '{path}:rule' does not compile: {path} line 6: Unknown attribute 'mid' of type array(float64, 1d, C)"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["cfg.yaml", "cli_typo.py"]


def test_exception_raised_by_strategy_code_mid_run_is_one_line_and_writes_nothing(dataset, tmp_path):
    path = write_strategy(tmp_path, "divides", f"""
        @njit(cache=True)
        def rule({ARGS}):
            if state[0] > 100:
                return 1, 1.0 // (state[0] - state[0])
            state[0] += 1
            return 0, 0.0
    """)
    out = tmp_path / "results"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {dataset}\nout: {out}\ninstruments: [binance:BTC-USDT]\narbitrage: {{pairs: []}}\n"
                   f"signal: {{strategy: '{path}:rule'}}\n")

    result = CliRunner().invoke(cli, ["backtest", "--config", str(cfg)])

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"error: strategy '{path}:rule' raised ZeroDivisionError")
    assert "on binance:BTC-USDT" in lines[0]
    assert not out.exists()
