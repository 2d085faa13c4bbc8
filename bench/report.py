"""The Markdown page: when and where it ran, with which versions, and one row per figure."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from bench.core import ROOT, Row, Stats, which

PACKAGES = ("aiohttp", "msgspec", "SQLAlchemy", "prometheus-client", "pysnmp", "pyasn1", "psutil", "structlog", "orjson",
            "snmpsim")


@dataclass(frozen=True)
class Section:
    title: str
    text: str  # the figure's method, from its module's docstring
    seconds: float


def _tool(argv: list[str], pattern: str) -> str:
    if which(argv[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _first(path: str, prefix: str) -> str | None:
    with open(path) as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith(prefix)), None)


def environment(runs: int, quick: bool) -> list[tuple[str, str]]:
    cpu = _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    memory = int((_first("/proc/meminfo", "MemTotal") or "0 kB").split()[0])
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("host", f"{cpu}, {os.cpu_count()} cores, {memory / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}"),
        ("schoolops", f"{_package('schoolops')} (commit {commit}{', with local changes' if dirty else ''})"),
        ("Python", platform.python_version()),
        ("Python packages", ", ".join(f"{name} {_package(name)}" for name in PACKAGES)),
        ("node_exporter", _tool(["prometheus-node-exporter", "--version"], r"version (\S+)")),
        ("wrk", _tool(["wrk", "--version"], r"wrk (\S+)")),
        ("Net-SNMP", _tool(["snmpd", "-v"], r"NET-SNMP version:\s+(\S+)")),
        ("runs", f"{runs} per figure{' (quick: tiny sizes, not results)' if quick else ''}"),
    ]


def number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(stats: Stats | None, unit: str = "") -> str:
    if stats is None:
        return "—"
    suffix = f" {unit}" if unit else ""
    if len(stats.values) == 1:
        return f"{number(stats.median)}{suffix}"
    return f"{number(stats.median)}{suffix} ({number(stats.low)}–{number(stats.high)})"


def verdict(row: Row) -> str:
    if row.met is None:
        return "anchor missing" if row.note.startswith(("anchor missing", "not measured")) else "—"
    return "yes" if row.met else "**no**"


def table(rows: Sequence[Row]) -> str:
    lines = ["| # | figure | ours: median (min–max) | anchor: median (min–max) | ours ÷ anchor | goal | met |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        anchor = spread(row.anchor, row.unit) + (f" — {row.anchor_name}" if row.anchor_name else "")
        lines.append(f"| {row.figure} | {row.measure} | {spread(row.ours, row.unit)} | {anchor if row.anchor else '—'} | "
                     f"{spread(row.ratio)} | {row.goal} | {verdict(row)} |")
    return "\n".join(lines)


def line(row: Row) -> str:
    """One figure as the harness prints it while it runs."""
    parts = [f"figure {row.figure}: {row.measure}: {spread(row.ours, row.unit)}"]
    if row.anchor is not None:
        parts.append(f"anchor {spread(row.anchor, row.unit)}, ratio {spread(row.ratio)}")
    goal = {True: "met", False: "MISSED", None: verdict(row)}[row.met]
    parts.append(f"goal {row.goal}: {goal}")
    return " | ".join(parts) + (f"  [{row.note}]" if row.note else "")


def markdown(docstring: str) -> str:
    """A module docstring as Markdown: Sphinx roles become code spans (``~a.b.C`` → ``C``)."""
    text = re.sub(r":(?:class|mod|func|meth|data):`~[\w.]*?(\w+)`", r"`\1`", docstring)
    text = re.sub(r":(?:class|mod|func|meth|data):`([^`]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text).strip()


def page(rows: Sequence[Row], sections: Sequence[Section], runs: int, quick: bool, command: str) -> str:
    env = "\n".join(f"| {key} | {value} |" for key, value in environment(runs, quick))
    missed = [row for row in rows if row.met is False]
    notes = "\n".join(f"- **{row.figure}. {row.measure}**: {row.note}" for row in rows if row.note)
    methods = "\n\n".join(f"### {s.title} ({s.seconds:.0f} s)\n\n{markdown(s.text)}" for s in sections)
    findings = "\n".join(f"- {row.measure}: {spread(row.ours, row.unit)}"
                         + (f", {spread(row.ratio)} of the anchor" if row.ratio else "") + f" — goal {row.goal}"
                         for row in missed) or "- none: every goal was met"
    return f"""# Benchmarks

Written by `{command}` (see README, "Benchmarks"). Every figure was measured in one run on one
machine, ours beside its anchor (the tool a school would otherwise use) with runs alternating
between the two; read the ratios — absolute times on shared machines are noise. A figure that
misses its goal is a finding, listed at the end.

| | |
|---|---|
{env}

## Results

{table(rows)}

Notes:

{notes}

## Goals missed

{findings}

## How each figure is measured

{methods}
"""
