"""The runbooks shipped in runbooks/ work as shipped, end to end, against real peers.

Every test points a real collector at the shipped runbooks folder, unchanged:

- ``free-disk-space`` (automatic): a real agent sees a small tmpfs nearly full, the collector
  cleans the two folders the inventory names over a real sshd, and the incident resolves with
  the run's note; a server missing one of the labels is refused, and nothing is touched.
- ``diagnostics`` (manual): six read-only commands over SSH, their real outputs in the record; a
  program the server lacks fails its step and the run goes on.
- ``shut-switch-port`` / ``no-shut-switch-port`` (manual) on the fake Cisco switch: the port is
  shut with a description and brought back; a missing variable or a port that does not exist
  changes nothing.
- ``core-switch-outage`` (automatic emergency plan): a core switch polled by a real snmpd stops
  answering; the plan pages people, collects the switch's show output over its CLI, fails (and
  records) the redundant-link check, reports to the director and sends the all-clear when the
  switch answers again.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_cli_device import FakeCiscoDevice, FakeDeviceServer, start_fake_device
from tests.notify_peers import HttpReceiver, Mailbox, Received, smtp_server
from tests.ssh_peers import SSHD, Sshd
from tests.support import (
    Agent,
    Collector,
    Process,
    cli,
    free_udp_port,
    metric_value,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "runbooks"
FINAL = ("succeeded", "failed", "aborted", "escalated", "timed_out", "denied", "expired", "interrupted", "refused")
DAY = 86400.0

# the shipped rules, made quick for a test: the capacity rule fires on the first report
OVERRIDES = """
overrides:
  - rule: filesystem_usage
    set: {for: 0s}
"""

SWITCH_PASSWORD, SWITCH_ENABLE = "sw-login-pass", "sw-enable-pass"
COMMUNITY = "core-ro-e2e"


# --- peers ----------------------------------------------------------------------------------------


@pytest.fixture
def sshds(tmp_path: Path) -> Iterator[Callable[..., Sshd]]:
    """Start real sshds (each with its own keys and port); all stopped at teardown by their PIDs."""
    if not Path(SSHD).exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    started: list[Sshd] = []

    def start(name: str = "sshd", *, extra_config: str = "") -> Sshd:
        server = Sshd(tmp_path / name, extra_config=extra_config)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()




@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def switches() -> Iterator[Callable[[str], FakeDeviceServer]]:
    """Start fake Cisco switches (login netops) on free loopback ports; all stopped at teardown."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started: list[FakeDeviceServer] = []

    def start(hostname: str) -> FakeDeviceServer:
        device = FakeCiscoDevice(hostname=hostname, username="netops", password=SWITCH_PASSWORD,
                                 enable_secret=SWITCH_ENABLE)
        server, _, _ = asyncio.run_coroutine_threadsafe(start_fake_device(device=device), loop).result(30)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Snmpd:
    """A Net-SNMP snmpd on 127.0.0.1 and a free UDP port; stopped (by its PID) and started again on
    the same port, as a switch goes down and comes back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        # the configuration apart from the persistent directory: snmpd writes its own snmpd.conf there
        (directory / "etc").mkdir()
        (directory / "state").mkdir()
        self.conf = directory / "etc" / "snmpd.conf"
        self.conf.write_text(f"agentAddress udp:127.0.0.1:{self.port}\nengineID schoolops-core-e2e\n"
                             f"rocommunity {COMMUNITY} 127.0.0.1\ndontLogTCPWrappersConnects yes\n")
        self.env = {**os.environ, "SNMP_PERSISTENT_DIR": str(directory / "state"), "MIBS": ""}
        self.process: Process | None = None

    def start(self) -> Snmpd:
        self.process = Process(["/usr/sbin/snmpd", "-f", "-C", "-c", str(self.conf), "-Lf", str(self.directory / "snmpd.log"),
                                "-p", str(self.directory / "snmpd.pid"), "-m", "", "-I", "-smux"],
                               self.directory / "snmpd.out", env=self.env)
        self.process.start()
        wait_until(self.answers, timeout=20, interval=0.2, what="snmpd answering")
        return self

    def answers(self) -> bool:
        assert self.process is not None
        if not self.process.running():
            raise AssertionError(f"snmpd exited:\n{self.process.log()}")
        got = subprocess.run(["snmpget", "-v", "2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", "-On",
                              f"127.0.0.1:{self.port}", "1.3.6.1.2.1.1.3.0"],
                             capture_output=True, text=True, timeout=10, env=self.env, check=False)
        return got.returncode == 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)


@pytest.fixture
def snmpd(tmp_path: Path) -> Iterator[Snmpd]:
    if not Path("/usr/sbin/snmpd").exists() or shutil.which("snmpget") is None:
        pytest.skip("snmpd or snmpget missing: run scripts/test.sh")
    agent = Snmpd(tmp_path / "snmpd").start()
    try:
        yield agent
    finally:
        agent.stop()


# --- the collector ----------------------------------------------------------------------------------


def oncall_file(path: Path, smtp_port: int, it_office_url: str | None = None) -> Path:
    def person(pid: str, name: str, roles: list[str], address: str) -> dict[str, Any]:
        return {"id": pid, "name": name, "language": "en", "roles": roles,
                "contacts": [{"channel": "email", "address": address}]}

    channels: list[dict[str, Any]] = [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port,
                                       "security": "none", "sender": "schoolops@school.test"}]
    if it_office_url:
        channels.append({"kind": "webhook", "id": "it-office", "url": it_office_url})
    data = {
        "timezone": "Asia/Shanghai",
        "people": [
            person("li.na", "Li Na", ["on-call"], "li.na@school.test"),
            person("chen.jie", "Chen Jie", ["on-call"], "chen.jie@school.test"),
            person("liu.director", "Director Liu", ["director"], "liu@school.test"),
        ],
        "channels": channels,
        "schedule": {"handover": {"day": "mon", "time": "09:00"}, "start": "2026-01-05",
                     "rotation": [{"primary": "li.na", "backup": "chen.jie"}]},
        # the incident's own chain pages the primary only, once: the plan's messages stand apart
        "escalation": {"policies": {level: {"steps": [{"after": "0s", "notify": ["primary"]}],
                                            "unacked_reminder": None, "owner_reminder": None, "progress_interval": None,
                                            "closing_summary": False} for level in ("P1", "P2", "P3", "P4")}},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def server(name: str, sshd: Sshd, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An inventory entry for a server the runbooks reach over SSH (the test's sshd)."""
    entry: dict[str, Any] = {
        "name": name, "kind": "server", "site": "main-building", "role": "web", "address": "127.0.0.1",
        "ssh": {"username": sshd.username, "key_secret": f"ssh.{name}", "known_hosts": str(sshd.known_hosts),
                "port": sshd.port}}
    if labels:
        entry["labels"] = labels
    return entry


