"""Upgrades end to end: real sshd hosts, a real small service, the real collector and CLI, real mail.

The "server" is this machine reached through the test's own sshd (host key verified, key from the
credential store). Its service is a small HTTP server that reads its version file when it starts
and answers /health with 500 when that version is broken; ``svc restart`` (first on the SSH
session's PATH) restarts it. An upgrade swaps the version file and restarts the service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.notify_peers import Mailbox
from tests.ssh_peers import SSHD, Sshd
from tests.support import (
    Agent,
    Collector,
    cli,
    free_port,
    http_get,
    metric_value,
    people_file,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers

SERVER = """\
# the school's small service: reads its version when it starts; /health is 500 for a broken version
import http.server, os, signal, sys
port, version_file, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
version = open(version_file).read().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if self.path == "/health" and "broken" in version else 200
        body = (version if self.path == "/version" else ("ok" if status == 200 else "broken")).encode()
        self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGHUP, signal.SIG_IGN)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
child = os.fork()
if child:
    open(pidfile, "w").write(str(child))
    os._exit(0)
os.setsid()
for fd in (0, 1, 2):
    os.dup2(os.open(os.devnull, os.O_RDWR), fd)
server.serve_forever()
"""

SVC = """#!/bin/sh
# the service's control: svc restart | svc status
pidfile={root}/svc.pid
case "$1" in
  restart)
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
    i=0; while [ $i -lt 50 ] && kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
    exec /usr/bin/python3 {root}/server.py {port} {root}/app/VERSION "$pidfile" ;;
  status) kill -0 "$(cat "$pidfile")" 2>/dev/null ;;
  *) echo "usage: svc restart|status" >&2; exit 2 ;;
