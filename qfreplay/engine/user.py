"""User strategies: a Python file or module holding an ``@njit`` strategy function, its ``PARAMS`` and ``STATE_SIZE``.

A strategy module looks like this (see docs/strategies.md)::

    from numba import njit
    from qfreplay.engine.user import MID, MICRO_PRICE

    PARAMS = {"threshold_bps": 0.5}   # parameter names and defaults; params[i] is the i-th entry
    STATE_SIZE = 2                    # floats of persistent state (zeros at the start)

    @njit(cache=True)
    def my_rule(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state):
        edge = (feats[MICRO_PRICE] - feats[MID]) / feats[MID] * 1e4
        if edge > params[0]:
            return 1, 0.8
        return 0, 0.0

and is named in the config as ``signal: {strategy: "path/to/file.py:my_rule", params: {...}}`` or
``"package.module:my_rule"``. Loading checks everything a user can get wrong and compiles the
function together with the engine's execution kernel, so that every mistake surfaces as one
:class:`~qfreplay.errors.StrategyError` line before anything is computed or written.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..config import SignalConfig
from ..errors import StrategyError
from .kernels import (F_ASK_VOL, F_BID_VOL, F_IMBALANCE, F_MICRO_PRICE, F_MID, F_OFI, F_SPREAD_BPS, FEATURE_NAMES,
                      STRATEGY_SIG)
from .strategy import Strategy

#: Indices into a strategy's ``feats`` row, for user code: ``feats[MID]``.
MID, SPREAD_BPS, BID_VOL, ASK_VOL, IMBALANCE, MICRO_PRICE, OFI = (
    F_MID, F_SPREAD_BPS, F_BID_VOL, F_ASK_VOL, F_IMBALANCE, F_MICRO_PRICE, F_OFI)

__all__ = ["MID", "SPREAD_BPS", "BID_VOL", "ASK_VOL", "IMBALANCE", "MICRO_PRICE", "OFI", "FEATURE_NAMES",
           "load_user_strategy", "resolve_params", "runtime_error"]

ARGUMENTS = "(ts, feats, bid_px, bid_sz, ask_px, ask_sz, position, params, state)"

# Modules and compile checks already done in this process, so that a sweep's many grid points
# (and a worker's many tasks) load and compile each strategy once. Keyed by file identity.
_modules: dict[tuple, Any] = {}
_checked: set[int] = set()


def _is_file_spec(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def split_spec(spec: str) -> tuple[str, str]:
    """``"path/to/file.py:name"`` or ``"package.module:name"`` → (file or module, function name)."""
    source, sep, name = spec.rpartition(":")
    if not sep or not source or not name.isidentifier():
        raise StrategyError(
            f"signal.strategy {spec!r} must be 'imbalance', 'path/to/file.py:function' or 'package.module:function'")
    return source, name


def resolve_spec(spec: str) -> str:
    """The spec with a file path made absolute (what other processes, e.g. sweep workers, need)."""
    if spec == "imbalance":
        return spec
    source, name = split_spec(spec)
    if _is_file_spec(source):
        return f"{Path(source).expanduser().resolve()}:{name}"
    return spec


def _deepest_line(exc: BaseException, path: Path) -> Optional[int]:
    """The line of the deepest traceback frame in the file ``path`` (resolved), if any."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return line