def switch_cli(switch: FakeDeviceServer, known_hosts: Path) -> dict[str, Any]:
    known_hosts.write_text(switch.host_key_line + "\n")
    return {"device_type": "cisco_ios", "username": "netops", "password_secret": "switch.password",
            "enable_secret": "switch.enable", "known_hosts": str(known_hosts), "port": switch.port,
            "backup": False, "timeout": "20s"}


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """A collector with the shipped rules (plus test overrides) and the shipped runbooks folder,
    the given inventory and secrets (set before it starts); stopped at teardown."""
    started: list[Collector] = []
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "alerts", rules)
    (rules / "zz-test-overrides.yaml").write_text(OVERRIDES)

    def start(assets: list[dict[str, Any]], secrets: dict[str, str], *, oncall: Path | None = None) -> Collector:
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"assets": assets}, sort_keys=False))
        extra: dict[str, Any] = {
            "rules_dir": str(rules), "inventory_file": str(inventory),
            "runbooks": {"dir": str(SHIPPED), "tick_interval": "0.3s"},
            # a long quiet period: when an incident resolves quickly, the runbook resolved it
            "incidents": {"tick_interval": "0.5s", "quiet_period": "300s", "teaching_roles": []},
        }
        if oncall is not None:
            extra["oncall_file"] = str(oncall)
        collector = Collector(tmp_path / "collector", extra=extra)
        started.append(collector)
        for name, value in secrets.items():
            set_secret(collector, name, value)
        return collector.start()

    yield start
    for collector in started:
        collector.stop()


# --- reading what happened ----------------------------------------------------------------------------


