"""What every figure shares: sizes, statistics, rows of the table, and processes measured from /proc.

Processes are started by the harness and stopped by the PID it started them with; each is pinned
to one core with ``taskset`` so that a server and its load generator never share a core.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.support import Process, free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

__all__ = ["ROOT", "Process", "free_port", "http_get", "wait_until"]


@dataclass(frozen=True)
class Sizes:
    """How much each figure does: the full run, or tiny sizes that only prove the harness runs."""

    runs: int
    quick: bool
    # 1. footprint
    collections: int = 20
    # 2. ingest
    ingest_seconds: float = 8.0
    ingest_assets: int = 64
    ingest_connections: int = 16
    # 3. SNMP
    snmp_veth_pairs: int = 200  # the snmpd "switch" has 2 interfaces per pair, plus lo
    snmp_polls: int = 5
    fleets: tuple[int, ...] = (200, 1000, 2000)
    fleet_runs: int = 2  # steady-state cycles measured after the first
    # 4. detection
    trials: int = 20
    agent_interval: float = 5.0
    # 5. scale
    metrics_assets: int = 5000
    patrol_servers: int = 800
    patrol_devices: int = 200
    store_rounds: int = 10

    @classmethod
    def for_run(cls, runs: int, quick: bool) -> Sizes:
        if not quick:
            return cls(runs=runs, quick=False)
        return cls(runs=runs, quick=True, collections=3, ingest_seconds=1.0, ingest_assets=4, ingest_connections=4,
                   snmp_veth_pairs=5, snmp_polls=1, fleets=(5,), fleet_runs=1, trials=2, agent_interval=1.0,
                   metrics_assets=20, patrol_servers=8, patrol_devices=2, store_rounds=2)


@dataclass(frozen=True)
class Stats:
    """Median and range of several runs of one measurement."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats | None:
        return cls(tuple(values)) if values else None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


@dataclass
class Row:
    """One line of the table: ours beside the anchor (if any), the ratio per run, the goal and its verdict."""

    figure: str  # "1", "2", … as in the issue
    measure: str
    unit: str
    ours: Stats | None = None
    anchor: Stats | None = None
    anchor_name: str = ""
    ratio: Stats | None = None  # ours / anchor, paired run by run
    goal: str = ""
    met: bool | None = None  # None: not judged (anchor missing, or a figure without a goal)
    note: str = ""  # why a figure could not be measured, or what qualifies it

    def judge(self, check: Callable[[float], bool], on: str = "ratio") -> Row:
        """Set ``met`` from the median of ``ratio`` (default) or of ``ours``."""
        stats = self.ratio if on == "ratio" else self.ours
        self.met = None if stats is None else check(stats.median)
        return self


def paired_ratios(ours: Sequence[float], anchor: Sequence[float]) -> Stats | None:
    return Stats.of([o / a for o, a in zip(ours, anchor, strict=False) if a])


# --- processes -------------------------------------------------------------------------------------


def cores() -> tuple[int, int] | None:
    """(server core, client core), or None on a single-core machine (then nothing is pinned)."""
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 and shutil.which("taskset") else None


def pinned(argv: list[str], which: str) -> list[str]:
    """``argv`` run on the server's core (``which="server"``) or the client's (``"client"``)."""
    pair = cores()
    if pair is None:
        return argv
    return ["taskset", "-c", str(pair[0] if which == "server" else pair[1]), *argv]


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, in seconds, at nanosecond resolution (schedstat)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of ``pid`` (``field``: VmRSS, or its parts RssAnon — the process's own — and
    RssFile — pages of its binary and libraries, shared with whoever maps them too)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} for {pid}")


def start(argv: list[str], log: Path, *, env: dict[str, str] | None = None) -> Process:
    process = Process(argv, log, env=env)
    process.start()
    return process


def run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
        if found:
            return found
    return None


def python_module(module: str, *args: str, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", module, *args]


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


@dataclass
class Workdir:
    """The harness's scratch space: one folder per figure, removed at the end unless kept."""

    path: Path
    keep: bool = False

    def sub(self, name: str) -> Path:
        folder = self.path / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder
