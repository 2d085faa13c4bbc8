"""Secret redaction for log events, shared by the collector's structlog set-up and the agent's light logger.

Free of any logging library, so that the agent can use it without importing one.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

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