def schoolops(collector: Collector, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--config", str(collector.config_path), check=check)


def runs(collector: Collector, *extra: str) -> list[dict[str, Any]]:
    return json.loads(schoolops(collector, "runbooks", "runs", "--json", *extra).stdout)


def record(collector: Collector, run_id: int) -> dict[str, Any]:
    return json.loads(schoolops(collector, "runbooks", "record", str(run_id), "--json").stdout)


def incident(collector: Collector, number: int) -> dict[str, Any]:
    return json.loads(schoolops(collector, "incidents", "show", str(number), "--json").stdout)


def start_run(collector: Collector, runbook: str, asset: str, *variables: str) -> int:
    """``schoolops runbooks run RUNBOOK --asset ASSET [--var …] --as li.na``, queued; returns the run id."""
    args = [arg for pair in variables for arg in ("--var", pair)]
    out = schoolops(collector, "runbooks", "run", runbook, "--asset", asset, *args, "--as", "li.na", "--no-wait").stdout
    assert f": {runbook} on {asset} queued" in out, out
    return int(out.split()[1].rstrip(":"))


def finished(collector: Collector, run_id: int, *, timeout: float) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run = record(collector, run_id)
        return run if run["state"] in FINAL else None

    done = wait_until(ended, timeout=timeout, interval=0.3, what=f"run {run_id} to end")
    assert done is not None
    return done


def only_run(collector: Collector, runbook: str, states: tuple[str, ...], *, timeout: float) -> dict[str, Any]:
    """The one run of ``runbook`` once it is in one of ``states``, as its full record."""
    found = wait_until(lambda: [r for r in runs(collector) if r["runbook"] == runbook and r["state"] in states],
                       timeout=timeout, interval=0.3, what=f"a {runbook} run {' or '.join(states)}")
    assert len(found) == 1, found
    return record(collector, found[0]["id"])


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run["steps"]}


def body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def mails_saying(mailbox: Mailbox, address: str, text: str) -> list[EmailMessage]:
    """Emails to ``address`` whose text holds ``text`` (on its own, or merged into a digest)."""
    return [m for m in mailbox.to(address) if text in " ".join(body(m).split())]


# --- free-disk-space ------------------------------------------------------------------------------------


