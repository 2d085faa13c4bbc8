"""The agent's on-disk outbox (agent/spool.py) and its remembered state (agent/state.py), on a real filesystem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent import AgentError
from agent.spool import Spool
from agent.state import AgentState

NOW = 1_700_000_000.0
DAY = 86_400.0


class Clock:
    """An injected clock a test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spool(directory: Path, *, max_bytes: int = 1 << 20, max_age: float = 7 * DAY, clock: Clock | None = None) -> Spool:
    return Spool(directory, max_bytes=max_bytes, max_age=max_age, clock=clock or Clock())


def body(seq: int, size: int = 100) -> bytes:
    head = f'{{"seq":{seq},"pad":"'.encode()
    return head + b"x" * (size - len(head) - 2) + b'"}'


def drain(s: Spool) -> list[int]:
    delivered = []
    while (item := s.oldest()) is not None:
        delivered.append(item[0])
        s.remove(item[0])
    return delivered


def age(s: Spool, seq: int, mtime: float) -> None:
    """Set a spooled report's modification time, as if it had been written then."""
    path = next(p for p in s.directory.iterdir() if p.name.endswith(".json") and int(p.stem) == seq)
    os.utime(path, (mtime, mtime))


# --- order -----------------------------------------------------------------------------------


def test_oldest_returns_the_lowest_seq_and_its_body(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    for seq in (3, 1, 2):
        s.put(seq, body(seq))
    assert s.oldest() == (1, body(1))


def test_delivery_order_is_numeric_across_digit_counts(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    for seq in (10, 9, 100, 11, 2, 1000):
        s.put(seq, body(seq))
    assert s.last_seq() == 1000
    assert drain(s) == [2, 9, 10, 11, 100, 1000]
    assert s.oldest() is None and s.last_seq() == 0 and s.stats() == (0, 0)


def test_remove_takes_out_only_that_report(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    for seq in (1, 2, 3):
        s.put(seq, body(seq))
    s.remove(2)
    s.remove(42)  # not spooled: nothing happens
    assert drain(s) == [1, 3]


def test_stats_count_reports_and_bytes(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    s.put(1, body(1, 100))
    s.put(2, body(2, 250))
    assert s.stats() == (2, 350)


def test_putting_the_same_seq_again_replaces_it(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    s.put(5, b'{"old":1}')
    s.put(5, b'{"new":1}')
    assert s.stats()[0] == 1
    assert s.oldest() == (5, b'{"new":1}')


def test_files_that_are_not_spooled_reports_are_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    s = spool(directory)
    s.put(4, body(4))
    (directory / "notes.json").write_text("{}")
    (directory / "README").write_text("hello")
    assert s.stats() == (1, 100)
    assert drain(s) == [4]


# --- size bound ------------------------------------------------------------------------------


def test_the_size_bound_drops_the_oldest_first_and_says_how_many(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool", max_bytes=350)
    assert [s.put(seq, body(seq)) for seq in (1, 2, 3)] == [0, 0, 0]
    assert s.put(4, body(4)) == 1  # 400 bytes > 350: seq 1 goes
    assert s.put(5, body(5, 250)) == 2  # 550 bytes: seq 2 and 3 go (3+4+5 = 450, 4+5 = 350)
    assert drain(s) == [4, 5]


def test_the_size_bound_never_drops_the_newest_report(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool", max_bytes=250)
    assert s.put(1, body(1)) == s.put(2, body(2)) == 0
    assert s.put(3, body(3, 1000)) == 2  # larger than the whole bound on its own
    assert s.oldest() == (3, body(3, 1000))
    assert s.stats() == (1, 1000)


def test_a_spool_within_its_bounds_drops_nothing(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool", max_bytes=1000)
    assert sum(s.put(seq, body(seq)) for seq in range(1, 11)) == 0
    assert s.stats() == (10, 1000)


# --- age bound -------------------------------------------------------------------------------


def test_the_age_bound_drops_reports_older_than_max_age(tmp_path: Path) -> None:
    clock = Clock()
    s = spool(tmp_path / "spool", max_age=DAY, clock=clock)
    for seq in (1, 2, 3):
        s.put(seq, body(seq))
    age(s, 1, NOW - 3 * DAY)
    age(s, 2, NOW - 2 * DAY)
    age(s, 3, NOW - DAY / 2)
    assert s.put(4, body(4)) == 2  # seq 1 and 2 are older than a day
    assert s.enforce_bounds() == 0
    assert drain(s) == [3, 4]


def test_the_age_bound_counts_what_it_drops_as_the_clock_moves(tmp_path: Path) -> None:
    clock = Clock()
    s = spool(tmp_path / "spool", max_age=DAY, clock=clock)
    for seq in (1, 2, 3):
        s.put(seq, body(seq))
        age(s, seq, NOW - DAY + seq * 3600)  # seq 1 is 23h old, seq 2 22h, seq 3 21h
    assert s.enforce_bounds() == 0
    clock.now = NOW + 2 * 3600 + 1  # seq 1 and 2 are now older than a day
    assert s.enforce_bounds() == 2
    assert drain(s) == [3]


def test_the_age_bound_keeps_the_newest_report_however_old(tmp_path: Path) -> None:
    clock = Clock()
    s = spool(tmp_path / "spool", max_age=DAY, clock=clock)
    s.put(1, body(1))
    s.put(2, body(2))
    clock.now = NOW + 365 * DAY
    age(s, 1, NOW)
    age(s, 2, NOW)
    assert s.enforce_bounds() == 1
    assert drain(s) == [2]


# --- crash and restart -----------------------------------------------------------------------


def test_a_leftover_temp_file_from_a_crash_is_removed_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    s = spool(directory)
    s.put(1, body(1))
    # what write_atomic leaves when the process dies between write and rename
    leftover = directory / ".00000000000000000002.json.tmp"
    leftover.write_bytes(b'{"seq":2,"trunc')
    restarted = spool(directory)
    assert not leftover.exists()
    assert drain(restarted) == [1]


def test_a_new_spool_over_the_same_directory_sees_the_pending_reports(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    first = spool(directory)
    for seq in (7, 8, 9, 10):
        first.put(seq, body(seq))
    first.remove(7)
    restarted = spool(directory)
    assert restarted.stats() == first.stats() == (3, 300)
    assert restarted.last_seq() == 10
    assert restarted.oldest() == (8, body(8))
    assert drain(restarted) == [8, 9, 10]


def test_the_spool_directory_is_created_private(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "spool"
    spool(directory)
    assert directory.is_dir()
    assert directory.stat().st_mode & 0o077 == 0


def test_spooled_reports_are_private_files(tmp_path: Path) -> None:
    s = spool(tmp_path / "spool")
    s.put(1, body(1))
    (path,) = (tmp_path / "spool").iterdir()
    assert path.stat().st_mode & 0o777 == 0o600


# --- agent state -----------------------------------------------------------------------------


def test_state_round_trips_through_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = AgentState.load(path)
    state.next_seq()
    state.next_seq()
    state.dropped_total, state.replayed_total, state.replay_floor = 4, 9, 2
    state.probes = {"logs": {"auth": {"inode": 1234, "offset": 99}}}
    state.save()
    loaded = AgentState.load(path)
    assert (loaded.stream, loaded.last_seq) == (state.stream, 2)
    assert (loaded.dropped_total, loaded.replayed_total, loaded.replay_floor) == (4, 9, 2)
    assert loaded.probes == {"logs": {"auth": {"inode": 1234, "offset": 99}}}


def test_a_missing_state_file_starts_a_new_stream_at_seq_one(tmp_path: Path) -> None:
    first = AgentState.load(tmp_path / "state.json")
    second = AgentState.load(tmp_path / "other.json")
    assert first.stream != second.stream
    assert len(first.stream) == 32 and int(first.stream, 16) >= 0
    assert first.next_seq() == 1


def test_the_stream_is_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = AgentState.load(path)
    state.save()
    assert AgentState.load(path).stream == state.stream


def test_next_seq_never_goes_backwards(tmp_path: Path) -> None:
    state = AgentState.load(tmp_path / "state.json")
    assert [state.next_seq() for _ in range(3)] == [1, 2, 3]
    assert state.next_seq(at_least=10) == 11  # e.g. the spool holds up to 10
    assert state.next_seq(at_least=2) == 12  # a lower floor does not rewind
    assert state.next_seq() == 13
    state.save()
    assert AgentState.load(state.path).next_seq() == 14


def test_the_state_file_is_written_atomically_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = AgentState.load(path)
    state.save()
    state.next_seq()
    state.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["last_seq"] == 1


@pytest.mark.parametrize("content", [b"", b'{"stream": "ab', b"\x00\x00\x00", b"\xff\xfe"])
def test_a_corrupt_state_file_raises_agent_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(AgentError) as info:
        AgentState.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", [b"{}", b"null", b"[]", b'{"stream": "ab", "last_seq": "many"}'], ids=["empty", "null", "list", "bad-int"]
)
def test_a_state_file_of_the_wrong_shape_raises_agent_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(AgentError, match=str(path)):
        AgentState.load(path)
