"""``schoolops up``: a collector and an agent reporting this machine, in one command.

Everything lives under one data directory (configs, SQLite store, the agent's token and spool), so
running it again picks up where it stopped. Both run as child processes; Ctrl-C or SIGTERM stops
both cleanly, and if either one dies the other is stopped too.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from agent.config import default_asset_name
from collector import settings as settings_mod
from collector.cli import DEFAULT_DATA_DIR, UsageError, issue_agent_token, write_private
from schoolops.units import Seconds

STOP_GRACE_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 30.0


def _write_new(path: Path, data: dict, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)


def prepare(data_dir: Path, host: str | None, port: int | None, interval: str) -> tuple[Path, Path]:
    """Create the data directory's configs and the local agent's token once; return both config paths."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    collector_config = data_dir / "collector.yaml"
    if not collector_config.exists():
        _write_new(collector_config, {
            "data_dir": str(data_dir),
            "listen": {"host": host or "127.0.0.1", "port": port or settings_mod.DEFAULT_PORT},
        })
    elif host or port:
        raise UsageError(f"{collector_config} exists: change listen.host / listen.port there instead of --host/--port")
    settings = settings_mod.load(collector_config)
    agent_dir = data_dir / "agent"
    agent_dir.mkdir(exist_ok=True, mode=0o700)
    token_file = agent_dir / "agent.token"
    agent_config = agent_dir / "agent.yaml"
    if not agent_config.exists():
        asset = default_asset_name()
        write_private(token_file, issue_agent_token(settings, asset).token + "\n")
        connect_host = settings.listen.host if settings.listen.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in connect_host:
            connect_host = f"[{connect_host}]"
        _write_new(agent_config, {
            "collector": {"url": f"{settings.scheme}://{connect_host}:{settings.listen.port}", "token_file": str(token_file)},
            "asset": {"name": asset, "tier": "normal"},
            "interval": f"{Seconds.parse(interval):g}s",
            "state_dir": str(agent_dir / "state"),
        })
    return collector_config, agent_config


def _wait_ready(url: str, child: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310 - our own collector
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir or os.environ.get("SCHOOLOPS_DATA_DIR") or DEFAULT_DATA_DIR).absolute()
    collector_config, agent_config = prepare(data_dir, args.host, args.port, args.interval)
    settings = settings_mod.load(collector_config)
    shown = settings.listen.host if settings.listen.host not in ("0.0.0.0", "::") else "127.0.0.1"
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"{settings.scheme}://{shown}:{settings.listen.port}"

    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--config", str(collector_config)])
    children = [collector]
    try:
        if settings.tls is None and not _wait_ready(url, collector):
            print(f"schoolops: the collector did not start (exit code {collector.poll()}); see its log above", file=sys.stderr)
            return 1
        agent = subprocess.Popen([sys.executable, "-m", "agent", "--config", str(agent_config)])
        children.append(agent)
        print(
            f"schoolops is up\n  collector: {url}\n  metrics:   {url}/metrics\n  data dir:  {data_dir}\n"
            f"  agent:     {agent_config}\nPress Ctrl-C to stop.",
            flush=True,
        )
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    name = "collector" if child is collector else "agent"
                    print(f"schoolops: the {name} exited with code {child.returncode}; stopping", file=sys.stderr)
                    return child.returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(children)
        print("schoolops stopped", file=sys.stderr, flush=True)