@dataclass
class FullDisk:
    """A tmpfs filled like a server's data disk: stale uploads, a rotated log, files that must stay."""

    root: Path
    logs: Path = field(init=False)
    tmp: Path = field(init=False)
    other: Path = field(init=False)
    stale: list[Path] = field(default_factory=list)
    rotated_text: bytes = b""

    def __post_init__(self) -> None:
        self.logs, self.tmp, self.other = self.root / "log" / "webapp", self.root / "uploads", self.root / "reports"
        for folder in (self.logs, self.tmp / "thumbnails", self.other):
            folder.mkdir(parents=True)
        line = b'10.20.5.14 - - [23/Nov/2026:10:01:12 +0800] "GET /timetable/grade-7 HTTP/1.1" 200 5120\n'
        self.rotated_text = line * (512 * 1024 // len(line))
        self.write(self.logs / "app.log.1", self.rotated_text, age=2 * DAY)  # rotated two days ago: compress
        self.write(self.logs / "worker.log.1", line * 300, age=3600)  # rotated an hour ago: too young
        self.write(self.logs / "app.log", line * 150, age=0)  # the live log
        self.write(self.tmp / "fresh-upload.bin", os.urandom(64 * 1024), age=0)  # in use: must stay
        self.write(self.other / "report-2025.pdf", os.urandom(128 * 1024), age=10 * DAY)  # stale, but elsewhere
        self.write(self.other / "export.log.1", line * 300, age=2 * DAY)  # rotated, but elsewhere
        self.stale.append(self.write(self.tmp / "thumbnails" / "old-thumb.bin", os.urandom(128 * 1024), age=10 * DAY))
        while self.used_percent() < 91:
            path = self.tmp / f"upload-{len(self.stale):02d}.bin"
            self.stale.append(self.write(path, os.urandom(128 * 1024), age=10 * DAY))
        assert 91 <= self.used_percent() < 95, self.used_percent()  # base P3 (from 90 %), below P2 (95 %)

    @staticmethod
    def write(path: Path, data: bytes, *, age: float) -> Path:
        path.write_bytes(data)
        then = time.time() - age
        os.utime(path, (then, then))  # not read again afterwards: the access time stays this old
        return path

    def used_percent(self) -> float:
        usage = shutil.disk_usage(self.root)
        return 100.0 * usage.used / usage.total

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """Every file under the disk: relative path → (size, mtime in whole seconds)."""
        return {str(p.relative_to(self.root)): (p.stat().st_size, int(p.stat().st_mtime))
                for p in sorted(self.root.rglob("*")) if p.is_file()}


def df_percent(output: str, mountpoint: Path) -> int:
    """The Use% that ``df -h MOUNTPOINT`` printed for the mount point."""
    found = re.search(rf"(\d+)%\s+{re.escape(str(mountpoint))}\s*$", output, re.MULTILINE)
    assert found, output
    return int(found.group(1))


def watching(collector: Collector, make_agent: Callable[..., Agent], asset: str, disk: Path) -> Agent:
    """The server's agent, reporting only the test's disk (whatever else this machine has mounted)."""
    only_this = f"^(?!{re.escape(str(disk))}$)"
    return make_agent(collector, asset, extra={"probes": {"exclude_mountpoints": [only_this]}}).start()


def test_free_disk_space_cleans_only_the_named_folders_and_resolves_the_incident(
    collectors: Callable[..., Collector], make_agent: Callable[..., Agent], sshds: Callable[..., Sshd], tmpfs: Path,
) -> None:
    sshd = sshds()
    disk = FullDisk(tmpfs)
    collector = collectors([server("web-01", sshd, {"clean_logs": str(disk.logs), "clean_tmp": str(disk.tmp)})],
                           {"ssh.web-01": sshd.client_key})
    before = disk.snapshot()
    started = time.monotonic()

    watching(collector, make_agent, "web-01", tmpfs)

    run = only_run(collector, "free-disk-space", FINAL, timeout=60)
    assert run["state"] == "succeeded", json.dumps(run, indent=2)
    assert run["automatic"] and run["started_by"] == "schoolops" and run["asset"] == "web-01"
    assert run["result"] == "all 5 steps done"
    elapsed = time.monotonic() - started
    steps = steps_of(run)
    assert [s["name"] for s in run["steps"]] == [
        "usage-before", "compress-rotated-logs", "clean-temporary-folder", "usage-after", "wait-below-threshold"]
    assert all(s["status"] == "ok" for s in run["steps"]), run["steps"]
    ssh = f"ssh {sshd.username}@127.0.0.1:"
    assert steps["usage-before"]["command"] == f"{ssh} df -h {tmpfs}"
    assert 91 <= df_percent(steps["usage-before"]["output"], tmpfs) <= 95  # df rounds up
    assert steps["compress-rotated-logs"]["command"] == (
        f"{ssh} find {disk.logs} -xdev -type f -name '*.[0-9]' -mtime +0 -exec gzip -9 '{{}}' +")
    assert steps["clean-temporary-folder"]["command"] == f"{ssh} find {disk.tmp} -xdev -type f -atime +7 -print -delete"
    deleted = set(steps["clean-temporary-folder"]["output"].split())
    assert deleted == {str(p) for p in disk.stale}, deleted  # -print: exactly the stale files
    assert df_percent(steps["usage-after"]["output"], tmpfs) < 75
    assert steps["wait-below-threshold"]["detail"].startswith("the fault cleared after")

    # on the disk: stale uploads gone, the old rotated log compressed, everything else as it was
    after = disk.snapshot()
    gone = {str(p.relative_to(tmpfs)) for p in disk.stale}
    assert not gone & set(after), gone & set(after)
    assert "log/webapp/app.log.1" not in after and "log/webapp/app.log.1.gz" in after
    assert gzip.decompress((disk.logs / "app.log.1.gz").read_bytes()) == disk.rotated_text
    untouched = {name: value for name, value in before.items() if name not in gone and name != "log/webapp/app.log.1"}
    assert {name: after[name] for name in untouched} == untouched
    assert set(after) == set(untouched) | {"log/webapp/app.log.1.gz"}
    assert disk.used_percent() < 75  # below the rule's recovery level

    # the fault cleared and the run resolved the incident, saying so
    number = run["incident_id"]
    resolved = wait_until(lambda: (d := incident(collector, number))["state"] == "resolved" and d,
                          timeout=20, what="the incident resolved")
    assert resolved["resolved_by"] == "schoolops"
    [fault] = [f for f in resolved["faults"] if f["rule"] == "filesystem_usage"]
    assert fault["key"] == str(tmpfs) and not fault["active"] and fault["severity"] == "P4"  # base P3, normal tier
    resolve = next(e for e in resolved["timeline"] if e["kind"] == "resolve")
    assert f"fixed by runbook free-disk-space (run {run['id']}): the fault cleared" in json.dumps(resolve)
    texts = [e["text"] for e in resolved["timeline"]]
    assert any(f"free-disk-space run {run['id']} succeeded: all 5 steps done" in t for t in texts), texts
    assert elapsed < 45, f"the cleanup took {elapsed:.0f}s"
    time.sleep(1.5)  # several runbook ticks: nothing starts again once the fault has cleared
    assert len([r for r in runs(collector) if r["runbook"] == "free-disk-space"]) == 1


@pytest.mark.parametrize(("named", "missing"), [
    ((), "clean_logs"),  # no label at all: the first one the runbook needs is named
    (("clean_logs",), "clean_tmp"),  # the logs folder only: the runbook must not run half of itself
], ids=["no-labels", "logs-label-only"])
def test_free_disk_space_refuses_a_server_without_both_labels_and_touches_nothing(
    collectors: Callable[..., Collector], make_agent: Callable[..., Agent], sshds: Callable[..., Sshd], tmpfs: Path,
    named: tuple[str, ...], missing: str,
) -> None:
    sshd = sshds()
    disk = FullDisk(tmpfs)
    folders = {"clean_logs": str(disk.logs), "clean_tmp": str(disk.tmp)}
    collector = collectors([server("web-02", sshd, {name: folders[name] for name in named})],
                           {"ssh.web-02": sshd.client_key})
    before = disk.snapshot()

    watching(collector, make_agent, "web-02", tmpfs)

    run = only_run(collector, "free-disk-space", FINAL, timeout=60)
    assert run["state"] == "refused", json.dumps(run, indent=2)
    assert run["automatic"] and run["asset"] == "web-02"
    assert run["result"].startswith("not applicable to web-02: ")
    assert f"{{{{ asset.labels.{missing} }}}} has no value" in run["result"]
    assert f"the asset 'web-02' has no 'labels.{missing}' in the inventory" in run["result"]
    assert run["steps"] == []  # refused before its first step

    number = run["incident_id"]
    detail = incident(collector, number)
    texts = [e["text"] for e in detail["timeline"]]
    assert any(f"free-disk-space run {run['id']} refused: not applicable to web-02" in t for t in texts), texts

    time.sleep(2)  # several runbook ticks: a refused runbook is not tried again by itself
    assert len([r for r in runs(collector) if r["runbook"] == "free-disk-space"]) == 1
    assert disk.snapshot() == before  # nothing deleted, nothing compressed
    assert disk.used_percent() >= 91
    assert sshd.accepted_logins() == 0 and sshd.sessions() == 0  # not even a df
    detail = incident(collector, number)
    assert detail["state"] != "resolved"
    assert any(f["rule"] == "filesystem_usage" and f["active"] for f in detail["faults"])


# --- diagnostics --------------------------------------------------------------------------------------------

DIAGNOSTICS = ["uptime", "memory", "disks", "listening", "top-processes", "recent-errors"]
PROGRAMS = {"uptime": "uptime", "memory": "free", "disks": "df", "listening": "ss", "top-processes": "ps",
            "recent-errors": "journalctl"}


def test_diagnostics_collects_real_outputs_over_ssh(collectors: Callable[..., Collector], sshds: Callable[..., Sshd]) -> None:
    sshd = sshds()
    collector = collectors([server("web-01", sshd)], {"ssh.web-01": sshd.client_key})

    run = finished(collector, start_run(collector, "diagnostics", "web-01"), timeout=60)

    assert run["state"] == "succeeded", json.dumps(run, indent=2)
    assert run["result"] == "all 6 steps done" and run["started_by"] == "li.na" and not run["automatic"]
    assert run["incident_id"] is None
    assert [s["name"] for s in run["steps"]] == DIAGNOSTICS
    steps = steps_of(run)
    # sshd's default PATH for a session: a program missing there fails its step, and only its step
    missing = {name for name, program in PROGRAMS.items()
               if not any(Path(d, program).exists() for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                                               "/usr/bin", "/sbin", "/bin"))}
    for name in DIAGNOSTICS:
        step = steps[name]
        assert step["action"] == "ssh" and step["command"].startswith(f"ssh {sshd.username}@127.0.0.1: ")
        assert step["status"] == ("failed" if name in missing else "ok"), step
    if "uptime" not in missing:
        assert "load average" in steps["uptime"]["output"]
    if "memory" not in missing:
        assert "Mem:" in steps["memory"]["output"]
    if "disks" not in missing:
        lines = steps["disks"]["output"].splitlines()
        assert "Type" in lines[0] and any(line.split()[-1:] == ["/"] for line in lines), lines
        assert not any(" tmpfs " in line for line in lines[1:]), lines  # -x tmpfs
    if "listening" not in missing:
        assert f":{sshd.port} " in steps["listening"]["output"]  # the sshd it came through listens
    if "top-processes" not in missing:
        assert steps["top-processes"]["output"].split()[:3] == ["PID", "USER", "%CPU"]
        assert "sshd" in steps["top-processes"]["output"]
    assert sshd.accepted_logins() == 6  # one real session per step