esac
"""

WAIT_FOR = """#!/bin/sh
# wait (at most 60 s) until the file $1 exists: holds an upgrade step open while the test acts
i=0; while [ $i -lt 600 ] && [ ! -e "$1" ]; do sleep 0.1; i=$((i+1)); done
[ -e "$1" ]
"""

STEP = """#!/bin/sh
# upgrade-step HOST VERSION: install VERSION on HOST; fails where the host has a FAIL marker
if [ -e "{root}/hosts/$1/FAIL" ]; then echo "disk error on $1" >&2; exit 1; fi
cp "{root}/releases/$2/VERSION" "{root}/hosts/$1/VERSION"
"""


class Server:
    """The upgraded host's files: the service, its releases, the scripts on the SSH session's PATH."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.bin = root / "bin"
        for folder in (self.bin, root / "app", root / "backups", root / "hosts"):
            folder.mkdir(parents=True, exist_ok=True)
        for version in ("2.3", "2.4", "2.5-broken"):
            (root / "releases" / version).mkdir(parents=True)
            (root / "releases" / version / "VERSION").write_text(version + "\n")
        (root / "app" / "VERSION").write_text("2.3\n")
        (root / "server.py").write_text(SERVER)
        for name, text in (("svc", SVC), ("wait-for", WAIT_FOR), ("upgrade-step", STEP)):
            (self.bin / name).write_text(text.format(root=root, port=self.port))
            (self.bin / name).chmod(0o755)

    def start(self) -> None:
        subprocess.run([str(self.bin / "svc"), "restart"], check=True, timeout=10)
        wait_until(lambda: self.version() == "2.3", timeout=10, what="the service answering")

    def version(self) -> str | None:
        try:
            status, body = http_get(f"http://127.0.0.1:{self.port}/version", timeout=2)
        except OSError:
            return None
        return body.decode() if status == 200 else None

    def health(self) -> int | None:
        try:
            return http_get(f"http://127.0.0.1:{self.port}/health", timeout=2)[0]
        except OSError:
            return None

    def stop(self) -> None:
        try:
            os.kill(int((self.root / "svc.pid").read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    host = Server(tmp_path / "host")
    yield host
    host.stop()


def _sshd(directory: Path, server: Server) -> Sshd:
    if not Path(SSHD).exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    return Sshd(directory, extra_config=f"SetEnv PATH={server.bin}:/usr/bin:/bin\n").start()


@pytest.fixture
def sshds(tmp_path: Path, server: Server) -> Iterator[list[Sshd]]:
    """Three sshd hosts (each its own port, host key and client key)."""
    started = [_sshd(tmp_path / f"sshd-{n}", server) for n in range(3)]
    yield started
    for sshd in started:
        sshd.stop()


PEOPLE = {"li.na": ["on-call"], "wang.wei": ["on-call"], "zhang.director": ["director"], "ops.zhou": ["operator"]}


def plan_text(server: Server, *, name: str = "portal", version: str = "2.4", assets: str = "{names: [web-01]}",
              backup_steps: str | None = None, serial: int = 1, execute: str | None = None, post: str | None = None,
              rollback: str | None = None, extra_pre: str = "", compare: str = "") -> str:
    root = server.root
    health = f"http://127.0.0.1:{server.port}/health"
    backup_steps = backup_steps if backup_steps is not None else (
        f"[{{name: dump, action: ssh, params: {{argv: [tar, -czf, '{{{{ backup_file }}}}', -C, {root}/app, VERSION]}}}}]")
    execute = execute or f"""
    - {{name: swap-version, action: ssh, mutating: true,
       params: {{argv: [cp, "{root}/releases/{{{{ version }}}}/VERSION", {root}/app/VERSION]}}}}
    - {{name: restart, action: ssh, mutating: true, params: {{argv: [svc, restart]}}}}"""
    post = post or f"""
    - {{name: healthy, action: http, params: {{url: "{health}", expect_status: 200}}}}"""
    rollback = rollback or f"""
    - {{name: restore, action: ssh, mutating: true, params: {{argv: [tar, -xzf, '{{{{ backup_file }}}}', -C, {root}/app]}}}}
    - {{name: restart, action: ssh, mutating: true, params: {{argv: [svc, restart]}}}}"""
    return f"""\
name: {name}
description: Upgrade the portal service to {version}
reason: {{source: vendor_notice, reference: "PortalSoft notice PS-2026-11", detail: Fixes the login page}}
assets: {assets}
approval: {{role: director}}
window: {{duration: 10m}}
serial: {serial}
variables: {{version: "{version}"}}
pre_checks:
  patrol: true
  steps:
    - {{name: healthy, action: http, params: {{url: "{health}", expect_status: 200}}}}{extra_pre}
backup:
  steps: {backup_steps}
  verify:
    path: "{root}/backups/{{{{ asset.name }}}}-before-{{{{ version }}}}.tar.gz"
    min_size: 20
    max_age: 10m
    restore_test: [tar, -tzf, "{{{{ backup_file }}}}"]
execute:
  steps:{execute}
post_checks:
  wait: 30s
  steps:{post}{compare}
rollback:
  steps:{rollback}
"""


CHECKLIST = """\
name: servers
title: {en: Server patrol}
sections:
  - id: services
    title: {en: Services}
    items:
      - id: service-running
        check: {en: The portal service runs}
        standard: {en: svc status exits 0}
        method: {kind: ssh, argv: [svc, status]}
        applies_to: {role: [web]}
        on_abnormal: {type: application, severity: P3}
"""


class Setup:
    def __init__(self, tmp_path: Path, start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int]) -> None:
        self.tmp_path, self.start_collector, self.mailbox = tmp_path, start_collector, smtp[0]
        self.smtp_port = smtp[1]
        self.runbooks = tmp_path / "runbooks"
        (self.runbooks / "upgrades").mkdir(parents=True)
        (self.runbooks / "patrol").mkdir()
        (self.runbooks / "patrol" / "servers.yaml").write_text(CHECKLIST)
        self.collector: Collector | None = None

    def start(self, hosts: dict[str, Sshd], *, others: tuple[str, ...] = ()) -> Collector:
        assets = [{"name": name, "kind": "server", "site": "main-building", "role": "web", "address": "127.0.0.1",
                   "ssh": {"username": sshd.username, "key_secret": f"ssh.{name}", "known_hosts": str(sshd.known_hosts),
                           "port": sshd.port}} for name, sshd in hosts.items()]
        assets += [{"name": name, "kind": "server", "site": "main-building", "role": "library", "address": "127.0.0.1"}
                   for name in others]
        inventory = self.tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"assets": assets}))
        people = people_file(self.tmp_path / "oncall.yaml", PEOPLE, languages={"zhang.director": "zh-CN"},
                             smtp_port=self.smtp_port)
        self.collector = self.start_collector(extra={
            "runbooks": {"dir": str(self.runbooks), "tick_interval": "0.3s"}, "inventory_file": str(inventory),
            "oncall_file": str(people),
            "incidents": {"tick_interval": "0.5s", "quiet_period": "60s", "teaching_roles": []},
        })
        for name, sshd in hosts.items():
            set_secret(self.collector, f"ssh.{name}", sshd.client_key)
        return self.collector

    def plan(self, name: str, text: str) -> Path:
        path = self.runbooks / "upgrades" / f"{name}.yaml"
        path.write_text(text)
        return path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.collector is not None
        return cli("upgrade", *args, "--config", str(self.collector.config_path), check=check)

    def request(self, plan: str, *, by: str = "li.na") -> int:
        out = self.cli("run", plan, "--as", by).stdout
        return int(out.split()[1].rstrip(":"))

    def approve(self, upgrade_id: int, *, by: str = "zhang.director") -> subprocess.CompletedProcess[str]:
        return self.cli("approve", str(upgrade_id), "--as", by, "--wait", check=False)

    def record(self, upgrade_id: int) -> dict[str, Any]:
        return json.loads(self.cli("show", str(upgrade_id), "--json").stdout)

    def mail_to(self, person: str, contains: str, timeout: float = 30) -> Any:
        return wait_until(lambda: [m for m in self.mailbox.to(f"{person}@school.test") if contains in m["Subject"]],
                          timeout=timeout, what=f"mail to {person} about {contains}")[0]


