"""Watched processes, ports and files, against real processes, sockets and files."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.config import ProbesConfig
from agent.probes import ProbeState
from agent.probes.files import FileFreshnessProbe
from agent.probes.processes import PortProbe, ProcessProbe, listening_ports, listening_ports_from_proc
from schoolops import wire
from tests.agent.probe_helpers import assert_wire, built, probes_config

NOW = 1_750_000_000.0
HOUR = 3600.0
def test_nothing_to_watch_builds_no_probes() -> None:
    config, state = ProbesConfig(), ProbeState()
    assert ProcessProbe.build(config, state) is None
    assert PortProbe.build(config, state) is None
    assert FileFreshnessProbe.build(config, state) is None


# --- processes ---------------------------------------------------------------------------------


@pytest.fixture
def marker() -> str:
    """A sleep duration no other process on this machine uses, to tell our sleeps apart."""
    return f"{uuid.uuid4().int % 10**6 + 10**6}.25"


def start_sleep(marker: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["sleep", marker])
    for _ in range(200):  # until exec has replaced the forked Python with sleep
        if psutil.Process(proc.pid).name() == "sleep":
            return proc
        time.sleep(0.005)
    raise AssertionError("sleep did not start")


@pytest.fixture
def sleepers(marker: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_sleep(marker), start_sleep(marker)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_process_probe_counts_matching_processes_until_they_end(
    marker: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    config = probes_config(
        processes=[
            {"name": "sleeper", "process_name": "sleep", "cmdline_contains": marker},
            {"name": "sleep"},  # process name defaults to the watch name
            {"name": "print-server", "process_name": "cupsd-not-installed-here"},
            {"name": "other-sleep", "process_name": "sleep", "cmdline_contains": f"{marker}9"},
        ]
    )
    probe = built(ProcessProbe.build, config, ProbeState())
    sleeper, any_sleep, absent, other = probe.collect()
    assert (sleeper.name, sleeper.running, sleeper.count) == ("sleeper", True, 2)
    assert sleeper.rss_bytes >= sum(psutil.Process(p.pid).memory_info().rss for p in sleepers) > 0
    assert sleeper.cpu_seconds >= 0
    assert any_sleep.running and any_sleep.count >= 2
    assert (absent.running, absent.count, absent.cpu_seconds, absent.rss_bytes) == (False, 0, 0.0, 0)
    assert not other.running
    assert_wire("processes", [sleeper, any_sleep, absent, other])

    sleepers[0].kill()
    sleepers[0].wait()
    assert probe.collect()[0].count == 1
    sleepers[1].kill()
    sleepers[1].wait()
    sleeper = probe.collect()[0]
    assert (sleeper.running, sleeper.count, sleeper.rss_bytes) == (False, 0, 0)


def test_a_zombie_is_not_running(marker: str) -> None:
    proc = start_sleep(marker)
    proc.kill()
    for _ in range(200):  # killed but not yet reaped: a zombie
        if psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.005)
    try:
        config = probes_config(processes=[{"name": "sleep", "cmdline_contains": marker}])
        probe = built(ProcessProbe.build, config, ProbeState())
        assert probe.collect()[0].running is False
    finally:
        proc.wait()


# --- ports -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_probe_sees_a_listening_socket_and_not_a_closed_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        open_port = server.getsockname()[1]
        closed_port = free_port()
        config = probes_config(ports=[{"port": open_port, "name": "web"}, {"port": closed_port}])
        probe = built(PortProbe.build, config, ProbeState())
        web, closed = probe.collect()
        assert (web.name, web.port, web.listening) == ("web", open_port, True)
        assert (closed.name, closed.port, closed.listening) == (f"tcp/{closed_port}", closed_port, False)
        assert_wire("ports", [web, closed])
    assert probe.collect()[0].listening is False  # the server is closed now


def test_port_probe_sees_an_ipv6_listener() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with server:
        port = server.getsockname()[1]
        probe = built(PortProbe.build, probes_config(ports=[{"port": port}]), ProbeState())
        assert probe.collect()[0].listening is True


def test_a_connected_but_not_listening_port_does_not_count() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        client_port = client.getsockname()[1]
        assert server.getsockname()[1] in listening_ports()
        assert client_port not in listening_ports()


def test_reading_proc_agrees_with_psutil() -> None:
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("not Linux")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        from_proc = listening_ports_from_proc(["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/no-such-table"])
        from_psutil = {c.laddr.port for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        assert port in from_proc
        assert from_proc == from_psutil


# --- files -------------------------------------------------------------------------------------


def touch(path: Path, age: float, now: float = NOW) -> Path:
    path.write_bytes(b"backup")
    os.utime(path, (now - age, now - age))
    return path


def freshness(watches: list[dict[str, Any]]) -> list[wire.FileFreshness]:
    config = probes_config(files=watches)
    probe = FileFreshnessProbe(config.files, clock=lambda: NOW)
    result = probe.collect()
    assert_wire("files", result)
    return result


def test_newest_matching_file_in_a_directory_decides(tmp_path: Path) -> None:
    touch(tmp_path / "mon.tar.gz", age=49 * HOUR)
    newest = touch(tmp_path / "tue.tar.gz", age=2 * HOUR)
    touch(tmp_path / "notes.txt", age=60)  # does not match the pattern
    (tmp_path / "wed.tar.gz").mkdir()  # a directory: not a file
    (tmp_path / "nested").mkdir()
    touch(tmp_path / "nested" / "thu.tar.gz", age=60)  # not recursive
    fresh, stale = freshness(
        [
            {"name": "backups", "path": str(tmp_path), "pattern": "*.tar.gz", "max_age": "26h"},
            {"name": "hourly", "path": str(tmp_path), "pattern": "*.tar.gz", "max_age": "1h"},
        ]
    )
    assert (fresh.count, fresh.fresh, fresh.newest_file, fresh.newest_age_seconds) == (2, True, str(newest), 2 * HOUR)
    assert fresh.max_age_seconds == 26 * HOUR and fresh.error is None
    assert (stale.count, stale.fresh, stale.newest_age_seconds) == (2, False, 2 * HOUR)


def test_a_single_file_is_checked_by_its_own_age(tmp_path: Path) -> None:
    export = touch(tmp_path / "attendance.csv", age=600)
    [result] = freshness([{"name": "attendance", "path": str(export), "max_age": "15m"}])
    assert (result.count, result.fresh, result.newest_age_seconds, result.newest_file) == (1, True, 600.0, str(export))


def test_a_file_from_the_future_is_fresh_with_age_zero(tmp_path: Path) -> None:
    touch(tmp_path / "skewed.bak", age=-300)
    [result] = freshness([{"name": "skewed", "path": str(tmp_path), "max_age": "1m"}])
    assert (result.fresh, result.newest_age_seconds) == (True, 0.0)


def test_an_empty_directory_is_not_fresh(tmp_path: Path) -> None:
    touch(tmp_path / "readme.txt", age=0)
    [result] = freshness([{"name": "backups", "path": str(tmp_path), "pattern": "*.bak", "max_age": "1d"}])
    assert (result.count, result.fresh, result.newest_file, result.error) == (0, False, None, None)


def test_a_missing_directory_is_an_error_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nas" / "backups"
    [result] = freshness([{"name": "backups", "path": str(missing), "max_age": "1d"}])
    assert (result.count, result.fresh) == (0, False)
    assert result.error == f"{missing} does not exist"


def test_freshness_uses_the_real_clock_by_default(tmp_path: Path) -> None:
    touch(tmp_path / "now.bak", age=5, now=time.time())
    config = probes_config(files=[{"name": "b", "path": str(tmp_path), "max_age": "1h"}])
    probe = built(FileFreshnessProbe.build, config, ProbeState())
    [result] = probe.collect()
    assert result.fresh and result.newest_age_seconds is not None and 0 <= result.newest_age_seconds < 3600