def test_diagnostics_goes_on_past_a_program_the_server_lacks(
    collectors: Callable[..., Collector], sshds: Callable[..., Sshd], tmp_path: Path,
) -> None:
    # a server without systemd's journal: the session's PATH has the other five programs only
    bin_dir = tmp_path / "no-journal-bin"
    bin_dir.mkdir()
    for program in ("uptime", "free", "df", "ss", "ps"):
        found = shutil.which(program)
        if found is None:
            pytest.skip(f"{program} missing on this machine")
        (bin_dir / program).symlink_to(found)
    sshd = sshds("sshd-no-journal", extra_config=f"SetEnv PATH={bin_dir}\n")
    collector = collectors([server("web-01", sshd)], {"ssh.web-01": sshd.client_key})

    run = finished(collector, start_run(collector, "diagnostics", "web-01"), timeout=60)

    assert run["state"] == "succeeded", json.dumps(run, indent=2)
    assert [s["name"] for s in run["steps"]] == DIAGNOSTICS
    steps = steps_of(run)
    assert [steps[n]["status"] for n in DIAGNOSTICS] == ["ok"] * 5 + ["failed"]
    assert run["result"] == "all 6 steps done; 1 failed and was passed over: recent-errors"
    journal = steps["recent-errors"]
    assert journal["exit_status"] == 127 and journal["detail"] == "exit status 127"
    assert "journalctl" in journal["output"] and "not found" in journal["output"]
    assert journal["command"].endswith("journalctl --no-pager -p err --since -1h -n 200")
    assert "load average" in steps["uptime"]["output"]