@pytest.fixture
def setup(tmp_path: Path, start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int]) -> Setup:
    return Setup(tmp_path, start_collector, smtp)


def body(mail: Any) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())


def steps_of(record: dict[str, Any], phase: str, asset: str | None = None) -> list[dict[str, Any]]:
    return [s for s in record["steps"] if s["phase"] == phase and (asset is None or s["asset"] == asset)]


def test_an_approved_upgrade_backs_up_swaps_the_version_passes_its_checks_and_reports(
    setup: Setup, server: Server, sshds: list[Sshd], make_agent: Callable[..., Agent],
) -> None:
    server.start()
    collector = setup.start({"web-01": sshds[0]})
    agent = make_agent(collector, "web-01", extra={"probes": {"ports": [{"name": "portal", "port": server.port}]}}).start()
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_port_listening", asset="web-01") == 1,
               timeout=30, what="the agent seeing the service's port")
    compare = "\n  compare:\n    metrics:\n      - {metric: port.listening, key: portal, max_decrease: 0}"
    free = "\n  free_disk: [{path: /, min: 1MiB}]"
    setup.plan("portal", plan_text(server, compare=compare).replace("  patrol: true\n", "  patrol: true" + free + "\n", 1))

    # the dry run shows every step, values filled in, and touches nothing
    dry = setup.cli("run", "portal", "--dry-run").stdout
    assert f"cp {server.root}/releases/2.4/VERSION {server.root}/app/VERSION" in dry
    assert f"{server.root}/backups/web-01-before-2.4.tar.gz" in dry and "rollback:" in dry
    assert server.version() == "2.3"

    # pre-checks only: the patrol item, the health check, free disk, the value to compare
    checked = setup.cli("check", "portal", "--as", "li.na", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "patrol servers/service-running: ok" in checked.stdout and "free disk /: ok" in checked.stdout

    upgrade_id = setup.request("portal")
    refused = setup.cli("approve", str(upgrade_id), "--as", "li.na", check=False)  # nobody approves their own plan
    assert refused.returncode != 0 and "cannot approve their own plan" in refused.stderr
    by_operator = setup.cli("approve", str(upgrade_id), "--as", "ops.zhou", check=False)
    assert by_operator.returncode != 0 and "only someone with the director role" in by_operator.stderr
    assert setup.record(upgrade_id)["state"] == "waiting_approval"
    ask = setup.mail_to("zhang.director", "portal")  # the approver was asked, in their language
    assert "请批准系统升级 portal" in ask["Subject"] and f"schoolops upgrade approve {upgrade_id}" in body(ask)

    done = setup.approve(upgrade_id)
    assert done.returncode == 0, done.stdout + done.stderr
    record = setup.record(upgrade_id)
    assert record["state"] == "succeeded", record["result"]
    assert server.version() == "2.4" and server.health() == 200
    backup = server.root / "backups" / "web-01-before-2.4.tar.gz"
    assert backup.stat().st_size >= 20
    verified = next(s for s in steps_of(record, "backup") if s["name"] == "backup file")
    assert verified["status"] == "ok" and str(backup) in verified["detail"]
    assert [s["name"] for s in steps_of(record, "execute")] == ["swap-version", "restart"]
    post = {s["name"]: s for s in steps_of(record, "post_checks")}
    assert post["healthy"]["status"] == "ok"
    assert post["compare web-01 port.listening portal"]["detail"].startswith("port.listening[portal]: before 1, after 1")
    assert not steps_of(record, "rollback")

    # the window covered exactly web-01 for the upgrade and is closed now
    windows = json.loads(cli("maintenance", "list", "--json", "--config", str(collector.config_path)).stdout)
    window = next(w for w in windows if w["id"] == record["window_id"])
    assert json.loads(window["scope"])["assets"] == ["web-01"] and window["state"] == "ended"

    report = setup.mail_to("zhang.director", "成功")
    text = body(report)
    assert "系统升级 portal（申请" in text and "升级前检查" in text and "厂商通知" in text and "PS-2026-11" in text
    assert "port.listening[portal]: before 1, after 1" in text
    agent.stop()


def test_a_broken_version_fails_its_post_checks_and_rolls_back_to_a_healthy_service(
    setup: Setup, server: Server, sshds: list[Sshd],
) -> None:
    server.start()
    setup.start({"web-01": sshds[0]})
    setup.plan("portal", plan_text(server, version="2.5-broken"))
    upgrade_id = setup.request("portal")
    done = setup.approve(upgrade_id)
    assert done.returncode == 1, done.stdout + done.stderr
    record = setup.record(upgrade_id)
    assert record["state"] == "rolled_back", record["result"]
    assert "web-01: step healthy failed: status 500, expected 200" in record["result"]
    assert server.version() == "2.3" and server.health() == 200  # the old version runs again
    assert [s["name"] for s in steps_of(record, "rollback")] == ["restore", "restart"]
    assert all(s["status"] == "ok" for s in steps_of(record, "after_rollback"))
    report = setup.mail_to("zhang.director", "失败，已回滚")
    text = body(report)
    assert "status 500, expected 200" in text and "回滚后检查: 通过" in text
    requester = setup.mail_to("li.na", "failed and rolled back")  # whoever asked gets it in their language
    assert "Rollback" in body(requester)


@pytest.mark.parametrize("dump", ["missing", "empty"])
def test_a_backup_that_made_no_file_or_an_empty_one_stops_the_upgrade_before_any_change(
    setup: Setup, server: Server, sshds: list[Sshd], dump: str,
) -> None:
    server.start()
    setup.start({"web-01": sshds[0]})
    backup = server.root / "backups" / "web-01-before-2.4.tar.gz"
    make = ("[{name: dump, action: ssh, params: {argv: ['true']}}]" if dump == "missing" else
            f"[{{name: dump, action: ssh, params: {{argv: [touch, '{backup}']}}}}]")
    setup.plan("portal", plan_text(server, backup_steps=make))
    upgrade_id = setup.request("portal")
    assert setup.approve(upgrade_id).returncode == 1
    record = setup.record(upgrade_id)
    assert record["state"] == "stopped"
    why = "is missing: stat: cannot" if dump == "missing" else "less than the 20 B expected (empty)"
    assert why in record["result"] and "nothing was changed" in record["result"]
    assert not steps_of(record, "execute") and not steps_of(record, "rollback")
    assert server.version() == "2.3"


def test_batches_over_three_hosts_stop_after_the_first_failed_batch(
    setup: Setup, server: Server, sshds: list[Sshd],
) -> None:
    hosts = {"web-a": sshds[0], "web-b": sshds[1], "web-c": sshds[2]}
    for name in hosts:
        (server.root / "hosts" / name).mkdir()
        (server.root / "hosts" / name / "VERSION").write_text("2.3\n")
    (server.root / "hosts" / "web-b" / "FAIL").write_text("")
    setup.start(hosts)
    files = f"{server.root}/hosts/{{{{ asset.name }}}}"
    setup.plan("fleet", plan_text(
        server, name="fleet", assets="{role: [web]}", serial=1,
        backup_steps=f"[{{name: dump, action: ssh, params: {{argv: [tar, -czf, '{{{{ backup_file }}}}', -C, '{files}', VERSION]}}}}]",
        execute="\n    - {name: install, action: ssh, mutating: true, params: {argv: [upgrade-step, '{{ asset.name }}', '{{ version }}']}}",
        post=f"\n    - {{name: installed, action: ssh, params: {{argv: [grep, -qx, '{{{{ version }}}}', '{files}/VERSION']}}}}",
        rollback=f"\n    - {{name: restore, action: ssh, mutating: true, params: {{argv: [tar, -xzf, '{{{{ backup_file }}}}', -C, '{files}']}}}}",
    ).replace("  patrol: true\n  steps:\n    - {name: healthy", "  patrol: false\n  steps:\n    - {name: reachable")
                .replace(f'url: "http://127.0.0.1:{server.port}/health"', f'url: "http://127.0.0.1:{server.port}/version"'))
    server.start()
    upgrade_id = setup.request("fleet")
    assert setup.approve(upgrade_id).returncode == 1
    record = setup.record(upgrade_id)
    assert record["state"] == "rolled_back", record["result"]
    assert record["result"].startswith("1 of 3 upgraded, 1 rolled back, 1 not started: web-b: step install failed")
    versions = {name: (server.root / "hosts" / name / "VERSION").read_text().strip() for name in hosts}
    assert versions == {"web-a": "2.4", "web-b": "2.3", "web-c": "2.3"}
    assert [(s["batch"], s["asset"]) for s in steps_of(record, "execute")] == [(1, "web-a"), (2, "web-b")]
    assert not steps_of(record, "execute", "web-c") and [s["asset"] for s in steps_of(record, "rollback")] == ["web-b"]
    assert [b["result"] for b in record["outcome"]["batches"]] == ["upgraded", "rolled_back", "not_started"]
    for sshd in hosts.values():  # each host was reached through its own sshd (pre-check, backup...)
        assert sshd.accepted_logins() >= 1


def test_faults_on_the_upgraded_asset_wait_for_the_window_to_close_while_others_page(
    setup: Setup, server: Server, sshds: list[Sshd],
) -> None:
    go = server.root / "go"
    server.start()
    collector = setup.start({"web-01": sshds[0]}, others=("lib-01",))
    setup.plan("portal", plan_text(server, execute=f"""
    - {{name: hold, action: ssh, timeout: 90s, params: {{argv: [wait-for, "{go}"]}}}}"""))
    upgrade_id = setup.request("portal")
    setup.cli("approve", str(upgrade_id), "--as", "zhang.director")
    wait_until(lambda: any(s["phase"] == "backup" for s in setup.record(upgrade_id)["steps"])
               and setup.record(upgrade_id)["state"] == "running", timeout=30, what="the upgrade under way")
    config = ["--config", str(collector.config_path), "--as", "wang.wei"]
    cli("report-fault", "portal pages time out", "--asset", "web-01", "--severity", "P1", *config)
    cli("report-fault", "library catalogue down", "--asset", "lib-01", "--severity", "P2", *config)
    setup.mail_to("li.na", "lib-01")  # the other asset pages as usual
    time.sleep(3)  # several engine ticks: the upgraded asset's fault must stay quiet meanwhile
    assert not [m for m in setup.mailbox.to("li.na@school.test") if "web-01" in m["Subject"]]
    go.write_text("")
    wait_until(lambda: setup.record(upgrade_id)["state"] == "succeeded", timeout=60, what="the upgrade done")
    late = setup.mail_to("li.na", "web-01")  # still there when the window closed: it pages now
    assert "portal pages time out" in body(late) or "web-01" in late["Subject"]


SWITCH_PLAN = """\
name: uplink-label
description: Label the uplink port
reason: {source: school_need, reference: "ticket 42"}
assets: {names: [access-sw-3]}
approval: {role: director}
window: {duration: 10m}
backup: {config: true}
execute:
  steps:
    - {name: label, action: cli, mutating: true,
       params: {config_mode: true, commands: ["interface GigabitEthernet1/0/13", "description upgraded uplink"]}}
post_checks:
  steps:
    - {name: labelled, action: cli, params: {commands: ["show running-config"], expect: "description upgraded uplink"}}
rollback:
  steps:
    - {name: unlabel, action: cli, mutating: true,
       params: {config_mode: true, commands: ["interface GigabitEthernet1/0/13", "description lab 3 desk 13"]}}
"""


@pytest.fixture
def fake_switch() -> Iterator[Any]:
    from tests.fake_cli_device import FakeCiscoDevice, served_in_a_thread

    device = FakeCiscoDevice(hostname="access-sw-3", username="netops", password="sw-pass", enable_secret="sw-enable")
    device.running_config = device.running_config.replace(
        "interface Vlan1\n", "interface GigabitEthernet1/0/13\n description lab 3 desk 13\n!\ninterface Vlan1\n")
    with served_in_a_thread(device) as server:
        yield server


def test_a_network_device_is_backed_up_through_the_config_store_before_its_change(
    setup: Setup, fake_switch: Any, tmp_path: Path,
) -> None:
    known_hosts = tmp_path / "switch_known_hosts"
    known_hosts.write_text(fake_switch.host_key_line + "\n")
    inventory = tmp_path / "switch-inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": [{
        "name": "access-sw-3", "kind": "network", "site": "lab-building", "address": "127.0.0.1",
        "cli": {"device_type": "cisco_ios", "username": "netops", "password_secret": "sw.password",
                "enable_secret": "sw.enable", "known_hosts": str(known_hosts), "port": fake_switch.port,
                "backup": False, "timeout": "20s"}}]}))
    people = people_file(tmp_path / "oncall.yaml", PEOPLE, smtp_port=setup.smtp_port)
    collector = setup.collector = setup.start_collector(extra={
        "runbooks": {"dir": str(setup.runbooks), "tick_interval": "0.3s"}, "inventory_file": str(inventory),
        "oncall_file": str(people)})
    set_secret(collector, "sw.password", "sw-pass")
    set_secret(collector, "sw.enable", "sw-enable")
    setup.plan("uplink-label", SWITCH_PLAN)
    upgrade_id = setup.request("uplink-label")
    done = setup.approve(upgrade_id)
    assert done.returncode == 0, done.stdout + done.stderr
    record = setup.record(upgrade_id)
    saved = next(s for s in steps_of(record, "backup") if s["name"] == "configuration")
    assert saved["status"] == "ok" and saved["detail"].startswith("configuration saved as ")
    assert "description lab 3 desk 13" in cli("backups", "show", "access-sw-3", "--config",
                                              str(collector.config_path)).stdout  # the configuration before
    assert "description upgraded uplink" in fake_switch.device.running_config
