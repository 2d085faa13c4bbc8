"""Faults and incidents end to end: real agents, a real collector, the shipped rules (with test overrides)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import Agent, Collector, cli, metric_value, wait_until

ROOT = Path(__file__).resolve().parents[2]

# the shipped rules, made quick for a test: no `for` delays on the rules exercised here
OVERRIDES = """
overrides:
  - rule: filesystem_usage
    set: {for: 0s}
  - rule: process_down
    set: {for: 0s}
  - rule: backup_stale
    set: {for: 0s}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(ROOT / "alerts", directory, ignore=shutil.ignore_patterns("calendar*"))
    (directory / "zz-test-overrides.yaml").write_text(OVERRIDES)
    return directory


@pytest.fixture
def collector(start_collector: Callable[..., Collector], rules_dir: Path) -> Collector:
    return start_collector(extra={
        "rules_dir": str(rules_dir),
        "incidents": {"quiet_period": "2s", "tick_interval": "0.5s", "teaching_roles": []},
    })


def incidents(collector: Collector, *extra: str) -> list[dict[str, Any]]:
    return json.loads(cli("incidents", "list", "--all", "--json", "--config", str(collector.config_path), *extra).stdout)


def show(collector: Collector, number: int) -> dict[str, Any]:
    return json.loads(cli("incidents", "show", str(number), "--json", "--config", str(collector.config_path)).stdout)


def find(collector: Collector, asset: str, rule: str) -> dict[str, Any] | None:
    for incident in incidents(collector):
        detail = show(collector, incident["id"])
        if incident["asset"] == asset and any(f["rule"] == rule for f in detail["faults"]):
            return detail
    return None




def test_a_filling_filesystem_opens_a_capacity_incident_that_resolves_when_freed(
    collector: Collector, make_agent: Callable[..., Agent], tmpfs: Path
) -> None:
    make_agent(collector, "web-01").start()
    (tmpfs / "fill").write_bytes(os.urandom(int(3.75 * 1024 * 1024)))  # ~94% of 4 MiB

    detail = wait_until(lambda: find(collector, "web-01", "filesystem_usage"), timeout=30, what="a capacity incident")
    fault = next(f for f in detail["faults"] if f["key"] == str(tmpfs))
    assert detail["type"] == "capacity" and detail["asset"] == "web-01"
    assert fault["base_severity"] == "P3"  # the shipped rule: P3 from 90 %
    assert fault["severity"] == "P4"  # a normal-tier asset: lowered one level, and the reason says so
    assert "filesystem_usage" in fault["reason"] and str(tmpfs) in fault["reason"] and "normal" in fault["reason"]
    assert detail["state"] == "open"
    assert any(e["kind"] == "notify" for e in detail["timeline"])

    (tmpfs / "fill").unlink()
    resolved = wait_until(lambda: (d := show(collector, detail["id"]))["state"] == "resolved" and d,
                          timeout=30, what="the incident to resolve after the quiet period")
    kinds = [e["kind"] for e in resolved["timeline"]]
    assert kinds.index("fault_cleared") < kinds.index("resolve")
    assert resolved["resolved_by"] == "schoolops"
    page = collector.metrics()
    assert (metric_value(page, "schoolops_faults_fired_total", rule="filesystem_usage") or 0) >= 1


