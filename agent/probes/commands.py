"""Nagios-compatible plugins, run without a shell, each in its own session, concurrently.

A plugin's exit code is its status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN); the first line of
its standard output, up to a ``|``, is the text; performance data follows the ``|`` on the first
line and after the first ``|`` of the later lines (Nagios plugin guidelines, "Plugin Output").
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import selectors
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from agent.config import CommandConfig, ProbesConfig
from agent.probes import ProbeState
from schoolops import wire

MAX_WORKERS = 4
MAX_CAPTURE = 64 * 1024  # bytes kept per stream; the rest is read and thrown away
MAX_OUTPUT = 4096  # wire.Text
MAX_PERFDATA = 256
REAP_TIMEOUT = 2.0  # after SIGKILL of the group; a child that left the group may still hold the pipe
NO_OUTPUT = "(No output returned from plugin)"
_VALUE = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)((?:[^\W\d_]|[%°/])+)?$")  # number, unit


class CommandProbe:
    name = "commands"

    def __init__(self, commands: list[CommandConfig]) -> None:
        self.commands = commands

    @classmethod
    def build(cls, config: ProbesConfig, state: ProbeState) -> Self | None:
        return cls(list(config.commands)) if config.commands else None

    def collect(self) -> list[wire.CommandCheck]:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(self.commands)), thread_name_prefix="plugin") as pool:
            return list(pool.map(run_check, self.commands))


def run_check(command: CommandConfig) -> wire.CommandCheck:
    started = time.monotonic()
    timeout = float(command.timeout)

    def result(
        status: wire.CheckStatus, output: str, perfdata: list[wire.PerfData] | None = None, timed_out: bool = False
    ) -> wire.CommandCheck:
        return wire.CommandCheck(
            name=command.name,
            status=status,
            output=output[:MAX_OUTPUT],
            duration_seconds=max(0.0, time.monotonic() - started),
            perfdata=perfdata or [],
            timed_out=timed_out,
        )

    try:
        proc = subprocess.Popen(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
            close_fds=True,
        )
    except OSError as exc:
        return result(wire.CheckStatus.UNKNOWN, f"cannot run {command.argv[0]}: {exc.strerror or exc}")
    try:
        stdout, stderr, finished = _capture(proc, started + timeout)
        if finished:
            try:
                code = proc.wait(timeout=max(0.0, started + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                finished = False  # closed its output but kept running
        if not finished:
            _kill_group(proc)
            return result(wire.CheckStatus.UNKNOWN, f"timed out after {timeout:g}s", timed_out=True)
    finally:  # not `with proc`: its exit waits without a limit for a process that may be unkillable
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    text = stdout.decode("utf-8", errors="replace")
    output, perfdata = parse_output(text)
    if not output:
        output = stderr.decode("utf-8", errors="replace").strip().partition("\n")[0] or NO_OUTPUT
    if code in (0, 1, 2, 3):
        return result(wire.CheckStatus(code), output, perfdata=perfdata)
    if code < 0:
        signum = -code
        name = signal.Signals(signum).name if signum in signal.valid_signals() else f"signal {signum}"
        note = f"killed by {name}"
    else:
        note = f"exit code {code} is not a plugin status"
    return result(wire.CheckStatus.UNKNOWN, f"{note}: {output}", perfdata=perfdata)


def _capture(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """Read stdout and stderr until both close or the deadline; keep at most MAX_CAPTURE bytes of each."""
    assert proc.stdout is not None and proc.stderr is not None
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(kept[proc.stdout.fileno()]), b"", False
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = kept[key.fd]
                buffer += chunk[: max(0, MAX_CAPTURE - len(buffer))]
    return bytes(kept[proc.stdout.fileno()]), bytes(kept[proc.stderr.fileno()]), True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group id is the plugin's pid (start_new_session)
    with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (stuck in the kernel): never hang the agent
        proc.wait(timeout=REAP_TIMEOUT)


def parse_output(text: str) -> tuple[str, list[wire.PerfData]]:
    """The first line's text before ``|``, and the perfdata of the first line and of the long text."""
    first, _, long_text = text.partition("\n")
    output, _, perf = first.partition("|")
    _, bar, more = long_text.partition("|")
    items = parse_perfdata(perf + (" " + more if bar else ""))
    return output.strip(), items


def parse_perfdata(text: str) -> list[wire.PerfData]:
    """Parse ``'label'=value[UOM];[warn];[crit];[min];[max]`` items separated by whitespace.

    Labels with spaces are single-quoted, a quote inside doubled (``''``). An item that does not
    parse (a value of ``U``, a missing ``=``) is skipped.
    """
    items: list[wire.PerfData] = []
    i, n = 0, len(text)
    while i < n and len(items) < MAX_PERFDATA:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "'":
            label_chars = []
            i += 1
            while i < n:
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        label_chars.append("'")
                        i += 2
                        continue
                    break
                label_chars.append(text[i])
                i += 1
            else:
                break  # unterminated quote: nothing after it can be trusted
            label = "".join(label_chars)
            i += 1
            end = _token_end(text, i)
            token = text[i:end]
            if not token.startswith("="):
                i = end
                continue
            value = token[1:]
        else:
            end = _token_end(text, i)
            label, eq, value = text[i:end].partition("=")
            if not eq:
                i = end
                continue
        i = end
        item = _perf_item(label, value)
        if item is not None:
            items.append(item)
    return items


def _token_end(text: str, i: int) -> int:
    while i < len(text) and not text[i].isspace():
        i += 1
    return i


def _perf_item(label: str, value: str) -> wire.PerfData | None:
    if not label:
        return None
    fields = [*value.split(";"), "", "", "", ""][:5]
    match = _VALUE.match(fields[0])
    if match is None or len(match.group(2) or "") > 16 or not math.isfinite(float(match.group(1))):
        return None
    warn, crit = (f if f and len(f) <= 64 else None for f in fields[1:3])
    return wire.PerfData(
        label=label[:128],
        value=float(match.group(1)),
        uom=match.group(2) or "",
        warn=warn,
        crit=crit,
        min=_number(fields[3]),
        max=_number(fields[4]),
    )


def _number(text: str) -> float | None:
    match = _VALUE.match(text)
    if match is None or match.group(2) or not math.isfinite(number := float(match.group(1))):
        return None
    return number
