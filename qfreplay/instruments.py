"""Venue ids and instrument names: ``BTCUSDT`` and ``btc-usdt`` both become ``BTC-USDT`` (SPEC 1)."""

from __future__ import annotations

from typing import NamedTuple

from .errors import ConfigError

VENUES = ("binance", "binanceus", "coinbase")

# Longest first, so that FDUSD wins over USD and USDT over USD.
_QUOTES = sorted(
    ["USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY",
     "BRL", "JPY", "AUD", "DAI", "USDP", "PYUSD", "UST", "BIDR", "IDRT", "UAH", "RUB", "ZAR", "PLN"],
    key=len,
    reverse=True,
)


def normalize_symbol(symbol: str) -> str:
    """Normalize a venue or user symbol to ``BASE-QUOTE`` upper case."""
    s = symbol.strip().upper().replace("/", "-").replace("_", "-")
    if "-" in s:
        base, _, quote = s.partition("-")
        if base and quote and "-" not in quote:
            return f"{base}-{quote}"
        raise ConfigError(f"symbol {symbol!r} is not of the form BASE-QUOTE (for example BTC-USDT)")
    for quote in _QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return f"{s[: -len(quote)]}-{quote}"
    raise ConfigError(f"symbol {symbol!r}: cannot tell base from quote; write it as BASE-QUOTE")


def venue_symbol(venue: str, symbol: str) -> str:
    """The venue's own spelling of a normalized symbol: ``BTCUSDT`` on Binance, ``BTC-USD`` on Coinbase."""
    if venue in ("binance", "binanceus"):
        return symbol.replace("-", "")
    return symbol


def check_venue(venue: str) -> str:
    """Return the venue id lower-cased, or raise naming the allowed ones."""
    v = venue.strip().lower()
    if v not in VENUES:
        raise ConfigError(f"unknown venue {venue!r}; allowed: {', '.join(VENUES)}")
    return v


class Instrument(NamedTuple):
    """One instrument on one venue, ``venue:BASE-QUOTE``."""

    venue: str
    symbol: str

    @classmethod
    def parse(cls, text: str) -> "Instrument":
        """Parse ``venue:SYMBOL`` in any accepted symbol spelling."""
        if not isinstance(text, str) or ":" not in text:
            raise ConfigError(f"instrument {text!r} must be written venue:SYMBOL, for example binance:BTC-USDT")
        venue, _, symbol = text.partition(":")
        return cls(check_venue(venue), normalize_symbol(symbol))

    def __str__(self) -> str:
        return f"{self.venue}:{self.symbol}"
