"""The isolate-host security plan end to end: nothing touches the switch until the director approves.

A real collector, a real SMTP server and the fake Cisco switch (asyncssh): a person on call starts
the shipped ``isolate-host`` runbook by hand for ``lab-pc-13``, which is plugged into
``access-sw-3`` GigabitEthernet1/0/13. The run waits for the director; the one who started it and
an operator may not approve; the director's approval shuts the port. A request nobody answers
expires, a denial over the API ends the run, and a dry run says what would happen without
connecting to anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_cli_device import FakeCiscoDevice, FakeDeviceServer, served_in_a_thread
from tests.notify_peers import Mailbox, smtp_server
from tests.support import Collector, cli, set_secret, wait_until

ROOT = Path(__file__).resolve().parents[2]
HOST, SWITCH, PORT = "lab-pc-13", "access-sw-3", "GigabitEthernet1/0/13"
SWITCH_PASSWORD, SWITCH_ENABLE = "access-sw-3-login", "access-sw-3-enable"
MONDAY = "2026-01-05"  # a week where rotation[0] is on duty
FINAL = ("succeeded", "failed", "aborted", "escalated", "timed_out", "denied", "expired", "interrupted", "refused")
SHUT = f"cli {SWITCH} (configure): interface {PORT}; description isolated: {HOST}; shutdown"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


# --- the peers ------------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def fake_switch() -> Iterator[FakeDeviceServer]:
    """access-sw-3 on a free loopback port, with lab-pc-13's access port GigabitEthernet1/0/13 cabled."""
    device = FakeCiscoDevice(hostname=SWITCH, username="netops", password=SWITCH_PASSWORD, enable_secret=SWITCH_ENABLE)
    config = device.running_config
    assert "interface Vlan1\n" in config and f"interface {PORT}\n" not in config
    device.running_config = config.replace("interface Vlan1\n", f"interface {PORT}\n description lab 3 desk 13\n"
                                           " switchport access vlan 20\n switchport mode access\n!\ninterface Vlan1\n")
    device.link_up[PORT] = True
    with served_in_a_thread(device) as server:
        yield server


# --- the lab: inventory, on-call file, collector ---------------------------------------------------


