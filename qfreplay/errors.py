"""One exception hierarchy for everything a user can get wrong; messages name the key, file or symbol."""


class QfreplayError(Exception):
    """Base of every error qfreplay reports to a user as one line and a non-zero exit."""


class ConfigError(QfreplayError):
    """A config file or option is missing, malformed, or has an unknown key or bad value."""


class DataError(QfreplayError):
    """A dataset folder, file or instrument is missing, empty or corrupt."""


class VenueError(QfreplayError):
    """A venue answered in a way we cannot continue from (for example HTTP 451)."""


class StrategyError(QfreplayError):
    """User strategy code cannot be found, compiled or called."""