def test_a_killed_process_opens_an_incident(
    collector: Collector, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    # a copy of sleep under a name of its own: no other process on the machine can look like it
    worker = tmp_path / f"sowork{os.getpid() % 100000}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", worker)
    sleeper = subprocess.Popen([str(worker), "600"])
    try:
        make_agent(collector, "app-01", extra={"probes": {"processes": [{"name": "worker", "process_name": worker.name}]}}).start()
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_process_running", asset="app-01") == 1,
                   what="the process seen running")
        assert find(collector, "app-01", "process_down") is None
        sleeper.kill()
        sleeper.wait()
        detail = wait_until(lambda: find(collector, "app-01", "process_down"), timeout=30, what="a process incident")
        assert detail["faults"][0]["key"] == "worker" and detail["type"] == "application"
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_silent_assets_go_down_and_children_are_grouped_under_their_parent(
    start_collector: Callable[..., Collector], make_agent: Callable[..., Agent], rules_dir: Path, tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "assets:\n"
        "  - {name: access-sw-1, site: north, tier: important}\n"
        "  - {name: lab-pc-1, site: north, parents: [access-sw-1]}\n"
        "  - {name: lab-pc-2, site: north, parents: [access-sw-1]}\n"
    )
    collector = start_collector(extra={
        "rules_dir": str(rules_dir), "inventory_file": str(inventory),
        "incidents": {"quiet_period": "2s", "tick_interval": "0.5s", "teaching_roles": []},
    })
    agents = [make_agent(collector, name).start() for name in ("access-sw-1", "lab-pc-1", "lab-pc-2")]
    wait_until(lambda: all(metric_value(collector.metrics(), "schoolops_asset_up", asset=a.asset) == 1 for a in agents),
               what="all three reporting")
    for agent in agents:  # the building loses its switch: everything behind it goes silent at once
        agent.stop()

    parent = wait_until(lambda: find(collector, "access-sw-1", "asset_silent"), timeout=30, what="the switch down")
    wait_until(lambda: len(show(collector, parent["id"])["faults"]) == 3, timeout=30, what="children grouped under it")
    detail = show(collector, parent["id"])
    children = {f["asset"]: f for f in detail["faults"] if f["asset"] != "access-sw-1"}
    assert set(children) == {"lab-pc-1", "lab-pc-2"}
    assert all(f["consequence_of"] == "access-sw-1" for f in children.values())
    consequences = [e for e in detail["timeline"] if e["kind"] == "consequence"]
    assert len(consequences) == 2 and all("consequence of access-sw-1 being down" in e["text"] for e in consequences)
    notified = [e for e in detail["timeline"] if e["kind"] == "notify"]
    # the parent is paged (once when it opens; again if scope raises its severity as its building
    # goes dark — that depends on timing), its children never are
    assert notified and "access-sw-1" in detail["title"]
    assert {e["data"]["fault"] for e in notified} == {"asset_silent|access-sw-1|"}
    live_children = [i for i in incidents(collector, "--state", "open,acknowledged") if i["asset"] != "access-sw-1"]
    assert live_children == []


def test_a_flapping_fault_is_marked_and_its_notifications_are_held(
    collector: Collector, make_agent: Callable[..., Agent], tmp_path: Path
) -> None:
    backup = tmp_path / "backups"
    backup.mkdir()
    dump = backup / "nightly.sql.gz"
    dump.write_bytes(b"x")
    make_agent(collector, "db-01", extra={
        "probes": {"files": [{"name": "nightly", "path": str(backup), "max_age": "1h"}]}}).start()
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_file_fresh", asset="db-01") == 1, what="fresh")

    deadline = time.monotonic() + 60
    stale = False
    detail = None
    while time.monotonic() < deadline:  # the backup looks stale, fresh, stale… every second
        stale = not stale
        moment = time.time() - (7200 if stale else 0)
        os.utime(dump, (moment, moment))
        time.sleep(1.1)
        detail = find(collector, "db-01", "backup_stale")
        if detail and any(e["kind"] == "flapping" for e in detail["timeline"]):
            break
    assert detail is not None
    kinds = [e["kind"] for e in detail["timeline"]]
    assert "flapping" in kinds, kinds
    after = kinds[kinds.index("flapping"):]
    assert "notify" not in after  # nothing more is sent while it flaps
    flapping_event = next(e for e in detail["timeline"] if e["kind"] == "flapping")
    assert "% state changes" in flapping_event["text"]
    assert detail["hold"] and "flapping" in detail["hold"]


def test_a_fault_in_maintenance_is_recorded_not_notified_and_raised_when_the_window_ends(
    collector: Collector, make_agent: Callable[..., Agent], tmpfs: Path
) -> None:
    config = str(collector.config_path)
    cli("maintenance", "add", "--asset", "web-07", "--end", "6s", "--owner", "li.wei", "--reason", "disk migration",
        "--as", "li.wei", "--config", config)
    make_agent(collector, "web-07").start()
    (tmpfs / "fill").write_bytes(os.urandom(int(3.75 * 1024 * 1024)))

    detail = wait_until(lambda: find(collector, "web-07", "filesystem_usage"), timeout=30, what="the fault recorded")
    decisions = [e for e in detail["timeline"] if e["kind"] in ("notify", "held")]
    assert decisions[0]["kind"] == "held" and "maintenance window" in decisions[0]["text"]
    assert "disk migration" in decisions[0]["text"] and "li.wei" in decisions[0]["text"]

    raised = wait_until(lambda: [e for e in show(collector, detail["id"])["timeline"] if e["kind"] == "notify"],
                        timeout=30, what="the fault raised when the window ends")
    assert "ended with the fault still present" in raised[0]["text"]


