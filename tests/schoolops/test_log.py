"""Logging as configured at start-up: JSON lines, and no secret ever reaches a line."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from schoolops import log

# shaped like `schoolops token create` output: so_<12 lowercase hex>.<43 urlsafe base64 chars>
TOKEN = "so_0a1b2c3d4e5f." + "Zx9_-Qw3" * 5 + "abc"
assert len(TOKEN.split(".")[1]) == 43

Emit = Callable[..., dict[str, Any]]


@pytest.fixture
def emit() -> Iterator[Emit]:
    """Log one event through the real configured pipeline and return the JSON line it produced."""
    stream = io.StringIO()
    log.configure(level="debug", fmt="json", stream=stream)

    def emit_(event: str, *, exception: BaseException | None = None, **kw: Any) -> dict[str, Any]:
        start = stream.tell()
        logger = structlog.get_logger()
        if exception is not None:
            try:
                raise exception
            except type(exception):
                logger.exception(event, **kw)
        else:
            logger.info(event, **kw)
        lines = stream.getvalue()[start:].splitlines()
        assert len(lines) == 1
        return json.loads(lines[0])

    yield emit_
    structlog.reset_defaults()


def test_lines_are_json_with_event_level_and_timestamp(emit: Emit) -> None:
    line = emit("report_ingested", asset="web-01", seq=7)
    assert line["event"] == "report_ingested" and line["level"] == "info"
    assert (line["asset"], line["seq"]) == ("web-01", 7)
    assert line["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "key", ["token", "password", "community", "authorization", "Authorization", "snmp_community", "db_password", "secret"]
)
def test_values_of_secret_keys_are_masked(emit: Emit, key: str) -> None:
    line = emit("event", **{key: "hunter2-value"})
    assert line[key] == log.REDACTED
    assert "hunter2-value" not in json.dumps(line)


def test_a_token_inside_a_message_string_is_masked(emit: Emit) -> None:
    line = emit(f"agent started with {TOKEN} from env", detail=f"token={TOKEN};")
    assert line["event"] == f"agent started with {log.REDACTED} from env"
    assert line["detail"] == f"token={log.REDACTED};"


def test_a_token_inside_nested_values_is_masked(emit: Emit) -> None:
    line = emit("event", argv=["schoolops-agent", "--token", TOKEN], headers={"X-Token": "abc", "Host": "c"})
    assert line["argv"] == ["schoolops-agent", "--token", log.REDACTED]
    assert line["headers"] == {"X-Token": log.REDACTED, "Host": "c"}
    assert TOKEN.split(".")[1] not in json.dumps(line)


@pytest.mark.parametrize("text", ["Bearer xyz", "bearer xyz", "Authorization: Bearer xyz"])
def test_a_bearer_credential_in_text_is_masked(emit: Emit, text: str) -> None:
    line = emit("request", header=text)
    assert line["header"] == text.replace("xyz", log.REDACTED)


@pytest.mark.parametrize(
    "key, value",
    [("token_file", "/etc/schoolops/token"), ("token_id", "0a1b2c3d4e5f"), ("password_path", "/run/pw"),
     ("community_name", "campus")],
)
def test_keys_that_name_where_a_secret_is_are_not_masked(emit: Emit, key: str, value: str) -> None:
    assert emit("event", **{key: value})[key] == value


def test_ordinary_values_pass_through_unchanged(emit: Emit) -> None:
    line = emit("report_applied", asset="web-01", note="so_short.x", count=3, ok=True, ratio=0.5)
    assert (line["note"], line["count"], line["ok"], line["ratio"]) == ("so_short.x", 3, True, 0.5)


def test_context_bound_at_the_call_site_is_redacted_too(emit: Emit) -> None:
    structlog.contextvars.bind_contextvars(password="from-context")
    try:
        line = emit("event")
    finally:
        structlog.contextvars.clear_contextvars()
    assert line["password"] == log.REDACTED


def test_a_token_in_an_exception_message_is_masked_in_the_traceback(emit: Emit) -> None:
    line = emit("ship_failed", exception=RuntimeError(f"collector refused {TOKEN}"))
    assert "RuntimeError" in line["exception"]
    assert TOKEN not in json.dumps(line)


def test_the_level_filter_drops_lower_levels() -> None:
    stream = io.StringIO()
    log.configure(level="warning", fmt="json", stream=stream)
    try:
        logger = structlog.get_logger()
        logger.info("quiet")
        logger.warning("loud")
    finally:
        structlog.reset_defaults()
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["loud"]
