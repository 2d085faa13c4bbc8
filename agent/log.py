"""The agent's logging: the same event lines as the collector's structlog set-up, without importing structlog.

structlog (with the asyncio and logging machinery it pulls in) costs the agent more resident memory
than everything it reports; the agent logs a handful of events, so it writes them itself. The lines
are the ones :func:`schoolops.log.configure` produces — a JSON object per line off a terminal
(the event's key-values, then ``event``, ``level`` and an ISO ``timestamp`` in UTC), a readable
line on one — and go through the same secret redaction (:mod:`schoolops.redact`).

Configured once at start-up with :func:`configure`; until then, lines go to stderr at ``info``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import msgspec

from schoolops.redact import redact_secrets

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_EVENT_WIDTH = 30  # the console line pads the event name to so many characters (as structlog's does)
_LEVEL_WIDTH = 9


class _Sink:
    """Where lines go and which levels pass: set by :func:`configure`, read by every logger."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None  # None: sys.stderr at the time of writing
        self.threshold = LEVELS["info"]
        self.json = True


_sink = _Sink()


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """``fmt``: ``json``, ``console``, or ``auto`` (JSON unless ``stream`` is a terminal)."""
    target = stream or sys.stderr
    _sink.stream = stream
    _sink.threshold = LEVELS[level.lower()]
    _sink.json = fmt == "json" or (fmt == "auto" and not target.isatty())


def _timestamp(now: float) -> str:
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((now - seconds) * 1e6):06d}Z"


def _console_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if set(value) & {" ", "\t", "=", "\r", "\n", '"', "'"} else value
    return repr(value)


def render(event: str, level: str, fields: dict[str, Any], now: float, as_json: bool) -> str:
    """One log line (without its newline), secrets redacted."""
    event_dict: dict[str, Any] = {**fields, "event": event, "level": level, "timestamp": _timestamp(now)}
    redact_secrets(None, level, event_dict)
    if as_json:
        return msgspec.json.encode(event_dict, enc_hook=repr).decode()
    exception = event_dict.pop("exception", None)
    head = (f"{event_dict.pop('timestamp')} [{event_dict.pop('level'):<{_LEVEL_WIDTH}}] "
            f"{event_dict.pop('event'):<{_EVENT_WIDTH}}")
    rest = " ".join(f"{key}={_console_value(event_dict[key])}" for key in sorted(event_dict))
    line = f"{head} {rest}".rstrip()
    return f"{line}\n{exception}" if exception else line


class Logger:
    """``logger.warning("probe_failed", probe="cpu", error="…")``: an event name and its data."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if LEVELS[level] < _sink.threshold:
            return
        stream = _sink.stream or sys.stderr
        stream.write(render(event, level, fields, time.time(), _sink.json) + "\n")
        stream.flush()

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An ``error`` line with the exception being handled, its traceback under ``exception``."""
        import traceback  # only when an exception is logged

        self._emit("error", event, {**fields, "exception": traceback.format_exc().rstrip("\n")})


def get_logger(name: str) -> Logger:
    return Logger(name)
