"""Debian's Prometheus scrapes the collector; PromQL sees the agent's series; promtool lints /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Agent, Collector, Process, free_port, http_get, wait_until, write_yaml

pytestmark = pytest.mark.peers


def query(prometheus_url: str, promql: str) -> list[dict[str, object]]:
    status, body = http_get(f"{prometheus_url}/api/v1/query?query={urllib.parse.quote(promql)}")
    if status != 200:
        return []
    data = json.loads(body)
    return data["data"]["result"] if data.get("status") == "success" else []


def test_prometheus_graphs_the_agent_and_promtool_accepts_the_page(
    tmp_path: Path, start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    agent = make_agent(collector, "web-01").start()
    wait_until(lambda: "node_cpu_seconds_total{" in collector.metrics(), what="the agent's first report")

    port = free_port()
    config = write_yaml(tmp_path / "prometheus.yml", {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "schoolops", "static_configs": [{"targets": [f"127.0.0.1:{collector.port}"]}]}],
    })
    prometheus = Process(
        [shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        tmp_path / "prometheus.log",
    )
    prometheus.start()
    try:
        url = f"http://127.0.0.1:{port}"
        cpu = wait_until(lambda: query(url, 'rate(node_cpu_seconds_total{asset="web-01",mode="idle"}[5s])'),
                         timeout=60, interval=0.5, what="a CPU rate in Prometheus")
        assert {s["metric"]["site"] for s in cpu} == {"main-building"}  # type: ignore[index]
        fs = wait_until(lambda: query(url, 'node_filesystem_avail_bytes{asset="web-01",mountpoint="/"}'),
                        timeout=30, interval=0.5, what="the root filesystem in Prometheus")
        assert float(fs[0]["value"][1]) > 0  # type: ignore[index]
        up = query(url, 'schoolops_asset_up{asset="web-01"}')
        assert up and up[0]["value"][1] == "1"  # type: ignore[index]
    finally:
        prometheus.stop()
        agent.stop()

    page = collector.metrics()
    lint = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