def test_a_p2_cannot_be_closed_without_rca_and_a_preventive_measure(collector: Collector) -> None:
    config = str(collector.config_path)
    cli("report-fault", "the exam hall projector network is down", "--site", "exam-hall", "--type", "network",
        "--severity", "P2", "--as", "zhang.teacher", "--config", config)
    incident = wait_until(lambda: [i for i in incidents(collector) if i["site"] == "exam-hall"], what="the reported fault")[0]
    assert incident["severity"] == "P2" and "reported by zhang.teacher" in incident["title"]
    number = str(incident["id"])

    cli("incidents", "ack", number, "--as", "wang.oncall", "--config", config)
    cli("incidents", "resolve", number, "--as", "wang.oncall", "--note", "replaced the patch cable", "--config", config)
    refused = cli("incidents", "close", number, "--as", "wang.oncall", "--config", config, check=False)
    assert refused.returncode == 2
    assert "cannot be closed" in refused.stderr and "root-cause analysis" in refused.stderr
    refused = cli("incidents", "review", number, "--as", "wang.oncall", "--config", config, check=False)
    assert refused.returncode == 2 and "root-cause analysis" in refused.stderr

    cli("incidents", "rca", number, "--rca", "a patch cable was crushed by a moved desk",
        "--measure", "route cables through floor ducts|facilities.chen|2026-12-31", "--as", "wang.oncall", "--config", config)
    cli("incidents", "review", number, "--as", "director.liu", "--config", config)
    cli("incidents", "close", number, "--as", "director.liu", "--config", config)
    detail = show(collector, int(number))
    assert detail["state"] == "closed" and detail["closed_by"] == "director.liu"
    assert detail["acknowledged_by"] == "wang.oncall" and detail["owner"] == "wang.oncall"
    assert detail["measures"][0]["owner"] == "facilities.chen"
    kinds = [e["kind"] for e in detail["timeline"]]
    # the people's steps in order; the collector's own events (an escalation step, a cleared fault) may
    # land between them when the machine is busy
    steps = [k for k in kinds if k in ("ack", "acknowledge", "resolve", "rca", "measure", "review", "close")]
    assert steps[-5:] == ["resolve", "rca", "measure", "review", "close"], kinds

    # the measure is tracked until done
    open_measures = json.loads(cli("measures", "list", "--json", "--config", config).stdout)
    assert [(m["incident"], m["state"]) for m in open_measures] == [(int(number), "open")]
    cli("measures", "done", str(open_measures[0]["id"]), "--as", "facilities.chen", "--config", config)
    assert json.loads(cli("measures", "list", "--json", "--config", config).stdout) == []


def test_a_broken_rule_file_at_reload_keeps_the_old_rules_and_says_why(
    collector: Collector, make_agent: Callable[..., Agent], rules_dir: Path, tmpfs: Path
) -> None:
    assert metric_value(collector.metrics(), "schoolops_rules_last_reload_successful") == 1
    (rules_dir / "broken.yaml").write_text("rules:\n  - id: bad rule\n    kind: threshold\n")
    assert collector.process is not None and collector.process.popen is not None
    collector.process.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_rules_last_reload_successful") == 0,
               what="the failed reload to show")
    assert "rules_reload_failed" in collector.process.log() and "broken.yaml" in collector.process.log()

    # the old rules still work
    make_agent(collector, "web-09").start()
    (tmpfs / "fill").write_bytes(os.urandom(int(3.75 * 1024 * 1024)))
    wait_until(lambda: find(collector, "web-09", "filesystem_usage"), timeout=30, what="the old rules still firing")

    (rules_dir / "broken.yaml").unlink()
    collector.process.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_rules_last_reload_successful") == 1,
               what="the good reload")
