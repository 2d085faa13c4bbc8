"""The command probe runs real plugin scripts; the perfdata parser is checked against plugin output."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.config import ProbesConfig
from agent.probes import ProbeState
from agent.probes.commands import CommandProbe, parse_output, parse_perfdata
from schoolops import wire
from schoolops.wire import CheckStatus, PerfData
from tests.agent.probe_helpers import assert_wire, built, probes_config

def plugin(directory: Path, name: str, body: str, mode: int = 0o755) -> str:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(mode)
    return str(path)


def run(*commands: dict[str, Any]) -> list[wire.CommandCheck]:
    probe = built(CommandProbe.build, probes_config(commands=list(commands)), ProbeState())
    assert probe is not None
    checks = probe.collect()
    assert_wire("commands", checks)
    return checks


def gone(pid: int) -> bool:
    """No such process any more (a zombie waiting for an init that does not reap counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_no_commands_builds_no_probe() -> None:
    assert CommandProbe.build(ProbesConfig(), ProbeState()) is None


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, CheckStatus.OK), (1, CheckStatus.WARNING), (2, CheckStatus.CRITICAL), (3, CheckStatus.UNKNOWN)],
)
def test_exit_code_is_the_status_and_perfdata_is_parsed(tmp_path: Path, code: int, status: CheckStatus) -> None:
    script = plugin(
        tmp_path,
        "check_disk",
        f"echo \"DISK {status.name} - free space: / 3326 MB (56%)|/=2643MB;5948;5958;0;5968 'free %'=56%;;;0;100\"\n"
        f"exit {code}",
    )
    [check] = run({"name": "disk", "argv": [script]})
    assert (check.name, check.status, check.timed_out) == ("disk", status, False)
    assert check.output == f"DISK {status.name} - free space: / 3326 MB (56%)"
    assert check.perfdata == [
        PerfData(label="/", value=2643, uom="MB", warn="5948", crit="5958", min=0, max=5968),
        PerfData(label="free %", value=56, uom="%", min=0, max=100),
    ]
    assert check.duration_seconds >= 0


def test_long_output_perfdata_is_collected_too(tmp_path: Path) -> None:
    script = plugin(
        tmp_path,
        "check_users",
        "printf 'USERS OK - 3 users | users=3;20;50;0\\nalice\\nbob | sessions=4\\nttys=2c\\n'",
    )
    [check] = run({"name": "users", "argv": [script]})
    assert check.output == "USERS OK - 3 users"
    perfdata = [(p.label, p.value, p.uom) for p in check.perfdata]
    assert perfdata == [("users", 3, ""), ("sessions", 4, ""), ("ttys", 2, "c")]


def test_arguments_are_passed_without_a_shell(tmp_path: Path) -> None:
    script = plugin(tmp_path, "check_echo", 'echo "OK - got [$1]"')
    [check] = run({"name": "echo", "argv": [script, "$(touch pwned); *"]})
    assert check.output == "OK - got [$(touch pwned); *]"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_plugin_reads_no_stdin(tmp_path: Path) -> None:
    body = 'if read line; then echo "CRITICAL - read $line"; exit 2; fi\necho "OK - eof"'
    script = plugin(tmp_path, "check_stdin", body)
    [check] = run({"name": "stdin", "argv": [script]})
    assert (check.status, check.output) == (CheckStatus.OK, "OK - eof")


def test_an_exit_code_beyond_3_is_unknown_with_a_note(tmp_path: Path) -> None:
    script = plugin(tmp_path, "check_odd", "echo 'something odd'\nexit 7")
    [check] = run({"name": "odd", "argv": [script]})
    assert check.status is CheckStatus.UNKNOWN
    assert check.output == "exit code 7 is not a plugin status: something odd"


def test_a_plugin_killed_by_a_signal_is_unknown(tmp_path: Path) -> None:
    script = plugin(tmp_path, "check_crash", "echo 'about to crash'\nkill -SEGV $$")
    [check] = run({"name": "crash", "argv": [script]})
    assert (check.status, check.output) == (CheckStatus.UNKNOWN, "killed by SIGSEGV: about to crash")


def test_stderr_stands_in_when_stdout_is_empty(tmp_path: Path) -> None:
    script = plugin(tmp_path, "check_broken", "echo 'check_broken: cannot connect to database' >&2\nexit 2")
    [check] = run({"name": "broken", "argv": [script]})
    assert (check.status, check.output) == (CheckStatus.CRITICAL, "check_broken: cannot connect to database")
    script = plugin(tmp_path, "check_silent", "exit 0")
    [check] = run({"name": "silent", "argv": [script]})
    assert check.output == "(No output returned from plugin)"


def test_a_huge_output_is_cut_to_the_wire_limit(tmp_path: Path) -> None:
    script = plugin(tmp_path, "check_chatty", "head -c 5000000 /dev/zero | tr '\\0' 'x'\nexit 1")
    [check] = run({"name": "chatty", "argv": [script]})
    assert check.status is CheckStatus.WARNING and check.output == "x" * 4096


def test_a_missing_or_non_executable_plugin_is_unknown_with_the_reason(tmp_path: Path) -> None:
    not_executable = plugin(tmp_path, "check_noexec", "echo OK", mode=0o644)
    missing = str(tmp_path / "check_missing")
    noexec, absent = run({"name": "noexec", "argv": [not_executable]}, {"name": "absent", "argv": [missing]})
    assert noexec.status is CheckStatus.UNKNOWN and absent.status is CheckStatus.UNKNOWN
    assert noexec.output == f"cannot run {not_executable}: Permission denied"
    assert absent.output == f"cannot run {missing}: No such file or directory"


