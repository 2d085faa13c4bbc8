"""4. Detection latency: a watched process killed → the first P1/P2 notification in a local mailbox.

One real collector with an on-call file whose only channel is email to a local SMTP server
(aiosmtpd, in this process), and one real agent per trial, each watching its own ``sleep`` process
(``probes.processes``) at the same interval. Every asset has a site of its own (so the faults of
earlier trials never widen the scope of the next) and the ``important`` tier (no tier adjustment).

The shipped rules page ``process_down`` at P3 after 30 s of grace; for this figure a rules folder of
the harness's own holds the shipped rules plus one override — ``process_down: {for: 0s,
severity: P2}`` — so the measured path is the one a P2 takes: agent → ingest → rules → incident →
escalation → email. Each trial waits a random part of an interval (so kills land anywhere in the
agent's cycle), kills its process with SIGKILL, and times the arrival of the first message that
names its asset.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from bench.core import ROOT, Row, Sizes, Stats, Workdir, free_port, pinned, wait_until
from bench.peers import create_tokens, smtp_receiver, start_collector, stop_all
from bench.profiling import Profiler
from tests.support import Agent, Process, metric_value

NAME = "detection"
OVERRIDE = """# the harness's override: the path a P2 takes, without the shipped 30 s of grace
overrides:
  - rule: process_down
    set: {for: 0s, severity: P2}
"""


def oncall_file(path: Path, smtp_port: int) -> Path:
    def person(pid: str, roles: list[str]) -> dict[str, Any]:
        return {"id": pid, "name": pid, "language": "en", "roles": roles,
                "contacts": [{"channel": "email", "address": f"{pid}@school.test"}]}

    path.write_text(yaml.safe_dump({
        "timezone": "Asia/Shanghai",
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "sender": "schoolops@school.test"}],
        "people": [person("li.na", ["on-call"]), person("chen.jie", ["on-call"]), person("liu.director", ["director"])],
        "schedule": {"start": "2026-01-05", "rotation": [{"primary": "li.na", "backup": "chen.jie"}]},
    }))
    return path


def rules_dir(directory: Path) -> Path:
    rules = directory / "rules"
    shutil.copytree(ROOT / "alerts", rules, ignore=shutil.ignore_patterns("calendar*"))
    (rules / "zz-bench.yaml").write_text(OVERRIDE)
    return rules


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: with 20 trials, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))]  # type: ignore[arg-type]


def names_asset(message: Any, asset: str) -> bool:
    """A P1/P2 message about ``asset``."""
    if message["X-Schoolops-Severity"] not in ("P1", "P2"):
        return False
    if asset in str(message["Subject"]):
        return True
    body = message.get_body(preferencelist=("plain",))
    return body is not None and asset in body.get_content()


def measure(sizes: Sizes, work: Workdir, profiler: Profiler) -> list[Row]:
    directory = work.sub(NAME)
    interval = sizes.agent_interval
    p50 = Row("4", f"Detection: process killed → P2 email, p50 of {sizes.trials} trials", "s",
              goal="—")
    p99 = Row("4", f"Detection: process killed → P2 email, p99 of {sizes.trials} trials", "s",
              goal=f"≤ one agent interval + 2 s ({interval:g} s + 2 s)")
    smtp_port = free_port()
    sleepers: list[subprocess.Popen[bytes]] = []
    agents: list[Agent] = []
    collector = None
    with smtp_receiver(smtp_port) as mailbox:
        try:
            collector = start_collector(directory / "collector", {
                "rules_dir": str(rules_dir(directory)), "oncall_file": str(oncall_file(directory / "oncall.yaml", smtp_port)),
                "incidents": {"tick_interval": "0.5s", "teaching_roles": []},
            })
            assets = [f"bench-det-{i:02d}" for i in range(sizes.trials)]
            tokens = create_tokens(collector, assets)
            for i, asset in enumerate(assets):
                sleepers.append(subprocess.Popen(["sleep", str(86400 + i)]))
                token_file = directory / f"{asset}.token"
                token_file.write_text(tokens[asset] + "\n")
                token_file.chmod(0o600)
                agent = Agent(directory / asset, collector.url, token_file, asset, interval=f"{interval:g}s", extra={
                    "asset": {"site": f"bench-site-{i:02d}", "role": "bench", "tier": "important"},
                    "probes": {"processes": [{"name": "watched", "process_name": "sleep",
                                              "cmdline_contains": f"sleep {86400 + i}"}]},
                    "log": {"level": "warning", "format": "json"}})
                agent.process = Process(pinned(agent_argv(agent), "client"), agent.directory / "agent.log")
                agent.process.start()
                agents.append(agent)

            def all_running() -> bool:
                text = collector.metrics()  # type: ignore[union-attr]
                return all(metric_value(text, "schoolops_process_running", asset=a, process="watched") == 1
                           for a in assets)

            wait_until(all_running, timeout=interval * 4 + 60, interval=0.5, what="every watched process reported")
            latencies: list[float] = []
            for asset, sleeper in zip(assets, sleepers, strict=True):
                time.sleep(random.uniform(0, interval))
                killed_at = time.time()
                os.kill(sleeper.pid, signal.SIGKILL)
                sleeper.wait(timeout=10)
                arrival = wait_until(
                    lambda a=asset: next((at for at, m in mailbox.snapshot() if names_asset(m, a)), None),  # type: ignore[misc]
                    timeout=interval * 3 + 30, interval=0.02, what=f"the P2 email for {asset}")
                latencies.append(arrival - killed_at)
        finally:
            for agent in agents:
                agent.stop()
            for sleeper in sleepers:
                if sleeper.poll() is None:
                    os.kill(sleeper.pid, signal.SIGKILL)
                    sleeper.wait(timeout=10)
            stop_all(collector)
    p50.ours = Stats.of([percentile(latencies, 50)])
    p99.ours = Stats.of([percentile(latencies, 99)])
    p99.judge(lambda v: v <= interval + 2, on="ours")
    spread = f"all {len(latencies)} trials: {min(latencies):.2f}–{max(latencies):.2f} s, mean {statistics.mean(latencies):.2f} s"
    p50.note = f"agent interval {interval:g} s; {spread}"
    p99.note = "rules: shipped + override process_down {for: 0s, severity: P2}; email to a local aiosmtpd"
    return [p50, p99]


def agent_argv(agent: Agent) -> list[str]:
    import sys

    return [sys.executable, "-m", "agent", "--config", str(agent.config_path)]