# --- shut-switch-port / no-shut-switch-port -----------------------------------------------------------------

PORT = "GigabitEthernet1/0/2"


def port_section(device: FakeCiscoDevice, port: str = PORT) -> list[str]:
    return next(block for block in device.blocks() if block[0] == f"interface {port}")


def test_shut_and_no_shut_switch_port_on_the_switch(
    collectors: Callable[..., Collector], switches: Callable[[str], FakeDeviceServer], tmp_path: Path,
) -> None:
    switch = switches("access-sw-3")
    device = switch.device
    assert port_section(device) == [f"interface {PORT}", " description classroom 2.14", " switchport access vlan 20",
                                    " switchport mode access", " spanning-tree portfast edge"]
    others = {b[0]: b for b in device.blocks() if b[0].startswith("interface ") and b[0] != f"interface {PORT}"}
    collector = collectors(
        [{"name": "access-sw-3", "kind": "network", "site": "main-building", "address": "127.0.0.1",
          "cli": switch_cli(switch, tmp_path / "switch_known_hosts")}],
        {"switch.password": SWITCH_PASSWORD, "switch.enable": SWITCH_ENABLE})

    # without the port: refused at once, naming the variable; nothing queued, no connection
    refused = schoolops(collector, "runbooks", "run", "shut-switch-port", "--asset", "access-sw-3", "--as", "li.na",
                        check=False)
    assert refused.returncode != 0
    assert "variable 'interface' has no default: give it with --var interface=VALUE" in refused.stderr
    assert runs(collector) == [] and device.connections == 0

    # shut: the port goes administratively down and says why
    shut = finished(collector, start_run(collector, "shut-switch-port", "access-sw-3", f"interface={PORT}"), timeout=90)
    assert shut["state"] == "succeeded", json.dumps(shut, indent=2)
    assert [(s["name"], s["status"]) for s in shut["steps"]] == [("before", "ok"), ("shut", "ok"), ("shut/verify", "ok")]
    steps = steps_of(shut)
    assert steps["before"]["command"] == f"cli 127.0.0.1 (show): show interfaces {PORT} (expect /{PORT} is/)"
    assert f"{PORT} is up, line protocol is up (connected)" in steps["before"]["output"]
    assert steps["shut"]["command"] == (
        f"cli 127.0.0.1 (configure): interface {PORT}; description shut by schoolops; shutdown")
    assert f"{PORT} is administratively down" in steps["shut/verify"]["output"]
    section = port_section(device)
    assert " shutdown" in section and " description shut by schoolops" in section, section
    assert " description classroom 2.14" not in section
    assert " switchport access vlan 20" in section  # the rest of the port's configuration stays
    assert device.last_change_by == "netops"
    at = device.commands.index("configure terminal")
    assert device.commands[at + 1:at + 4] == [f"interface {PORT}", "description shut by schoolops", "shutdown"]
    assert "administratively down" in device.show_interfaces(PORT)

    # no-shut: back in service, the shut description gone
    commands_before = len(device.commands)
    back = finished(collector, start_run(collector, "no-shut-switch-port", "access-sw-3", f"interface={PORT}"), timeout=90)
    assert back["state"] == "succeeded", json.dumps(back, indent=2)
    assert [(s["name"], s["status"]) for s in back["steps"]] == [("no-shut", "ok"), ("no-shut/verify", "ok")]
    assert f"{PORT} is up, line protocol is up (connected)" in steps_of(back)["no-shut/verify"]["output"]
    section = port_section(device)
    assert " shutdown" not in section and not [line for line in section if line.startswith(" description")], section
    assert section == [f"interface {PORT}", " switchport access vlan 20", " switchport mode access",
                       " spanning-tree portfast edge"]
    new = device.commands[commands_before:]
    at = new.index("configure terminal")
    assert new[at + 1:at + 4] == [f"interface {PORT}", "no description", "no shutdown"]
    after = {b[0]: b for b in device.blocks() if b[0].startswith("interface ") and b[0] != f"interface {PORT}"}
    assert after == others  # only that port was ever touched

    # a port the switch does not have: the first step's check fails and nothing is configured
    config = device.running_config
    commands_before = len(device.commands)
    wrong = finished(collector, start_run(collector, "shut-switch-port", "access-sw-3",
                                          "interface=GigabitEthernet1/0/48"), timeout=90)
    assert wrong["state"] == "aborted", json.dumps(wrong, indent=2)
    [before] = wrong["steps"]
    assert before["name"] == "before" and before["status"] == "failed"
    assert before["detail"] == "the output does not match /GigabitEthernet1/0/48 is/"
    assert wrong["result"] == "step before failed: the output does not match /GigabitEthernet1/0/48 is/"
    assert device.running_config == config
    assert "configure terminal" not in device.commands[commands_before:]
    assert "show interfaces GigabitEthernet1/0/48" in device.commands[commands_before:]


