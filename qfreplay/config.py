"""Typed, frozen configuration (SPEC section 7): every key, its default and its meaning in one place.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` with one line that
names the key and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .instruments import Instrument, VENUES


def _parse_instrument(text: str) -> Instrument:
    """Instrument.parse with its error as a ValueError, so that the message names the config key."""
    try:
        return Instrument.parse(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class FeaturesConfig(_Section):
    """Feature settings."""

    levels: int = Field(20, ge=1, le=1000, description="book levels summed into bid_vol / ask_vol (L = min(levels, N))")


class SignalConfig(_Section):
    """The signal stage: a strategy name and the built-in imbalance rule's parameters."""

    strategy: str = Field("imbalance", description="'imbalance' (built in) or 'path/to/file.py:name' / 'module:name'")
    params: dict[str, Any] = Field(default_factory=dict, description="parameters of a user strategy")
    imbalance_threshold: float = Field(0.15, ge=0, le=1, description="θ: |imbalance| above it gives a signal")
    max_spread_bps: float = Field(10.0, ge=0, description="no signal when spread_bps is at or above this")
    confidence_base: float = Field(0.6, ge=0, le=1, description="confidence at imbalance 0")
    confidence_slope: float = Field(2.0, ge=0, description="confidence added per unit of |imbalance|")
    confidence_cap: float = Field(0.95, ge=0, le=1, description="confidence never exceeds this")


class ExecutionConfig(_Section):
    """Simulated execution."""

    min_confidence: float = Field(0.6, ge=0, le=1, description="signals below this confidence do not trade")
    position_size: float = Field(0.01, gt=0, description="target position size in base units")
    slippage_bps: float = Field(5.0, ge=0, description="price worsened by this on every fill")
    fee_bps: float = Field(10.0, ge=0, description="taker fee on notional")
    fill_model: Literal["fixed", "book"] = Field("fixed", description="fixed: touch price; book: walk the stored levels")
    latency_ms: float = Field(0.0, ge=0, description="order placed at row i fills at the first valid row at or after ts + latency")
    cooldown_ms: float = Field(0.0, ge=0, description="minimum time between orders")
    max_hold_ms: Optional[float] = Field(None, gt=0, description="flatten a position held this long (none: never)")
    flatten_on_neutral: bool = Field(False, description="signal 0 targets a flat position")


class ArbitrageConfig(_Section):
    """Cross-venue arbitrage scan."""

    pairs: list[tuple[str, str]] = Field(
        default_factory=lambda: [("binance:BTC-USDT", "coinbase:BTC-USD")],
        description="pairs of instruments taken as the same asset at par",
    )
    fee_bps: dict[str, float] = Field(
        default_factory=lambda: {"binance": 10.0, "coinbase": 10.0},
        description="taker fee per venue (10 bps for a venue not listed)",
    )
    slippage_bps: float = Field(0.0, ge=0, description="added to each leg's fee")
    max_staleness_ms: float = Field(1000.0, ge=0, description="skip a point where either book is older than this")

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for a, b in pairs:
            ia, ib = _parse_instrument(a), _parse_instrument(b)
            if ia == ib:
                raise ValueError(f"pair {a} / {b} names the same instrument twice")
            out.append((str(ia), str(ib)))
        return out

    @field_validator("fee_bps")
    @classmethod
    def _fees(cls, fees: dict[str, float]) -> dict[str, float]:
        for venue, fee in fees.items():
            if venue not in VENUES:
                raise ValueError(f"unknown venue {venue!r}; allowed: {', '.join(VENUES)}")
            if fee < 0:
                raise ValueError(f"fee of {venue} must be ≥ 0")
        return fees

    def fee_of(self, venue: str) -> float:
        """Taker fee in bps of ``venue``."""
        return float(self.fee_bps.get(venue, 10.0))


class RecordConfig(_Section):
    """Recorder settings."""

    levels: int = Field(20, ge=1, le=1000, description="N: levels a side kept in each book row")
    interval_ms: int = Field(100, ge=0, description="book row cadence; 0 writes a row after every message")
    raw: bool = Field(True, description="keep the raw journal of every frame")


class VenueEndpoints(_Section):
    """Endpoints of one venue; the defaults are the real public hosts."""

    ws_url: str
    rest_url: Optional[str] = None


def _default_venues() -> dict[str, VenueEndpoints]:
    return {
        "binance": VenueEndpoints(ws_url="wss://stream.binance.com:9443", rest_url="https://api.binance.com"),
        "binanceus": VenueEndpoints(ws_url="wss://stream.binance.us:9443", rest_url="https://api.binance.us"),
        "coinbase": VenueEndpoints(ws_url="wss://advanced-trade-ws.coinbase.com"),
    }


