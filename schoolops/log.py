"""structlog set-up, done once at start-up: JSON lines off a terminal, readable on one; secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

_SECRET_KEYS = re.compile(
    r"(token|password|passwd|secret|authorization|community|passphrase|auth_key|priv_key|private_key|cookie)",
    re.IGNORECASE,
)
# an agent token as `schoolops token create` prints it, wherever it appears in a string
_TOKEN_IN_TEXT = re.compile(r"\bso_[A-Za-z0-9]{8,}\.[A-Za-z0-9_-]{16,}")
_BEARER_IN_TEXT = re.compile(r"(?i)(bearer\s+)\S+")
REDACTED = "***"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _BEARER_IN_TEXT.sub(r"\1" + REDACTED, _TOKEN_IN_TEXT.sub(REDACTED, value))
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def redact_secrets(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: no secret reaches a log line, by key name or by token shape."""
    for key in list(event_dict):
        if _SECRET_KEYS.search(key) and not key.endswith(("_file", "_path", "_id", "_name")):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact(event_dict[key])
    return event_dict


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