# --- core-switch-outage ----------------------------------------------------------------------------------------


def said(receiver: HttpReceiver, text: str) -> list[Received]:
    return [r for r in receiver.snapshot() if text in " ".join(str(r.json().get("text", "")).split())]


def test_core_switch_outage_plan_runs_while_the_switch_is_down_and_ends_with_the_all_clear(
    collectors: Callable[..., Collector], switches: Callable[[str], FakeDeviceServer], snmpd: Snmpd,
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    mailbox, smtp_port = smtp
    switch = switches("core-sw-1")
    device = switch.device
    with HttpReceiver(lambda got: (200, {"ok": True}, {})) as it_office:
        collector = collectors(
            [{"name": "core-sw-1", "kind": "network", "site": "main-building", "role": "core-switch", "tier": "core",
              "address": "127.0.0.1", "labels": {"backup_uplink_ifindex": "1"},  # lo: snmpd has it
              "snmp": {"version": "2c", "port": snmpd.port, "community_secret": "snmp.core", "interval": "5s",
                       "timeout": "0.5s", "retries": 0},
              "cli": switch_cli(switch, tmp_path / "switch_known_hosts")}],
            {"snmp.core": COMMUNITY, "switch.password": SWITCH_PASSWORD, "switch.enable": SWITCH_ENABLE},
            oncall=oncall_file(tmp_path / "oncall.yaml", smtp_port, it_office.url("/it-office")))
        wait_until(lambda: metric_value(collector.metrics(), "schoolops_device_up", asset="core-sw-1") == 1,
                   timeout=30, what="the core switch polled")
        assert device.connections == 0  # nothing reaches the switch's CLI before the plan

        snmpd.stop()  # the core switch stops answering
        down_at = time.monotonic()

        # the plan starts by itself and runs up to waiting for the switch to come back
        def waiting() -> dict[str, Any] | None:
            found = [r for r in runs(collector) if r["runbook"] == "core-switch-outage"]
            if not found:
                return None
            run = record(collector, found[0]["id"])
            assert run["state"] in ("queued", "running"), json.dumps(run, indent=2)
            return run if len(run["steps"]) == 4 else None

        run = wait_until(waiting, timeout=60, interval=0.3, what="the plan to wait for the recovery")
        assert run is not None
        assert run["automatic"] and run["started_by"] == "schoolops" and run["state"] == "running"
        number = run["incident_id"]
        detail = incident(collector, number)
        [fault] = [f for f in detail["faults"] if f["rule"] == "device_unreachable"]
        assert fault["base_severity"] == "P2" and fault["severity"] == "P1" and fault["active"]  # raised: core
        assert detail["type"] == "network"
        steps = steps_of(run)
        assert [s["name"] for s in run["steps"]] == ["page", "diagnostics", "check-redundant-link", "progress-to-director"]

        page = (f"Emergency plan started: core switch core-sw-1 at main-building is down "
                f"(core-sw-1 does not answer (SNMP)). Incident {number}.")
        assert steps["page"]["status"] == "ok"
        assert steps["page"]["detail"] == "sent to Li Na, Chen Jie, Director Liu, channel it-office"
        for address in ("li.na@school.test", "chen.jie@school.test", "liu@school.test"):
            wait_until(partial(mails_saying, mailbox, address, page), timeout=20, what=f"the page to {address}")
        page_zh = (f"已启动应急预案：main-building 的核心交换机 core-sw-1 中断（core-sw-1 does not answer (SNMP)）。"
                   f"事件 {number}。")  # a group channel in Asia/Shanghai reads simplified Chinese
        wait_until(lambda: said(it_office, page_zh), timeout=20, what="the page in the IT office's channel")

        # the switch's CLI still answers: its show output is in the record, nothing was configured
        diagnostics = steps["diagnostics"]
        assert diagnostics["status"] == "ok", diagnostics
        assert diagnostics["command"] == ("cli 127.0.0.1 (show): show version; show interfaces status; "
                                          "show spanning-tree summary; show logging")
        for seen in ("Cisco IOS Software", "Gi1/0/1   uplink to core", "Switch is in rapid-pvst mode", "Log Buffer"):
            assert seen in diagnostics["output"], seen
        sent = [c for c in device.commands if c.startswith("show ")]
        assert sent == ["show version", "show interfaces status", "show spanning-tree summary", "show logging"]
        assert "configure terminal" not in device.commands
        assert SWITCH_PASSWORD not in json.dumps(run) and SWITCH_ENABLE not in json.dumps(run)

        # SNMP is down, so the redundant link cannot be read: recorded, and the plan went on
        check = steps["check-redundant-link"]
        assert check["status"] == "failed" and "no answer within 0.5s x 1 tries" in check["detail"], check
        assert check["command"] == "snmp get 127.0.0.1: 1.3.6.1.2.1.2.2.1.8.1"
        assert steps["progress-to-director"]["status"] == "ok"
        assert steps["progress-to-director"]["detail"] == "sent to Director Liu"
        progress = (f"Core switch core-sw-1 is down; the IT office is paged and diagnostics are attached to "
                    f"incident {number}. The next report follows when it recovers.")
        wait_until(lambda: mails_saying(mailbox, "liu@school.test", progress), timeout=20,
                   what="the progress report to the director")
        assert not mails_saying(mailbox, "li.na@school.test", progress)
        assert not mails_saying(mailbox, "chen.jie@school.test", progress)
        time.sleep(2)  # the plan keeps waiting while the switch is down
        assert record(collector, run["id"])["state"] == "running"

        snmpd.start()  # the switch answers again

        done = finished(collector, run["id"], timeout=60)
        elapsed = time.monotonic() - down_at
        assert done["state"] == "succeeded", json.dumps(done, indent=2)
        assert done["result"] == "all 6 steps done; 1 failed and was passed over: check-redundant-link"
        steps = steps_of(done)
        assert [s["name"] for s in done["steps"]] == [
            "page", "diagnostics", "check-redundant-link", "progress-to-director", "wait-recovery", "all-clear"]
        assert steps["wait-recovery"]["status"] == "ok"
        assert steps["wait-recovery"]["detail"].startswith("the fault cleared after")
        assert steps["all-clear"]["status"] == "ok"
        assert steps["all-clear"]["detail"] == "sent to Li Na, Chen Jie, Director Liu, channel it-office"
        clear = f"Core switch core-sw-1 is back; incident {number} can be reviewed."
        for address in ("li.na@school.test", "chen.jie@school.test", "liu@school.test"):
            wait_until(partial(mails_saying, mailbox, address, clear), timeout=20,
                       what=f"the all-clear to {address}")
        clear_zh = f"核心交换机 core-sw-1 已恢复；事件 {number} 可进入复核。"
        wait_until(lambda: said(it_office, clear_zh), timeout=20, what="the all-clear in the IT office's channel")
        # the plan saw the fault clear, so it resolved the incident (the quiet period is far off)
        detail = incident(collector, number)
        assert detail["state"] == "resolved" and detail["resolved_by"] == "schoolops", detail["state"]
        [fault] = [f for f in detail["faults"] if f["rule"] == "device_unreachable"]
        assert not fault["active"]
        texts = [e["text"] for e in detail["timeline"]]
        assert any(f"core-switch-outage run {run['id']} succeeded: all 6 steps done; 1 failed and was passed over: "
               "check-redundant-link" in t for t in texts), texts
        resolve = next(e for e in detail["timeline"] if e["kind"] == "resolve")
        assert f"fixed by runbook core-switch-outage (run {run['id']}): the fault cleared" in json.dumps(resolve)
        assert "configure terminal" not in device.commands  # the whole plan changed nothing on the switch
        assert elapsed < 60, f"the outage took {elapsed:.0f}s to play out"