def _load_file(source: str) -> Any:
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise StrategyError(f"strategy file {source!r} does not exist")
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _modules:
        return _modules[key]
    # a stable module name per file: numba's cache and pickles refer to the function by module name
    name = f"qfreplay_strategy_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise StrategyError(f"strategy file {source!r} line {exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - anything the user's module raises at import time
        del sys.modules[name]
        line = _deepest_line(exc, path)
        at = f" line {line}" if line else ""
        raise StrategyError(f"strategy file {source!r}{at}: {type(exc).__name__}: {exc}") from None
    _modules[key] = module
    return module


def _load_module(source: str) -> Any:
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and (source == exc.name or source.startswith(exc.name + ".")):
            raise StrategyError(
                f"strategy module {source!r} cannot be imported: no module named {exc.name!r} "
                f"(give a file path ending in .py, or make the module importable)") from None
        raise StrategyError(f"strategy module {source!r} cannot be imported: {exc}") from None
    except SyntaxError as exc:
        raise StrategyError(f"strategy module {source!r}: {exc.filename} line {exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001
        raise StrategyError(f"strategy module {source!r} cannot be imported: {type(exc).__name__}: {exc}") from None


def _declared(module: Any, where: str) -> tuple[dict[str, float], int]:
    """The module's ``PARAMS`` (name → default) and ``STATE_SIZE``, checked."""
    params = getattr(module, "PARAMS", {})
    if not isinstance(params, Mapping):
        raise StrategyError(f"{where}: PARAMS must be a dict of parameter name → default number")
    declared = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise StrategyError(f"{where}: PARAMS key {key!r} must be a name")
        declared[key] = _number(value, f"{where}: PARAMS[{key!r}]")
    size = getattr(module, "STATE_SIZE", 0)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise StrategyError(f"{where}: STATE_SIZE must be a whole number ≥ 0 (got {size!r})")
    return declared, int(size)


def _number(value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not math.isnan(float(value)):
        return float(value)
    raise StrategyError(f"{what} must be a number (got {value!r})")


def resolve_params(strategy: str, declared: Mapping[str, float], given: Mapping[str, Any]) -> np.ndarray:
    """The declared defaults overridden by ``given`` (config ``signal.params``), in declaration order."""
    unknown = [k for k in given if k not in declared]
    if unknown:
        allowed = ", ".join(declared) if declared else "none (the module has no PARAMS)"
        raise StrategyError(f"strategy {strategy!r} has no parameter {unknown[0]!r}; its parameters: {allowed}")
    values = [_number(given[k], f"signal.params.{k}") if k in given else v for k, v in declared.items()]
    return np.array(values, dtype=np.float64)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')


def numba_message(exc: BaseException, fn: Any, display: str) -> str:
    """numba's compile error in one line: the problem and the user's file and line where it is."""
    text = _ANSI.sub("", str(exc))
    lines = [s.strip() for s in text.splitlines()]
    problem = next((s for s in lines if s and not s.startswith(("Failed in", "During:", "File ", "^"))), "")
    problem = problem or (lines[0] if lines else type(exc).__name__)
    where = ""
    found = _FILE_LINE.search(text)
    if found:
        file, line = found.groups()
        shown = display if Path(file).name == Path(display).name else file
        where = f"{shown} line {line}: "
    else:
        name = re.match(r"NameError: name '(\w+)'", problem)
        if name:  # numba gives no location for an unknown name: find it in the source
            try:
                src, first = inspect.getsourcelines(fn.py_func)
                hit = next(i for i, s in enumerate(src) if re.search(rf"\b{name.group(1)}\b", s))
                where = f"{display} line {first + hit}: "
            except (OSError, TypeError, StopIteration):
                pass
    if len(problem) > 300:
        problem = problem[:297] + "..."
    return f"{where}{problem}"


def _readonly_book(levels: int) -> Any:
    from ..store import empty_book

    book = empty_book(levels)
    for column in book:
        column.setflags(write=False)
    return book


def _compile_function(spec: str, fn: Any, display: str) -> None:
    """Compile the function for the engine's argument types and check that it returns two numbers."""
    from numba.core import types
    from numba.core.errors import NumbaError

    args = tuple(STRATEGY_SIG.args)
    try:
        takes = list(inspect.signature(fn.py_func).parameters)
    except (TypeError, ValueError):
        takes = None
    if takes is not None and len(takes) != len(args):
        raise StrategyError(f"strategy {spec!r} must take the arguments {ARGUMENTS}; it takes ({', '.join(takes)})")
    try:
        # no declared return type: the signal's sign is what counts, whatever its type
        try:
            fn.compile(args)
        except ImportError:
            # numba's on-disk cache of this file was written when it was loaded under another module
            # name (file path vs package.module): drop that cache and compile afresh
            fn._cache.flush()
            fn.compile(args)
    except NumbaError as exc:
        raise StrategyError(f"strategy {spec!r} does not compile: {numba_message(exc, fn, display)}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a TypeError for a wrong number of arguments
        raise StrategyError(f"strategy {spec!r} cannot be compiled for the arguments {ARGUMENTS}: "
                            f"{type(exc).__name__}: {exc}") from None
    ret = fn.overloads[args].signature.return_type
    scalar = (types.Integer, types.Float, types.Boolean)
    if not (isinstance(ret, types.BaseTuple) and len(ret) == 2 and all(isinstance(t, scalar) for t in ret)):
        raise StrategyError(f"strategy {spec!r} must return (signal, confidence), two numbers; it returns {ret}")


def _compile_engine(strategy: Strategy, display: str) -> None:
    """Compile the execution kernel for this strategy on an empty read-only book (the types real
    runs use), so that no compile error can come mid-run and no run compiles it again."""
    from numba.core.errors import NumbaError

    from ..config import Config
    from ..instruments import Instrument
    from .run import InstrumentRun

    try:
        InstrumentRun(Instrument("binance", "BTC-USDT"), Config(), strategy).step(_readonly_book(1))
    except NumbaError as exc:
        raise StrategyError(f"strategy {strategy.name!r} does not compile with the engine: "
                            f"{numba_message(exc, strategy.fn, display)}") from None


def runtime_error(strategy: Strategy, exc: BaseException, where: str = "") -> StrategyError:
    """An exception raised inside a strategy's code while it ran, as one line naming its file and line."""
    src = inspect.getsourcefile(strategy.fn.py_func) if hasattr(strategy.fn, "py_func") else None
    line = _deepest_line(exc, Path(src).resolve()) if src else None
    at = f" at {Path(src).name} line {line}" if line else ""
    return StrategyError(f"strategy {strategy.name!r} raised {type(exc).__name__}{at}{where}: {exc}")


def load_user_strategy(signal: SignalConfig) -> Strategy:
    """The user strategy ``signal.strategy`` names, with ``signal.params``, compiled and checked."""
    spec = signal.strategy
    source, name = split_spec(spec)
    is_file = _is_file_spec(source)
    module = _load_file(source) if is_file else _load_module(source)
    where = f"strategy file {source!r}" if is_file else f"strategy module {source!r}"
    from numba.core.registry import CPUDispatcher

    fn = getattr(module, name, None)
    if fn is None:
        jitted = sorted(k for k, v in vars(module).items() if isinstance(v, CPUDispatcher) and not k.startswith("_"))
        has = f"; its numba functions: {', '.join(jitted)}" if jitted else "; it defines no @njit function"
        raise StrategyError(f"{where} has no function {name!r}{has}")
    if not isinstance(fn, CPUDispatcher):
        raise StrategyError(f"{where}: {name!r} is not a numba function; decorate it with @njit(cache=True) "
                            f"and give it the arguments {ARGUMENTS}")
    declared, state_size = _declared(module, where)
    params = resolve_params(spec, declared, signal.params)
    if id(fn) not in _checked:
        display = source if is_file else (inspect.getsourcefile(fn.py_func) or source)
        _compile_function(spec, fn, display)
        strategy = Strategy(spec, fn, params, state_size, tuple(declared))
        _compile_engine(strategy, display)
        _checked.add(id(fn))
        return strategy
    return Strategy(spec, fn, params, state_size, tuple(declared))
