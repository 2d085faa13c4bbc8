"""The agent's log lines: the collector's structlog lines, field for field, secrets redacted the same way."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from agent import log as agent_log
from schoolops import log

TOKEN = "so_0a1b2c3d4e5f." + "Zx9_-Qw3" * 5 + "abc"


@pytest.fixture
def agent_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    agent_log.configure(level="debug", fmt="json", stream=stream)
    yield stream
    agent_log.configure()


def _structlog_line(event: str, **fields: Any) -> dict[str, Any]:
    stream = io.StringIO()
    log.configure(level="debug", fmt="json", stream=stream)
    try:
        structlog.get_logger().warning(event, **fields)
    finally:
        structlog.reset_defaults()
    return json.loads(stream.getvalue())


FIELDS: list[dict[str, Any]] = [
    {"probe": "cpu", "error": "boom"},
    {"status": 401, "reason": f"token {TOKEN} refused", "retry_in": 1.5},
    {"token": "hunter2", "token_file": "/etc/schoolops/agent.token", "headers": {"Authorization": "Bearer x"}},
    {"argv": ["schoolops-agent", "--token", TOKEN], "detail": "Bearer abc", "path": None, "ok": True},
]


@pytest.mark.parametrize("fields", FIELDS)
def test_json_lines_match_the_collectors(agent_stream: io.StringIO, fields: dict[str, Any]) -> None:
    agent_log.get_logger("schoolops.agent").warning("report_send_failed", **fields)
    ours = json.loads(agent_stream.getvalue())
    theirs = _structlog_line("report_send_failed", **fields)
    assert list(ours) == list(theirs)  # the same keys in the same order
    assert ours["timestamp"].endswith("Z") and len(ours["timestamp"]) == len(theirs["timestamp"])
    del ours["timestamp"], theirs["timestamp"]
    assert ours == theirs
    assert TOKEN not in agent_stream.getvalue() and "hunter2" not in agent_stream.getvalue()


def test_the_level_filter_drops_lower_levels() -> None:
    stream = io.StringIO()
    agent_log.configure(level="warning", fmt="json", stream=stream)
    try:
        logger = agent_log.get_logger("schoolops.agent")
        logger.info("quiet")
        logger.warning("loud")
        logger.error("louder")
    finally:
        agent_log.configure()
    assert [json.loads(line)["level"] for line in stream.getvalue().splitlines()] == ["warning", "error"]


def test_an_exception_is_logged_with_its_traceback_redacted(agent_stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"collector refused {TOKEN}")
    except RuntimeError:
        agent_log.get_logger("schoolops.agent").exception("ship_failed")
    line = json.loads(agent_stream.getvalue())
    assert line["level"] == "error" and "RuntimeError" in line["exception"]
    assert TOKEN not in agent_stream.getvalue()


def test_the_console_line_reads_like_the_collectors() -> None:
    stream = io.StringIO()
    agent_log.configure(level="info", fmt="console", stream=stream)
    try:
        agent_log.get_logger("schoolops.agent").warning("probe_failed", probe="cpu", error="boom x", n=3)
    finally:
        agent_log.configure()
    line = stream.getvalue().rstrip("\n")
    assert line.endswith(" [warning  ] probe_failed                   error='boom x' n=3 probe=cpu")
