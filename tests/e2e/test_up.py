"""`schoolops up`: collector + local agent from an empty data dir; Ctrl-C/SIGTERM stops both."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.support import free_port, http_get, metric_value, wait_until


def test_up_runs_collector_and_local_agent_and_stops_both(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "collector", "up", "--data-dir", str(data), "--port", str(port), "--interval", "1s"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "schoolops is up" in log.read_text(), timeout=60, what="the start-up banner")
        banner = log.read_text()
        assert f"http://127.0.0.1:{port}/metrics" in banner and str(data) in banner
        children = psutil.Process(up.pid).children()
        assert len(children) == 2
        page = wait_until(
            lambda: (body := http_get(f"http://127.0.0.1:{port}/metrics")[1].decode())
            and "node_filesystem_avail_bytes{" in body and body,
            timeout=30, what="this machine's series",
        )
        assert metric_value(page, "schoolops_asset_up") == 1
        assert (data / "schoolops.db").exists() and (data / "agent" / "agent.token").stat().st_mode & 0o077 == 0

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=30) == 0
        assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
        assert "schoolops stopped" in log.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    # again on the same data dir: same asset, same token, no second asset
    with open(log, "wb") as out:
        again = subprocess.Popen([sys.executable, "-m", "collector", "up", "--data-dir", str(data)], stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "schoolops is up" in log.read_text(), timeout=60, what="the second start")
        again.send_signal(signal.SIGINT)
        assert again.wait(timeout=30) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