def to_ns(value: Any, key: str) -> Optional[int]:
    """Timestamp (ISO 8601 text, date, datetime or int ns) to int ns UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"config key {key!r}: expected a timestamp, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(round(value.timestamp() * 1_000_000)) * 1000
    if isinstance(value, dt.date):
        return to_ns(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc), key)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return to_ns(dt.datetime.fromisoformat(text), key)
        except ValueError:
            pass
    raise ConfigError(f"config key {key!r}: {value!r} is not a timestamp (use ISO 8601, e.g. 2024-08-08T00:00:00Z)")


class Config(_Section):
    """The whole config file."""

    data: str = Field("data/sample", description="dataset root (SPEC section 2)")
    out: str = Field("results/demo", description="results folder (SPEC section 6)")
    start: Optional[Any] = Field(None, description="optional lower bound on ts_recv (inclusive)")
    end: Optional[Any] = Field(None, description="optional upper bound on ts_recv (exclusive)")
    instruments: list[str] = Field(
        default_factory=lambda: ["binance:BTC-USDT", "coinbase:BTC-USD"], description="venue:SYMBOL to backtest"
    )
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    signal: SignalConfig = Field(default_factory=SignalConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    arbitrage: ArbitrageConfig = Field(default_factory=ArbitrageConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)
    venues: dict[str, VenueEndpoints] = Field(default_factory=_default_venues)

    @field_validator("instruments")
    @classmethod
    def _instruments(cls, items: list[str]) -> list[str]:
        out: list[str] = []
        for item in items:
            name = str(_parse_instrument(item))
            if name not in out:
                out.append(name)
        return out

    @field_validator("venues", mode="before")
    @classmethod
    def _venues(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_venues().items()}
        for venue, endpoints in value.items():
            if venue not in VENUES:
                raise ValueError(f"unknown venue {venue!r}; allowed: {', '.join(VENUES)}")
            if not isinstance(endpoints, dict):
                raise ValueError(f"venue {venue!r} must map to {{ws_url, rest_url}}")
            merged[venue] = {**merged[venue], **endpoints}
        return merged

    @model_validator(mode="after")
    def _bounds(self) -> "Config":
        start, end = to_ns(self.start, "start"), to_ns(self.end, "end")
        if start is not None and end is not None and end <= start:
            raise ValueError("end must be after start")
        return self

    @property
    def start_ns(self) -> Optional[int]:
        return to_ns(self.start, "start")

    @property
    def end_ns(self) -> Optional[int]:
        return to_ns(self.end, "end")

    @property
    def instrument_list(self) -> list[Instrument]:
        return [Instrument.parse(i) for i in self.instruments]

    @property
    def pair_list(self) -> list[tuple[Instrument, Instrument]]:
        return [(Instrument.parse(a), Instrument.parse(b)) for a, b in self.arbitrage.pairs]

    def replace(self, **changes: Any) -> "Config":
        """A copy with top-level keys replaced, validated again."""
        return load_config_dict({**self.to_dict(), **changes})

    def with_overrides(self, overrides: dict[str, Any]) -> "Config":
        """A copy with dotted keys (``execution.latency_ms``) set, validated again."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown config key {dotted!r}")
                node = node[part]
            node[parts[-1]] = value
        return load_config_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what summary.json records)."""
        d = self.model_dump(mode="json")
        d["start"] = _iso(self.start_ns)
        d["end"] = _iso(self.end_ns)
        return d


def _iso(ns: Optional[int]) -> Optional[str]:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _describe(err: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "extra_forbidden":
        return f"unknown config key {key!r}"
    if kind == "literal_error":
        return f"config key {key!r} must be one of {ctx.get('expected')} (got {got!r})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"config key {key!r} must be {op} {bound} (got {got!r})"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return f"config key {key!r}: {msg}" if key != "(top level)" else msg
    return f"config key {key!r}: {err['msg'].lower()} (got {got!r})"


def load_config_dict(data: Any, source: str = "") -> Config:
    """Validate a dict into a :class:`Config`, raising one-line :class:`ConfigError`."""
    where = f"{source}: " if source else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}expected a mapping of config keys at the top level")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}{_describe(exc.errors()[0])}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    # allowed keys named on unknown-key errors are in the README; validate timestamps eagerly
    cfg.start_ns, cfg.end_ns  # noqa: B018
    return cfg


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parse a YAML file, or raise one line naming the file (and the line of a syntax error)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {str(p)!r} does not exist")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {str(p)!r} is not valid YAML{where}") from None


def load_config(path: str | Path | None) -> Config:
    """Read and validate a YAML config file; ``None`` gives the defaults."""
    if path is None:
        return load_config_dict({})
    return load_config_dict(read_yaml(path), source=str(path))
