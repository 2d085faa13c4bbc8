"""What the agent and the collector share: the wire format, config loading, units, logging."""

__version__ = "0.1.0"


class SchoolopsError(Exception):
    """Root of every error this distribution raises on purpose."""


class ConfigError(SchoolopsError):
    """A config or data file is invalid; the message names the file, line and key."""
