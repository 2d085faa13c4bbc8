"""structlog set-up, done once at start-up: JSON lines off a terminal, readable on one; secrets redacted.

The agent logs through :mod:`agent.log` instead (the same lines, without structlog's import cost).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from schoolops.redact import REDACTED, redact, redact_secrets

__all__ = ["REDACTED", "LogFormat", "configure", "redact", "redact_secrets"]

LogFormat = Literal["auto", "json", "console"]


def configure(level: str = "info", fmt: LogFormat = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # before redaction: exception text is redacted too
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
