"""Config files are validated at start-up and on SIGHUP: errors name file, line and key; bad never replaces good."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import Agent, Collector, metric_value, wait_until


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)


def test_broken_agent_config_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "collector:\n"
        "  url: http://127.0.0.1:1\n"
        "  token: x\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "probes:\n"
        "  commands:\n"
        "    - name: raid\n"
        "      argv: [check_raid]\n"
    )
    result = run("-m", "agent", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:8: probes.commands[0].argv: argv[0] must be an absolute path" in result.stderr
    assert not (tmp_path / "state").exists()  # refused before touching anything

    config.write_text(config.read_text().replace("argv: [check_raid]", "argv: [/bin/true]") + "intervall: 5s\n")
    result = run("-m", "agent", "--config", str(config), "--check")
    assert result.returncode == 2
    assert f"{config}:9: intervall: Object contains unknown field `intervall`" in result.stderr

    config.write_text(config.read_text().replace("intervall: 5s", "interval: soon"))
    result = run("-m", "agent", "--config", str(config), "--check")
    assert (result.returncode, result.stderr.strip()) == (
        2, f"schoolops-agent: {config}:9: interval: expected a duration such as 15s, 5m or 26h, got 'soon'"
    )


def test_broken_collector_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nlisten:\n  host: 127.0.0.1\n  port: 99999\n")
    result = run("-m", "collector", "serve", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:4: listen.port: Expected `int` <= 65535" in result.stderr
    assert not (tmp_path / "data").exists()


def test_sighup_applies_a_good_config_and_keeps_running_on_a_bad_one(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = start_collector()
    agent = make_agent(collector, "web-01").start()
    assert agent.process is not None
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_asset_up", asset="web-01", site="main-building"),
               what="the first report")

    agent.config_path.write_text(agent.config_path.read_text() + "probes: {ports: [{port: 0}]}\n")
    agent.process.popen.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    failed = wait_until(lambda: [e for e in agent.log_events() if e.get("event") == "config_reload_failed"],
                        what="the reload to be refused")
    assert "probes.ports[0].port" in failed[0]["error"]
    assert agent.process.running()

    agent.write_config(asset={"site": "north-building"})
    agent.process.popen.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_asset_up", asset="web-01", site="north-building"),
               what="the new site label")
    assert agent.stop() == 0


def test_inventory_labels_win_over_the_agents_own(
    tmp_path: Path, start_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("assets:\n  - {name: web-01, site: north-building, role: library-web, tier: core}\n")
    collector = start_collector(extra={"inventory_file": str(inventory)})
    make_agent(collector, "web-01").start()  # its config says main-building / web
    make_agent(collector, "web-02").start()  # not in the inventory: its own labels apply
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_asset_up", asset="web-02", site="main-building"),
               what="web-02's own labels")
    wait_until(lambda: metric_value(collector.metrics(), "node_load1", asset="web-01") is not None,
               what="web-01's report")
    page = collector.metrics()
    assert metric_value(page, "node_load1", asset="web-01", site="north-building", role="library-web") is not None
    assert metric_value(page, "node_load1", asset="web-01", site="main-building") is None
    assert metric_value(page, "schoolops_asset_info", asset="web-01", tier="core") == 1
    assert collector.assets()["web-01"]["labels_from"] == "inventory"
