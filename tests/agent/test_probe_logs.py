"""The log probe against real files: appends, restarts, rotation by rename and by copytruncate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pytest

from agent.config import ProbesConfig
from agent.probes import ProbeState
from agent.probes.logs import LogWatchProbe
from schoolops import wire
from tests.agent.probe_helpers import assert_wire, built, probes_config

PATTERNS = ["Failed password", "ERROR"]
def log_config(path: Path, **watch: Any) -> ProbesConfig:
    return probes_config(logs=[{"name": "auth", "path": str(path), "patterns": PATTERNS, **watch}])


def restarted(state: ProbeState) -> ProbeState:
    """The state as a new agent process reads it back from its state file."""
    return ProbeState(json.loads(json.dumps(state.data)))


def collect(probe: LogWatchProbe) -> wire.LogWatch:
    result = probe.collect()
    assert_wire("logs", result)
    [watch] = result
    return watch


def lines(probe: LogWatchProbe) -> list[str]:
    return [line.line for line in collect(probe).lines]


def write(handle: IO[str], *texts: str) -> None:
    handle.write("".join(f"{text}\n" for text in texts))
    handle.flush()


def append(path: Path, *texts: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        write(handle, *texts)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "auth.log"
    path.write_text("ERROR from before the agent started\n", encoding="utf-8")
    return path


def test_no_logs_configured_builds_no_probe() -> None:
    assert LogWatchProbe.build(ProbesConfig(), ProbeState()) is None


def test_first_run_starts_at_the_end_then_reports_each_new_match_once(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    assert lines(probe) == []
    append(log, "sshd: Failed password for root", "sshd: Accepted publickey for admin", "cron: ERROR disk full")
    watch = collect(probe)
    assert [(line.pattern, line.line) for line in watch.lines] == [
        ("Failed password", "sshd: Failed password for root"),
        ("ERROR", "cron: ERROR disk full"),
    ]
    assert (watch.matches_total, watch.suppressed, watch.error) == (2, 0, None)
    assert lines(probe) == []


def test_a_line_matching_several_patterns_counts_once(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    append(log, "ERROR: Failed password")
    watch = collect(probe)
    assert [line.pattern for line in watch.lines] == ["Failed password"] and watch.matches_total == 1


def test_rate_limit_reports_max_lines_and_counts_the_rest(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log, max_lines=2), ProbeState())
    collect(probe)
    append(log, *(f"ERROR {i}" for i in range(5)), "all fine")
    watch = collect(probe)
    assert [line.line for line in watch.lines] == ["ERROR 0", "ERROR 1"]
    assert (watch.suppressed, watch.matches_total) == (3, 5)
    append(log, "ERROR 5")
    watch = collect(probe)
    assert (len(watch.lines), watch.suppressed, watch.matches_total) == (1, 0, 6)


def test_a_restart_neither_repeats_nor_skips_lines(log: Path) -> None:
    state = ProbeState()
    first = built(LogWatchProbe.build, log_config(log), state)
    collect(first)
    append(log, "ERROR one")
    assert lines(first) == ["ERROR one"]
    first.close()
    append(log, "ERROR two, written while the agent was down")
    second = built(LogWatchProbe.build, log_config(log), restarted(state))
    watch = collect(second)
    assert [line.line for line in watch.lines] == ["ERROR two, written while the agent was down"]
    assert watch.matches_total == 2  # the counter goes on
    append(log, "ERROR three")
    assert lines(second) == ["ERROR three"]


def test_a_partial_last_line_waits_for_its_end(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    with log.open("a", encoding="utf-8") as handle:
        handle.write("ERROR half a li")
        handle.flush()
        assert lines(probe) == []
        handle.write("ne\r\nERROR next\n")
        handle.flush()
    assert lines(probe) == ["ERROR half a line", "ERROR next"]


def test_invalid_utf8_is_replaced_not_fatal(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    with log.open("ab") as handle:
        handle.write(b"ERROR bad bytes \xff\xfe here\n")
    assert lines(probe) == ["ERROR bad bytes \ufffd\ufffd here"]


def test_a_long_line_is_cut_to_the_wire_limit(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    append(log, "ERROR " + "x" * 10_000)
    [line] = lines(probe)
    assert len(line) == 4096 and line.startswith("ERROR xxx")


def test_a_missing_log_is_an_error_and_is_read_from_its_start_once_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    probe = built(LogWatchProbe.build, log_config(path), ProbeState())
    watch = collect(probe)
    assert watch.error == f"{path} does not exist" and watch.lines == []
    append(path, "ERROR first line of a new log")
    watch = collect(probe)
    assert [line.line for line in watch.lines] == ["ERROR first line of a new log"] and watch.error is None


def test_a_directory_instead_of_a_log_is_an_error(tmp_path: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(tmp_path), ProbeState())
    assert collect(probe).error == f"{tmp_path} is not a regular file"


def test_a_big_backlog_is_read_in_bounded_pieces_exactly_once(log: Path) -> None:
    state = ProbeState()
    probe = LogWatchProbe(log_config(log).logs, state.section("logs"), max_bytes=100)
    collect(probe)
    expected = [f"ERROR line {i:03d} padding padding" for i in range(20)]  # 32 bytes a line
    append(log, *expected)
    seen: list[str] = []
    for _ in range(10):
        got = lines(probe)
        assert len(got) <= 3
        seen += got
    assert seen == expected


def test_rotation_by_copytruncate_restarts_at_the_beginning(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    append(log, "ERROR before the copy, a long line to make the old offset large")
    assert lines(probe) == ["ERROR before the copy, a long line to make the old offset large"]
    shutil.copy(log, log.with_name("auth.log.1"))
    with log.open("r+") as handle:
        handle.truncate(0)
    append(log, "ERROR after")
    assert lines(probe) == ["ERROR after"]


def test_copytruncate_while_the_agent_was_down(log: Path) -> None:
    state = ProbeState()
    probe = built(LogWatchProbe.build, log_config(log), state)
    collect(probe)
    append(log, "ERROR " + "x" * 200)
    collect(probe)
    probe.close()
    with log.open("r+") as handle:
        handle.truncate(0)
    append(log, "ERROR short")
    assert lines(built(LogWatchProbe.build, log_config(log), restarted(state))) == ["ERROR short"]


def test_copytruncate_is_noticed_even_when_the_log_regrew_past_the_old_offset(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    append(log, "ERROR old")
    assert lines(probe) == ["ERROR old"]
    with log.open("r+") as handle:
        handle.truncate(0)
    new = [f"ERROR new {i} after the truncation" for i in range(5)]
    append(log, *new)
    assert lines(probe) == new


def test_a_new_log_that_reused_the_deleted_logs_inode_is_read_from_its_start(log: Path) -> None:
    state = ProbeState()
    probe = built(LogWatchProbe.build, log_config(log), state)
    collect(probe)
    probe.close()
    inode = log.stat().st_ino
    log.unlink()
    new = [f"ERROR {i} in a new file, longer than the old one" for i in range(5)]
    append(log, *new)
    if log.stat().st_ino != inode:
        pytest.skip("the filesystem gave the new log another inode")
    assert lines(built(LogWatchProbe.build, log_config(log), restarted(state))) == new


@pytest.mark.parametrize("restart_before", [None, 1, 2, 3, 4, 5])
def test_rotation_by_rename_reports_every_line_exactly_once(log: Path, restart_before: int | None) -> None:
    """A daemon keeps writing through its old handle for a while after ``mv auth.log auth.log.1``."""
    config = log_config(log)
    state = ProbeState()
    probe = built(LogWatchProbe.build, config, state)
    collect(probe)
    reported: list[str] = []
    errors: list[str | None] = []

    def collect_step(number: int) -> None:
        nonlocal probe, state
        if number == restart_before:
            probe.close()
            state = restarted(state)
            probe = built(LogWatchProbe.build, config, state)
        watch = collect(probe)
        reported.extend(line.line for line in watch.lines)
        errors.append(watch.error)

    with log.open("a", encoding="utf-8") as daemon_old:
        write(daemon_old, "ERROR a1")
        collect_step(0)
        log.rename(log.with_name("auth.log.1"))
        write(daemon_old, "ERROR a2")  # rotated, and no new log yet
        collect_step(1)
        with log.open("a", encoding="utf-8") as daemon_new:
            write(daemon_old, "ERROR a3")
            write(daemon_new, "ERROR b1")
            collect_step(2)
            write(daemon_old, "ERROR a4")  # the daemon has not reopened its log yet
            write(daemon_new, "ERROR b2")
            collect_step(3)
            collect_step(4)  # the old file has stopped growing
            write(daemon_new, "ERROR b3")
            collect_step(5)
    assert reported == ["ERROR a1", "ERROR a2", "ERROR a3", "ERROR b1", "ERROR a4", "ERROR b2", "ERROR b3"]
    assert errors[1] == f"{log} does not exist" and errors[2:] == [None] * 4
    assert "rotated" not in state.data["logs"]["auth"]  # the old file was let go once it stopped growing
    assert collect(probe).matches_total == 7


def test_rotation_while_the_agent_was_down(log: Path) -> None:
    state = ProbeState()
    probe = built(LogWatchProbe.build, log_config(log), state)
    collect(probe)
    append(log, "ERROR seen")
    assert lines(probe) == ["ERROR seen"]
    probe.close()
    append(log, "ERROR written before the rotation")
    log.rename(log.with_name("auth.log.1"))
    append(log, "ERROR in the new log")
    probe = built(LogWatchProbe.build, log_config(log), restarted(state))
    assert lines(probe) == ["ERROR written before the rotation", "ERROR in the new log"]


def test_rotated_twice_within_one_interval(log: Path) -> None:
    probe = built(LogWatchProbe.build, log_config(log), ProbeState())
    collect(probe)
    append(log, "ERROR 1")
    log.rename(log.with_name("auth.log.1"))
    append(log, "ERROR 2")
    assert lines(probe) == ["ERROR 1", "ERROR 2"]
    append(log, "ERROR 3")
    os.rename(log.with_name("auth.log.1"), log.with_name("auth.log.2"))
    log.rename(log.with_name("auth.log.1"))
    append(log, "ERROR 4")
    assert lines(probe) == ["ERROR 3", "ERROR 4"]


def test_a_rotated_file_deleted_while_the_agent_was_down_is_given_up(log: Path) -> None:
    state = ProbeState()
    probe = built(LogWatchProbe.build, log_config(log), state)
    collect(probe)
    probe.close()
    append(log, "ERROR lost with the deleted file")
    log.unlink()
    append(log, "ERROR new")
    assert lines(built(LogWatchProbe.build, log_config(log), restarted(state))) == ["ERROR new"]


def test_state_of_a_watch_no_longer_configured_is_dropped(log: Path, tmp_path: Path) -> None:
    state = ProbeState()
    collect(built(LogWatchProbe.build, log_config(log), state))
    other = probes_config(logs=[{"name": "syslog", "path": str(tmp_path / "syslog"), "patterns": ["x"]}])
    built(LogWatchProbe.build, other, state).collect()
    assert set(state.section("logs")) == {"syslog"}