def test_a_plugin_over_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    script = plugin(
        tmp_path,
        "check_hang",
        f"echo $$ > {tmp_path}/plugin.pid\nsleep 30 &\necho $! > {tmp_path}/child.pid\nwait",
    )
    [check] = run({"name": "hang", "argv": [script], "timeout": "1s"})
    assert (check.status, check.timed_out, check.output) == (CheckStatus.UNKNOWN, True, "timed out after 1s")
    assert check.duration_seconds >= 1
    pids = [int((tmp_path / name).read_text()) for name in ("plugin.pid", "child.pid")]
    deadline = time.monotonic() + 5
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(gone(pid) for pid in pids)


def test_plugins_run_concurrently(tmp_path: Path) -> None:
    # The first plugin can only finish once the second has run: one after the other, it would time out.
    marker = tmp_path / "second-ran"
    first = plugin(tmp_path, "check_first", f"while [ ! -e {marker} ]; do sleep 0.01; done\necho 'OK - first'")
    second = plugin(tmp_path, "check_second", f"touch {marker}\necho 'OK - second'")
    checks = run({"name": "first", "argv": [first], "timeout": "5s"}, {"name": "second", "argv": [second]})
    assert [(c.name, c.status, c.output) for c in checks] == [
        ("first", CheckStatus.OK, "OK - first"),
        ("second", CheckStatus.OK, "OK - second"),
    ]


# --- the perfdata parser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("time=0.002s;1;5;0", [PerfData(label="time", value=0.002, uom="s", warn="1", crit="5", min=0)]),
        ("rta=0.045ms;100.000;500.000;0; pl=0%;20;60;0;100", [
            PerfData(label="rta", value=0.045, uom="ms", warn="100.000", crit="500.000", min=0),
            PerfData(label="pl", value=0, uom="%", warn="20", crit="60", min=0, max=100),
        ]),
        ("'C:\\ used space'=12.5GB;40;45;0;50", [
            PerfData(label="C:\\ used space", value=12.5, uom="GB", warn="40", crit="45", min=0, max=50),
        ]),
        ("'it''s quoted'=1", [PerfData(label="it's quoted", value=1)]),
        ("load1=0.150;15.000;30.000;0; load5=0.100;10.000;25.000;0;", [
            PerfData(label="load1", value=0.15, warn="15.000", crit="30.000", min=0),
            PerfData(label="load5", value=0.1, warn="10.000", crit="25.000", min=0),
        ]),
        ("size=-1.5e3B;~:10;@5:20;;", [PerfData(label="size", value=-1500, uom="B", warn="~:10", crit="@5:20")]),
        ("inodes=100us bytes=2TB packets=7c", [
            PerfData(label="inodes", value=100, uom="us"),
            PerfData(label="bytes", value=2, uom="TB"),
            PerfData(label="packets", value=7, uom="c"),
        ]),
        ("  spaced=1 \t tabbed=2  ", [PerfData(label="spaced", value=1), PerfData(label="tabbed", value=2)]),
        ("unknown=U;1;2 ok=3", [PerfData(label="ok", value=3)]),  # "U": no value could be measured
        ("novalue= noequals also=bad=1 =5 ok=1", [PerfData(label="ok", value=1)]),
        ("huge=1e999 nan=nan ok=2;;;junk;7", [PerfData(label="ok", value=2, max=7)]),
        ("'label with space' =1 ok=4", [PerfData(label="ok", value=4)]),
        ("ok=5 'unterminated=3 more=4", [PerfData(label="ok", value=5)]),
        ("comma=1,5 ok=6", [PerfData(label="ok", value=6)]),
        ("rate=5.5MB/s temp=45°C", [
            PerfData(label="rate", value=5.5, uom="MB/s"),
            PerfData(label="temp", value=45, uom="°C"),
        ]),
        ("a=1;2;3;4;5;6;7", [PerfData(label="a", value=1, warn="2", crit="3", min=4, max=5)]),
    ],
)
def test_perfdata_parser(text: str, expected: list[PerfData]) -> None:
    assert parse_perfdata(text) == expected


def test_perfdata_items_are_bounded() -> None:
    items = parse_perfdata(" ".join(f"m{i}=1" for i in range(1000)) + " " + "'" + "l" * 500 + "'=1")
    assert len(items) == 256
    long_label = parse_perfdata("'" + "l" * 500 + "'=1;" + "9" * 100)
    assert long_label == [PerfData(label="l" * 128, value=1)]


@pytest.mark.parametrize(
    ("text", "output", "labels"),
    [
        ("OK\n", "OK", []),
        ("OK - all fine | a=1\n", "OK - all fine", ["a"]),
        ("WARNING - x\nline two\nline | b=2\nc=3\n", "WARNING - x", ["b", "c"]),
        ("CRITICAL - y | a=1\r\n", "CRITICAL - y", ["a"]),
        ("| a=1", "", ["a"]),
    ],
)
def test_output_and_perfdata_are_split_as_the_plugin_guidelines_say(text: str, output: str, labels: list[str]) -> None:
    text_out, perfdata = parse_output(text)
    assert text_out == output and [p.label for p in perfdata] == labels


def test_results_follow_config_order_and_names(tmp_path: Path) -> None:
    scripts = [plugin(tmp_path, f"check_{i}", f"echo 'OK {i}'\nexit {i % 4}") for i in range(6)]
    checks = run(*({"name": f"c{i}", "argv": [s]} for i, s in enumerate(scripts)))
    expected = [(f"c{i}", CheckStatus(i % 4), f"OK {i}") for i in range(6)]
    assert [(c.name, c.status, c.output) for c in checks] == expected
    assert all(stat.S_IMODE(os.stat(s).st_mode) == 0o755 for s in scripts)
