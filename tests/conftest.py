"""Shared fixtures: factories for real collector and agent processes, stopped at teardown by PID."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notify_peers import Mailbox, smtp_server
from tests.ssh_peers import SSHD, Sshd
from tests.support import Agent, Collector


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests marked `peers` need the Debian packages scripts/test.sh installs; say so instead of erroring
    missing = [tool for tool in ("prometheus", "promtool", "snmpd", "sshd") if shutil.which(tool) is None
               and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    marker = pytest.mark.skip(reason=f"peer tools missing ({', '.join(missing)}): run scripts/test.sh")
    for item in items:
        if "peers" in item.keywords:
            item.add_marker(marker)


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    started: list[Collector] = []

    def start(name: str = "collector", *, wait: bool = True, **kwargs: Any) -> Collector:
        collector = Collector(tmp_path / name, **kwargs)
        started.append(collector)
        return collector.start(wait=wait)

    yield start
    for collector in started:
        collector.stop()


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    made: list[Agent] = []

    def make(collector: Collector, asset: str = "web-01", *, token_file: Path | None = None, **kwargs: Any) -> Agent:
        agent = Agent(
            tmp_path / f"agent-{asset}-{len(made)}", collector.url, token_file or collector.token(asset), asset, **kwargs
        )
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk small enough to fill in a test (unmounted at the end)."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], capture_output=True,
                      check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback: (its mailbox, its port)."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on loopback (its own host key, a client key it accepts); a test module may
    define its own ``sshd`` (e.g. with extra sshd_config lines)."""
    if not Path(SSHD).exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()