@dataclass
class Lab:
    collector: Collector
    mailbox: Mailbox
    switch: FakeDeviceServer

    @property
    def device(self) -> FakeCiscoDevice:
        return self.switch.device

    def schoolops(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--config", str(self.collector.config_path), check=check)

    def start_run(self, runbook: str = "isolate-host", person: str = "li.ops") -> int:
        out = self.schoolops("runbooks", "run", runbook, "--asset", HOST, "--as", person, "--no-wait").stdout
        assert f": {runbook} on {HOST} queued" in out, out
        return int(out.split()[1].rstrip(":"))

    def record(self, run_id: int) -> dict[str, Any]:
        return json.loads(self.schoolops("runbooks", "record", str(run_id), "--json").stdout)

    def wait_for_state(self, run_id: int, states: tuple[str, ...], *, timeout: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = self.record(run_id)
            return record if record["state"] in states else None

        found = wait_until(reached, timeout=timeout, interval=0.2, what=f"run {run_id} to be {' or '.join(states)}")
        assert found is not None
        return found

    def decide(self, verb: str, run_id: int, person: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.schoolops("runbooks", verb, str(run_id), "--as", person, *extra, check=False)

    def audit(self, run_id: int) -> list[tuple[str, str]]:
        """(actor, action) of every audit-log entry about the run, oldest first."""
        import sqlalchemy as sa

        from collector import settings
        from collector.cli import query
        from collector.store.tables import audit_log

        select = (sa.select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.target == f"run:{run_id}")
                  .order_by(audit_log.c.id))
        rows = query(settings.load(self.collector.config_path), lambda c: c.execute(select).all())
        return [(row.actor, row.action) for row in rows]

    def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.collector.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with _DIRECT.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def untouched(self) -> bool:
        return self.device.connections == 0 and self.device.commands == []


def write_oncall(path: Path, smtp_port: int) -> Path:
    def person(pid: str, name: str, roles: list[str], address: str) -> dict[str, Any]:
        return {"id": pid, "name": name, "language": "en", "roles": roles,
                "contacts": [{"channel": "email", "address": address}]}

    data = {
        "timezone": "Asia/Shanghai",
        "people": [
            person("li.ops", "Li Ops", ["on-call"], "li.ops@school.test"),
            person("chen.backup", "Chen Backup", ["on-call"], "chen@school.test"),
            person("zhao.op", "Zhao Operator", ["operator"], "zhao@school.test"),
            person("liu.director", "Director Liu", ["director"], "liu@school.test"),
        ],
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "sender": "schoolops@school.test"}],
        "schedule": {"handover": {"day": "mon", "time": "09:00"}, "start": MONDAY,
                     "rotation": [{"primary": "li.ops", "backup": "chen.backup"}]},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_inventory(path: Path, switch_port: int, known_hosts: Path) -> Path:
    assets = [
        {"name": HOST, "kind": "server", "site": "lab-building", "labels": {"switch": SWITCH, "switch_port": PORT}},
        {"name": SWITCH, "kind": "network", "site": "lab-building", "address": "127.0.0.1",
         "cli": {"device_type": "cisco_ios", "username": "netops", "password_secret": "access-sw-3.password",
                 "enable_secret": "access-sw-3.enable", "known_hosts": str(known_hosts), "port": switch_port,
                 "backup": False, "timeout": "20s"}},
    ]
    path.write_text(yaml.safe_dump({"assets": assets}, sort_keys=False))
    return path


@pytest.fixture
def lab(tmp_path: Path, start_collector: Callable[..., Collector], smtp: tuple[Mailbox, int],
        fake_switch: FakeDeviceServer) -> Callable[..., Lab]:
    """Start the collector with the inventory, the on-call file and (optionally) a runbooks folder."""
    mailbox, smtp_port = smtp

    def make(runbooks_dir: Path | None = None) -> Lab:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(fake_switch.host_key_line + "\n")
        runbooks: dict[str, Any] = {"tick_interval": "0.5s"}
        if runbooks_dir is not None:
            runbooks["dir"] = str(runbooks_dir)
        collector = start_collector(extra={
            "inventory_file": str(write_inventory(tmp_path / "inventory.yaml", fake_switch.port, known_hosts)),
            "oncall_file": str(write_oncall(tmp_path / "oncall.yaml", smtp_port)),
            "runbooks": runbooks,
        })
        set_secret(collector, "access-sw-3.password", SWITCH_PASSWORD)
        set_secret(collector, "access-sw-3.enable", SWITCH_ENABLE)
        return Lab(collector, mailbox, fake_switch)

    return make


def subjects(mailbox: Mailbox, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mailbox.to(address)]


def text(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def port_section(device: FakeCiscoDevice) -> list[str]:
    return next(block for block in device.blocks() if block[0] == f"interface {PORT}")


# --- the tests ------------------------------------------------------------------------------------


def test_the_director_approves_and_only_then_the_port_is_shut(lab: Callable[..., Lab]) -> None:
    env = lab()
    run_id = env.start_run()

    waiting = env.wait_for_state(run_id, ("waiting_approval", *FINAL), timeout=30)
    assert waiting["state"] == "waiting_approval", waiting
    assert waiting["result"] == f"waiting for director to approve: isolate {HOST}: shut {SWITCH} {PORT}"
    assert [(s["name"], s["status"]) for s in waiting["steps"]] == [("tell", "ok"), ("ask-director", "waiting")]
    [pending] = waiting["approvals"]
    assert pending["role"] == "director" and pending["requested_by"] == "li.ops" and pending["decision"] is None
    assert env.untouched()  # nothing has reached the switch: not a login, not a command

    # the director is asked by email, with how to approve; the request goes to the role only
    request = wait_until(lambda: [m for m in env.mailbox.to("liu@school.test")
                                  if str(m["Subject"]).startswith("Approval needed")],
                         timeout=20, what="the approval request email")[0]
    assert request["Subject"] == f"Approval needed: runbook isolate-host on {HOST}"
    body = text(request)
    assert f"li.ops asks the director role to approve: isolate {HOST}: shut {SWITCH} {PORT}" in body
    assert f"schoolops runbooks approve {run_id} --as" in body
    for other in ("li.ops@school.test", "zhao@school.test", "chen@school.test"):
        assert not [s for s in subjects(env.mailbox, other) if s.startswith("Approval needed")], other

    # nobody approves their own request; an operator does not hold the director role
    own = env.decide("approve", run_id, "li.ops")
    assert own.returncode != 0
    assert f"run {run_id}: li.ops started this run and cannot approve their own request" in own.stderr
    operator = env.decide("approve", run_id, "zhao.op")
    assert operator.returncode != 0
    assert "only someone with the director role may decide; zhao.op does not have it" in operator.stderr
    assert env.record(run_id)["state"] == "waiting_approval"
    assert env.untouched()

    approved = env.decide("approve", run_id, "liu.director", "--note", "confirmed with the lab teacher")
    assert approved.returncode == 0, approved.stderr
    assert f"run {run_id}: approved by liu.director; the collector resumes it" in approved.stdout

    done = env.wait_for_state(run_id, FINAL, timeout=90)
    assert done["state"] == "succeeded", json.dumps(done, indent=2)

    # the switch: the port is shut and says why, changed by the runbook's login in one config session
    section = port_section(env.device)
    assert " shutdown" in section and f" description isolated: {HOST}" in section, section
    assert " description lab 3 desk 13" not in section
    assert env.device.last_change_by == "netops"
    commands = env.device.commands
    config_at = commands.index("configure terminal")
    assert commands[config_at + 1:config_at + 4] == [f"interface {PORT}", f"description isolated: {HOST}", "shutdown"]
    assert f"show interfaces {PORT}" in commands[config_at + 4:]  # the verify step, after the change
    before = {b[0]: b for b in FakeCiscoDevice(hostname=SWITCH).blocks() if b[0].startswith("interface ")}
    after = {b[0]: b for b in env.device.blocks() if b[0].startswith("interface ")}
    assert {name: block for name, block in after.items() if name != f"interface {PORT}"} == before  # only that port

    # the record: every step, the commands sent, what the device said, who decided
    steps = {s["name"]: s for s in done["steps"]}
    assert [s["name"] for s in done["steps"]] == ["tell", "ask-director", "shut-port", "shut-port/verify", "report"]
    assert steps["shut-port"]["status"] == "ok" and steps["shut-port"]["action"] == "cli"
    assert steps["shut-port"]["command"] == SHUT
    assert "shutdown" in steps["shut-port"]["output"]
    assert steps["shut-port/verify"]["status"] == "ok"
    assert steps["shut-port/verify"]["command"] == f"cli {SWITCH} (show): show interfaces {PORT} (expect /administratively down/)"
    assert f"{PORT} is administratively down" in steps["shut-port/verify"]["output"]
    assert steps["report"]["status"] == "ok"
    assert steps["ask-director"]["status"] == "approved" and steps["ask-director"]["detail"].startswith("approved by liu.director")
    [decision] = done["approvals"]
    assert decision["decision"] == "approved" and decision["decided_by"] == "liu.director"
    assert decision["note"] == "confirmed with the lab teacher"
    assert SWITCH_PASSWORD not in json.dumps(done) and SWITCH_ENABLE not in json.dumps(done)
    shown = env.schoolops("runbooks", "record", str(run_id)).stdout
    assert "approval" in shown and "approved by liu.director" in shown

    # the audit log: who asked, who approved, how it ended
    trail = env.audit(run_id)
    for entry in (("li.ops", "runbook.request"), ("li.ops", "runbook.start"), ("li.ops", "runbook.approval_requested"),
                  ("liu.director", "runbook.approved"), ("li.ops", "runbook.succeeded")):
        assert entry in trail, trail
    assert trail.index(("li.ops", "runbook.approval_requested")) < trail.index(("liu.director", "runbook.approved"))

    # the report goes out once the port is shut
    wait_until(lambda: [m for m in env.mailbox.to("liu@school.test") if f"{HOST} is isolated" in text(m)],
               timeout=20, what="the report to the director")
    log = env.collector.process.log()  # type: ignore[union-attr]
    assert SWITCH_PASSWORD not in log and SWITCH_ENABLE not in log


def test_a_refused_approval_is_in_the_audit_log(lab: Callable[..., Lab]) -> None:
    env = lab()
    run_id = env.start_run()
    assert env.wait_for_state(run_id, ("waiting_approval", *FINAL), timeout=30)["state"] == "waiting_approval"
    assert env.decide("approve", run_id, "li.ops").returncode != 0
    assert env.decide("approve", run_id, "zhao.op").returncode != 0
    trail = env.audit(run_id)
    assert ("li.ops", "runbook.approval_refused") in trail and ("zhao.op", "runbook.approval_refused") in trail, trail


def test_a_request_nobody_answers_expires_and_cannot_be_approved_late(lab: Callable[..., Lab], tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", folder)
    shipped = (ROOT / "runbooks" / "emergency" / "isolate-host.yaml").read_text(encoding="utf-8")
    assert shipped.count("\nname: isolate-host\n") == 1 and shipped.count("expires: 24h") == 1
    quick = shipped.replace("\nname: isolate-host\n", "\nname: isolate-host-quick\n").replace("expires: 24h", "expires: 2s")
    (folder / "emergency" / "isolate-host-quick.yaml").write_text(quick, encoding="utf-8")
    env = lab(folder)
    assert "isolate-host-quick" in env.schoolops("runbooks", "list").stdout

    run_id = env.start_run("isolate-host-quick")
    ended = env.wait_for_state(run_id, FINAL, timeout=30)
    assert ended["state"] == "expired", ended
    assert ended["result"] == "nobody with the director role approved within the time allowed"
    [request] = ended["approvals"]
    assert request["decision"] == "expired" and request["decided_by"] == "schoolops"
    assert request["expires_at"] - request["requested_at"] == pytest.approx(2.0)
    assert ended["finished_at"] >= request["expires_at"]
    assert "shut-port" not in [s["name"] for s in ended["steps"]]

    late = env.decide("approve", run_id, "liu.director")
    assert late.returncode != 0 and f"run {run_id}: the request was already expired" in late.stderr
    time.sleep(1.5)  # three runbook ticks: an expired run is not picked up again
    assert env.record(run_id)["state"] == "expired"
    assert env.untouched()
    trail = env.audit(run_id)
    assert ("li.ops", "runbook.expired") in trail and not [a for _, a in trail if a == "runbook.approved"], trail


def test_the_director_denies_over_the_api(lab: Callable[..., Lab]) -> None:
    env = lab()
    director = env.schoolops("api-token", "create", "liu.director").stdout.strip()
    starter = env.schoolops("api-token", "create", "li.ops").stdout.strip()
    run_id = env.start_run()
    assert env.wait_for_state(run_id, ("waiting_approval", *FINAL), timeout=30)["state"] == "waiting_approval"

    status, body = env.api("POST", f"/api/v1/runbook-runs/{run_id}/approve", starter, {})
    assert status == 403 and "cannot approve their own request" in json.dumps(body), body

    status, body = env.api("POST", f"/api/v1/runbook-runs/{run_id}/deny", director,
                           {"note": "the lab teacher has unplugged it already"})
    assert status == 200, body
    assert body == {"run": run_id, "decision": "denied", "by": "liu.director"}

    status, shown = env.api("GET", f"/api/v1/runbook-runs/{run_id}", director)
    assert status == 200
    assert shown["state"] == "denied"
    assert shown["result"] == "liu.director denied the request: the lab teacher has unplugged it already"
    [decision] = shown["approvals"]
    assert decision["decision"] == "denied" and decision["decided_by"] == "liu.director"

    status, body = env.api("POST", f"/api/v1/runbook-runs/{run_id}/approve", director, {})
    assert status == 403 and "the request was already denied" in json.dumps(body), body
    time.sleep(1.5)  # three runbook ticks: a denied run is not resumed
    assert env.record(run_id)["state"] == "denied"
    assert env.untouched()
    assert ("liu.director", "runbook.denied") in env.audit(run_id)


def test_a_dry_run_shows_the_commands_and_touches_nothing(lab: Callable[..., Lab]) -> None:
    env = lab()
    out = env.schoolops("runbooks", "run", "isolate-host", "--asset", HOST, "--dry-run").stdout
    assert f"dry run on {HOST}: nothing is executed" in out
    assert SHUT in out
    assert f"verify: cli {SWITCH} (show): show interfaces {PORT} (expect /administratively down/)" in out
    assert f"ask director to approve: isolate {HOST}: shut {SWITCH} {PORT} (expires after 86400s)" in out
    assert "not simulated: waits for a person's decision" in out
    assert "not sent in a dry run" in out

    planned = json.loads(env.schoolops("runbooks", "run", "isolate-host", "--asset", HOST, "--dry-run", "--json").stdout)
    assert [(s["step"], s["mutating"]) for s in planned] == [
        ("tell", False), ("ask-director", False), ("shut-port", True), ("report", False)]
    assert next(s for s in planned if s["step"] == "shut-port")["command"] == SHUT

    assert json.loads(env.schoolops("runbooks", "runs", "--json").stdout) == []  # nothing queued
    assert env.untouched()  # no SSH connection at all
    assert env.mailbox.snapshot() == []  # and nobody was notified


NOTE_IT = """\
name: note-it
description: Tell the on-call person something about the host
manual: true
steps:
  - name: tell
    action: notify
    params: {to: [primary], message: "looked at {{ asset.name }}"}
"""


def test_a_run_waiting_for_approval_keeps_the_asset_locked_across_a_restart(
    lab: Callable[..., Lab], tmp_path: Path
) -> None:
    folder = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", folder)
    (folder / "note-it.yaml").write_text(NOTE_IT)
    env = lab(folder)
    first = env.start_run()
    env.wait_for_state(first, ("waiting_approval",), timeout=30)

    env.collector.stop()
    env.collector.start()
    second = env.start_run("note-it")

    waiting = wait_until(lambda: (r := env.record(second))["state"] == "queued" and "waiting for the lock" in (r["result"] or "")
                         and r, timeout=15, interval=0.2, what="the second run waiting for the lock")
    assert waiting["result"] == f"waiting for the lock on {HOST}: run {first} holds it"
    assert env.record(first)["state"] == "waiting_approval"  # not lost, not marked interrupted

    assert env.decide("approve", first, "liu.director").returncode == 0
    done = env.wait_for_state(first, ("succeeded", "failed", "escalated", "aborted"), timeout=60)
    assert done["state"] == "succeeded"
    after = env.wait_for_state(second, ("succeeded", "failed"), timeout=30)
    assert after["state"] == "succeeded" and after["started_at"] >= done["finished_at"]
