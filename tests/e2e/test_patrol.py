"""The daily patrol end to end: a real agent and collector, a local HTTP service, a filling tmpfs,
an asset that never reports; manual entry, sign-off, review and the comparison with the last run."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.notify_peers import Mailbox
from tests.ssh_peers import Sshd
from tests.support import Agent, Collector, cli, faults_of, free_port, people_file, set_secret, wait_until

ROOT = Path(__file__).resolve().parents[2]

CHECKLIST = """\
name: test-patrol
title: {{en: Test patrol, zh-CN: 测试巡检}}
schedule: "0 8 * * *"
sections:
  - id: servers
    title: {{en: Servers, zh-CN: 服务器}}
    items:
      - id: disk
        check: {{en: Disk usage, zh-CN: 磁盘使用率}}
        standard: {{en: at most 85 %, zh-CN: 不超过 85%}}
        method: {{kind: metric, metric: filesystem.used_percent, key: "{mount}", max: 85}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: capacity, severity: P3, runbook: tidy-test-disk}}
      - id: memory
        check: Memory usage
        standard: at most 99 %
        method: {{kind: metric, metric: memory.used_percent, max: 99}}
        applies_to: {{kind: [server]}}
        on_abnormal: {{type: capacity, severity: P3}}
  - id: services
    title: {{en: Websites and services, zh-CN: 网站与服务}}
    items:
      - id: portal
        check: {{en: The school portal answers, zh-CN: 学校门户可访问}}
        standard: HTTP 200
        method: {{kind: http, url: "http://127.0.0.1:{http_port}/", expect_status: 200}}
        applies_to: {{names: [web-01]}}
        on_abnormal: {{type: application, severity: P3}}
  - id: room
    title: {{en: Server room, zh-CN: 机房环境}}
    items:
      - id: humidity
        check: {{en: Humidity, zh-CN: 湿度}}
        standard: {{en: 40-60 %, zh-CN: 40%-60%}}
        method: {{kind: manual}}
"""


# What the patrol starts for a full test disk: removes the filler over SSH, then waits until the
# patrol, checking again, finds the disk normal and clears its fault.
TIDY = """\
name: tidy-test-disk
description: Remove the filler file from the test's small disk
safe_for_automation: true
timeout: 2m
steps:
  - name: remove-filler
    action: ssh
    params: {{argv: [rm, -f, "{fill}"]}}
    mutating: true
  - name: wait-fault-cleared
    action: wait_until
    params: {{condition: fault_cleared, timeout: 60s}}
    timeout: 90s
"""


class Portal:
    """A local web service whose answer the test chooses."""

    def __init__(self) -> None:
        self.status = 500
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
                self.send_response(portal.status)
                self.end_headers()
                self.wfile.write(b"portal")

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()




@pytest.fixture
def portal() -> Iterator[Portal]:
    server = Portal()
    yield server
    server.close()


PEOPLE = {"li.na": ["on-call"], "chen.jie": ["on-call"], "liu.director": ["director"]}


def oncall(path: Path, smtp_port: int) -> Path:
    """Two on-call people (en) and the director (zh-CN), mailed at the test's SMTP server."""
    return people_file(path, PEOPLE, languages={"liu.director": "zh-CN"}, smtp_port=smtp_port)


@pytest.fixture
def patrol_env(tmp_path: Path, start_collector: Callable[..., Collector], make_agent: Callable[..., Agent],
               tmpfs: Path, portal: Portal, smtp: tuple[Mailbox, int], sshd: Sshd) -> tuple[Collector, Agent]:
    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks, ignore=shutil.ignore_patterns("patrol"))
    (runbooks / "tidy-test-disk.yaml").write_text(TIDY.format(fill=tmpfs / "fill"))
    (runbooks / "patrol").mkdir()
    (runbooks / "patrol" / "test.yaml").write_text(CHECKLIST.format(mount=tmpfs, http_port=portal.port))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": [
        {"name": "web-01", "kind": "server", "site": "main", "role": "web", "address": "127.0.0.1",
         "ssh": {"username": sshd.username, "key_secret": "ssh.web-01", "known_hosts": str(sshd.known_hosts),
                 "port": sshd.port}},
        {"name": "ghost-01", "kind": "server", "site": "main", "role": "web"}]}))
    collector = start_collector(extra={
        "runbooks": {"dir": str(runbooks), "tick_interval": "0.3s"},
        "patrol": {"tick_interval": "0.5s", "recheck_interval": "1s"}, "inventory_file": str(inventory),
        "oncall_file": str(oncall(tmp_path / "oncall.yaml", smtp[1])), "incidents": {"tick_interval": "0.5s"},
    })
    set_secret(collector, "ssh.web-01", sshd.client_key)
    agent = make_agent(collector, "web-01").start()
    wait_until(lambda: any(a["name"] == "web-01" and a.get("last_report") for a in assets(collector)), timeout=30,
               what="the agent's first report")
    return collector, agent


def assets(collector: Collector) -> list[dict[str, Any]]:
    return json.loads(cli("assets", "list", "--json", "--config", str(collector.config_path)).stdout)


def run_patrol(collector: Collector) -> int:
    out = cli("patrol", "run", "test-patrol", "--as", "li.na", "--config", str(collector.config_path)).stdout
    assert "done:" in out, out
    return int(out.split()[2].rstrip(":"))


def report(collector: Collector, run_id: int) -> dict[str, Any]:
    return json.loads(cli("patrol", "show", str(run_id), "--format", "json", "--config", str(collector.config_path)).stdout)


