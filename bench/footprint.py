"""1. Agent footprint: steady-state RSS and CPU per collection, vs Debian's prometheus-node-exporter.

Ours: ``schoolops-agent`` with its default probes and a 1 s interval, delivering to a real collector
on the other core; after a few collections of warm-up, CPU is measured over the next
``collections`` reports (all threads, from /proc/PID/task/*/schedstat) and RSS read after them.
Anchor: node_exporter with its default collectors, scraped ``collections`` times after the same
warm-up; CPU per scrape the same way, RSS after the scrapes. Both run on the same core; runs
alternate which goes first. The agent runs from ``--agent-python`` — by default the interpreter of
``.venv-agent`` when ``scripts/bench.sh`` made it (the agent's light dependencies only, as
``deploy/install-agent.sh`` installs it), else this interpreter (which also carries the collector's
libraries; structlog then loads rich, which the agent as installed does not have).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.core import ROOT, Row, Sizes, Stats, Workdir, cpu_seconds, free_port, http_get, paired_ratios, pinned, \
    rss_bytes, wait_until
from bench.peers import create_tokens, node_exporter_binary, start_collector, start_node_exporter, stop_all
from bench.profiling import Profiler
from tests.support import Process, write_yaml

NAME = "footprint"
WARMUP = 3
MIB = 1024 * 1024


def agent_python(requested: str | None) -> tuple[str, str]:
    """(interpreter, how it was chosen) for the agent."""
    if requested:
        return requested, f"agent on {requested}"
    light = ROOT / ".venv-agent" / "bin" / "python"
    if light.exists():
        return str(light), "agent in .venv-agent (its light dependencies only, as deploy/install-agent.sh installs it)"
    import sys

    return sys.executable, "agent in the project's venv (with the collector's libraries: more RSS than as installed)"


def run_agent(directory: Path, python: str, collector_url: str, token: str, collections: int,
              profiler: Profiler) -> tuple[float, float, float]:
    """(RSS in bytes after the collections, CPU seconds per collection, anonymous RSS in bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    token_file = directory / "agent.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    state = directory / "state"
    config = write_yaml(directory / "agent.yaml", {
        "collector": {"url": collector_url, "token_file": str(token_file), "timeout": "5s", "retry_max": "1s"},
        "asset": {"name": "bench-agent", "site": "main-building", "role": "web"},
        "interval": "1s", "state_dir": str(state), "log": {"level": "warning", "format": "json"},
    })
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the agent from this checkout, whatever venv runs it
    process = Process(pinned([python, "-m", "agent", "--config", str(config)], "server"), directory / "agent.log", env=env)
    process.start()

    def seq() -> int:
        if not process.running():
            raise RuntimeError(f"the agent exited:\n{process.log()[-2000:]}")
        try:
            return int(json.loads((state / "state.json").read_text())["last_seq"])
        except (OSError, ValueError, KeyError):
            return 0

    try:
        wait_until(lambda: seq() >= WARMUP, timeout=60, what="the agent's first reports")
        first, cpu0 = seq(), cpu_seconds(process.pid)
        with profiler.attach(process, f"{NAME}-agent", collections):
            wait_until(lambda: seq() >= first + collections, timeout=collections * 3 + 30, interval=0.05,
                       what="the agent's collections")
        last, cpu1 = seq(), cpu_seconds(process.pid)
        return float(rss_bytes(process.pid)), (cpu1 - cpu0) / (last - first), float(rss_bytes(process.pid, "RssAnon"))
    finally:
        process.stop()


def run_node_exporter(directory: Path, scrapes: int) -> tuple[float, float, float]:
    """(RSS in bytes after the scrapes, CPU seconds per scrape, anonymous RSS in bytes)."""
    port = free_port()
    process = start_node_exporter(directory, port)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(WARMUP):
            http_get(url, timeout=30)
        cpu0 = cpu_seconds(process.pid)
        for _ in range(scrapes):
            status, _body = http_get(url, timeout=30)
            if status != 200:
                raise RuntimeError(f"node_exporter answered {status}")
        cpu1 = cpu_seconds(process.pid)
        return float(rss_bytes(process.pid)), (cpu1 - cpu0) / scrapes, float(rss_bytes(process.pid, "RssAnon"))
    finally:
        process.stop()


def measure(sizes: Sizes, work: Workdir, profiler: Profiler, requested_python: str | None = None) -> list[Row]:
    directory = work.sub(NAME)
    python, how = agent_python(requested_python)
    anchor = "prometheus-node-exporter (default collectors)"
    rss = Row("1", f"Agent RSS after {sizes.collections} collections (anchor: after {sizes.collections} scrapes)",
              "MiB", anchor_name=anchor, goal="≤ node_exporter's")
    cpu = Row("1", "Agent CPU per collection (anchor: per scrape)", "ms", anchor_name=anchor,
              goal="≤ node_exporter's")
    collector = None
    have_anchor = node_exporter_binary() is not None
    try:
        collector = start_collector(directory / "collector", {}, core="client")
        token = create_tokens(collector, ["bench-agent"])["bench-agent"]
        ours_rss, ours_cpu, ne_rss, ne_cpu, ours_anon, ne_anon = [], [], [], [], [], []
        for n in range(sizes.runs):
            for who in (("agent", "anchor") if n % 2 == 0 else ("anchor", "agent")):
                if who == "agent":
                    r, c, a = run_agent(directory / f"agent-{n}", python, collector.url, token, sizes.collections,
                                        profiler)
                    ours_rss.append(r / MIB)
                    ours_cpu.append(c * 1000)
                    ours_anon.append(a / MIB)
                elif have_anchor:
                    r, c, a = run_node_exporter(directory, sizes.collections)
                    ne_rss.append(r / MIB)
                    ne_cpu.append(c * 1000)
                    ne_anon.append(a / MIB)
    finally:
        stop_all(collector)
    for row, ours, theirs in ((rss, ours_rss, ne_rss), (cpu, ours_cpu, ne_cpu)):
        row.ours, row.anchor, row.ratio = Stats.of(ours), Stats.of(theirs), paired_ratios(ours, theirs)
        row.judge(lambda r: r <= 1.0)
        row.note = how if have_anchor else f"anchor missing: prometheus-node-exporter is not installed; {how}"
    if ours_anon:
        theirs = f", node_exporter {Stats(tuple(ne_anon)).median:.1f} MiB" if ne_anon else ""
        rss.note += (f"; of it the process's own memory (RssAnon, the rest is its binary and libraries): "
                     f"agent {Stats(tuple(ours_anon)).median:.1f} MiB{theirs}")
    return [rss, cpu]