def results(collector: Collector, run_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    from collector import settings
    from collector.cli import query
    from collector.store import patrol as p

    rows = query(settings.load(collector.config_path), lambda c: p.results(c, run_id))
    return {(r.item, r.asset): r.as_dict() for r in rows}


def test_a_patrol_finds_exactly_the_planted_problems_and_is_signed_and_reviewed(
    patrol_env: tuple[Collector, Agent], tmpfs: Path, portal: Portal, smtp: tuple[Mailbox, int]
) -> None:
    collector, _agent = patrol_env
    config = ["--config", str(collector.config_path)]
    (tmpfs / "fill").write_bytes(os.urandom(int(3.75 * 1024 * 1024)))  # ~94 %
    wait_until(lambda: any(f["rule"] == "filesystem_usage" for f in faults_of(collector, "web-01")), timeout=60,
               what="the agent reporting the full tmpfs")

    first = run_patrol(collector)
    found = results(collector, first)

    assert found[("disk", "web-01")]["status"] == "abnormal"
    assert str(tmpfs) in found[("disk", "web-01")]["evidence"] and "standard: at most 85" in found[("disk", "web-01")]["evidence"]
    assert found[("memory", "web-01")]["status"] == "normal"
    assert found[("portal", "web-01")]["status"] == "abnormal" and "500" in found[("portal", "web-01")]["evidence"]
    ghost = found[("disk", "ghost-01")]
    assert ghost["status"] == "not_checked" and "no report from ghost-01" in ghost["reason"]
    assert found[("humidity", "")]["status"] == "pending"
    assert {k for k, v in found.items() if v["status"] == "abnormal"} == {("disk", "web-01"), ("portal", "web-01")}
    assert {"patrol:disk", "patrol:portal"} <= {f["rule"] for f in faults_of(collector, "web-01")}

    # the disk's runbook removes the filler; checked again, the disk is normal: handled, its fault cleared
    handled = wait_until(lambda: results(collector, first)[("disk", "web-01")]["handling"] == "handled" and
                         results(collector, first)[("disk", "web-01")], timeout=60, what="the full disk handled")
    assert handled["status"] == "abnormal" and handled["handler"] == "runbook tidy-test-disk", handled
    assert "fixed by runbook tidy-test-disk" in handled["note"] and "normal when checked again" in handled["note"]
    assert not (tmpfs / "fill").exists()
    disk_fault = next(f for f in faults_of(collector, "web-01") if f["rule"] == "patrol:disk")
    assert not disk_fault["active"]
    def tidy_runs() -> list[dict[str, Any]]:
        runs = json.loads(cli("runbooks", "runs", "--json", "--config", str(collector.config_path)).stdout)
        return [run for run in runs if run["runbook"] == "tidy-test-disk"]

    [tidy] = wait_until(lambda: [r for r in tidy_runs() if r["state"] == "succeeded"], timeout=30,
                        what="the runbook run to succeed")
    assert tidy["started_by"] == "patrol" and len(tidy_runs()) == 1
    portal_row = results(collector, first)[("portal", "web-01")]
    assert portal_row["handling"] == "recorded", portal_row  # still 500: recorded and reported
    assert any(f["rule"] == "patrol:portal" and f["active"] for f in faults_of(collector, "web-01"))
    summary = wait_until(lambda: smtp[0].to("liu.director@school.test"), timeout=30, what="the director's summary")
    assert "巡检" in summary[0]["Subject"] and "2" in summary[0]["Subject"]
    assert f"schoolops patrol show {first} --format html" in summary[0].get_body(preferencelist=("plain",)).get_content()

    refused = cli("patrol", "sign", str(first), "--as", "li.na", *config, check=False)
    assert refused.returncode == 2 and "fill in the manual items first" in refused.stderr and "humidity" in refused.stderr
    refused = cli("patrol", "review", str(first), "--as", "liu.director", *config, check=False)
    assert refused.returncode == 2 and "after the patroller signs it off" in refused.stderr
    cli("patrol", "fill", str(first), "humidity", "--status", "normal", "--value", "52 %", "--as", "li.na", *config)
    cli("patrol", "sign", str(first), "--as", "li.na", *config)
    refused = cli("patrol", "review", str(first), "--as", "li.na", *config, check=False)
    assert refused.returncode == 2 and "does not hold the director role" in refused.stderr
    cli("patrol", "review", str(first), "--as", "liu.director", "--note", "ok", *config)
    runs = json.loads(cli("patrol", "runs", "--json", *config).stdout)
    signed = next(r for r in runs if r["id"] == first)
    assert signed["state"] == "reviewed" and signed["signed_by"] == "li.na" and signed["reviewed_by"] == "liu.director"

    # the disk stays fixed; the portal is still down
    wait_until(lambda: not any(f["rule"] == "filesystem_usage" and f["active"] for f in faults_of(collector, "web-01")),
               timeout=60, what="the agent reporting the freed tmpfs")
    second = run_patrol(collector)
    data = report(collector, second)
    text = json.dumps(data, ensure_ascii=False)
    assert "disk" in json.dumps(data["comparison"]["recovered"]) and "portal" in json.dumps(data["comparison"]["still_abnormal"])
    assert data["comparison"]["new_abnormal"] == []
    assert "patrol:disk" not in {f["rule"] for f in faults_of(collector, "web-01") if f["active"]}
    assert "500" in text
