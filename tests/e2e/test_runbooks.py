"""Runbooks end to end: a real agent watches a real service, a real collector remediates it over a
real sshd, and the incident, the run record and the messages show what happened.

The server's "systemd" is a small stand-in put first on the sshd session's PATH (sshd_config
SetEnv): ``systemctl restart NAME`` runs ``services/NAME.start``, ``systemctl is-active NAME``
checks the service's PID file. Everything else — SSH, host keys, the agent's process and port
checks, rules, incidents, the runbook engine — is the real thing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.notify_peers import Mailbox, smtp_server
from tests.ssh_peers import SSHD, Sshd
from tests.support import (
    Agent,
    Collector,
    cli,
    free_port,
    metric_value,
    set_secret,
    wait_until,
)

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server

OVERRIDES = """
overrides:
  - rule: process_down
    set: {for: 0s}
  - rule: port_closed
    set: {for: 0s}
"""

SYSTEMCTL = """#!/bin/sh
# stand-in for systemd in tests: services are scripts in {services}
case "$1" in
  restart) exec "{services}/$2.start" ;;
  is-active)
    [ "$2" = --quiet ] && shift
    pid=$(cat "{services}/$2.pid" 2>/dev/null)
    state=$(awk '/^State:/ {{print $2}}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$pid" ] && [ -n "$state" ] && [ "$state" != Z ] ;;  # a zombie is not running
  *) echo "unsupported: $*" >&2; exit 2 ;;
esac
"""

SERVER = """\
# the web service: binds its port, then detaches (like a forking daemon) and records its PID
import functools, http.server, os, signal, sys
port, directory, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the SSH session ending must not take it along
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
child = os.fork()
if child:
    with open(pidfile, "w") as out:
        out.write(str(child))
    os._exit(0)
os.setsid()
for fd in (0, 1, 2):
    os.dup2(os.open(os.devnull, os.O_RDWR), fd)
server.serve_forever()
"""

START = """#!/bin/sh
# start the web service; returns once its port is bound, as systemctl restart does
exec /usr/bin/python3 {server} {port} {directory} {services}/{name}.pid
"""

BROKEN_START = """#!/bin/sh
# a service that cannot start: the unit "restarts" but nothing runs
exit 0
"""


class Service:
    """A web service the agent watches: a python http.server on its own port, started like a unit."""

    def __init__(self, directory: Path, name: str = "webapp") -> None:
        self.name, self.port = name, free_port()
        self.services = directory / "services"
        self.bin = directory / "bin"
        for folder in (self.services, self.bin):
            folder.mkdir(parents=True, exist_ok=True)
        self.server = directory / "webapp-server.py"
        self.server.write_text(SERVER)
        self.start_script = self.services / f"{name}.start"
        self.start_script.write_text(START.format(server=self.server, directory=directory, port=self.port,
                                                  services=self.services, name=name))
        self.start_script.chmod(0o755)
        systemctl = self.bin / "systemctl"
        systemctl.write_text(SYSTEMCTL.format(services=self.services))
        systemctl.chmod(0o755)

    def start(self) -> None:
        subprocess.run([str(self.start_script)], check=True, timeout=10)
        wait_until(self.listening, timeout=10, what="the web service listening")

    def pid(self) -> int | None:
        path = self.services / f"{self.name}.pid"
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def listening(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def break_it(self) -> None:
        self.start_script.write_text(BROKEN_START)

    def watch(self) -> dict[str, Any]:
        """The agent's probes for it: the process (by its command line) and its port, named after the unit."""
        return {"processes": [{"name": self.name, "process_name": "python3", "cmdline_contains": f"{self.server.name} {self.port}"}],
                "ports": [{"name": self.name, "port": self.port}]}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "server")
    yield svc
    svc.kill()


@pytest.fixture
def sshd(tmp_path: Path, service: Service) -> Iterator[Sshd]:
    if not Path(SSHD).exists():
        pytest.skip("openssh-server missing: run scripts/test.sh")
    server = Sshd(tmp_path / "sshd", extra_config=f"SetEnv PATH={service.bin}:/usr/bin:/bin\n").start()
    yield server
    server.stop()


def oncall(path: Path, smtp_port: int) -> Path:
    data = {
        "timezone": "Asia/Shanghai",
        "people": [
            {"id": "wang.wei", "name": "王偉", "language": "zh-TW", "roles": ["on-call"],
             "contacts": [{"channel": "email", "address": "wang.wei@school.test"}]},
            {"id": "li.na", "name": "Li Na", "language": "en", "roles": ["on-call"],
             "contacts": [{"channel": "email", "address": "li.na@school.test"}]},
            {"id": "liu.director", "name": "Director Liu", "language": "en", "roles": ["director"],
             "contacts": [{"channel": "email", "address": "liu@school.test"}]},
        ],
        "channels": [{"kind": "email", "id": "email", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                      "sender": "schoolops@school.test"}],
        "schedule": {"handover": {"day": "mon", "time": "09:00"}, "start": "2026-01-05",
                     "rotation": [{"primary": "wang.wei", "backup": "li.na"}]},
        "escalation": {"policies": {level: {"steps": [{"after": "0s", "notify": ["primary"]}],
                                            "unacked_reminder": None, "owner_reminder": None, "progress_interval": None,
                                            "closing_summary": False} for level in ("P1", "P2", "P3", "P4")}},
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


@pytest.fixture
def setup(tmp_path: Path, start_collector: Callable[..., Collector], sshd: Sshd, smtp: tuple[Mailbox, int],
          service: Service) -> Callable[..., Collector]:
    """A collector that knows web-01 (role web, SSH through the test's sshd) and pages by email."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "alerts", rules)
    (rules / "zz-test-overrides.yaml").write_text(OVERRIDES)
    runbooks = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", runbooks)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"assets": [{
        "name": "web-01", "kind": "server", "site": "main-building", "role": "web", "address": "127.0.0.1",
        "ssh": {"username": sshd.username, "key_secret": "ssh.web-01", "known_hosts": str(sshd.known_hosts),
                "port": sshd.port}}]}))

    def start(runbook_files: dict[str, str] | None = None, **runbook_settings: Any) -> Collector:
        for name, text in (runbook_files or {}).items():
            (runbooks / name).write_text(text)
        collector = start_collector(extra={
            "rules_dir": str(rules), "runbooks": {"dir": str(runbooks), "tick_interval": "0.3s", **runbook_settings},
            "inventory_file": str(inventory), "oncall_file": str(oncall(tmp_path / "oncall.yaml", smtp[1])),
            "incidents": {"tick_interval": "0.5s", "quiet_period": "60s", "teaching_roles": []},
        })
        set_secret(collector, "ssh.web-01", sshd.client_key)
        return collector

    return start


def runs(collector: Collector, *extra: str) -> list[dict[str, Any]]:
    return json.loads(cli("runbooks", "runs", "--json", "--config", str(collector.config_path), *extra).stdout)


def record(collector: Collector, run_id: int) -> dict[str, Any]:
    return json.loads(cli("runbooks", "record", str(run_id), "--json", "--config", str(collector.config_path)).stdout)


def incident(collector: Collector, number: int) -> dict[str, Any]:
    return json.loads(cli("incidents", "show", str(number), "--json", "--config", str(collector.config_path)).stdout)


def watched(collector: Collector, make_agent: Callable[..., Agent], service: Service) -> Agent:
    agent = make_agent(collector, "web-01", extra={"probes": service.watch()}).start()
    wait_until(lambda: metric_value(collector.metrics(), "schoolops_process_running", asset="web-01") == 1,
               timeout=30, what="the agent seeing the service running")
    return agent


def test_a_killed_service_is_restarted_over_ssh_and_the_incident_resolves_with_the_run_record(
    setup: Callable[..., Collector], make_agent: Callable[..., Agent], service: Service, sshd: Sshd,
    smtp: tuple[Mailbox, int],
) -> None:
    service.start()
    collector = setup()
    watched(collector, make_agent, service)
    old_pid = service.pid()

    service.kill()

    done = wait_until(lambda: [r for r in runs(collector, "--state", "succeeded") if r["runbook"] == "restart-service"],
                      timeout=60, what="the restart-service run to succeed")
    run = record(collector, done[0]["id"])
    assert run["automatic"] and run["started_by"] == "schoolops" and run["asset"] == "web-01"
    steps = {s["name"]: s for s in run["steps"]}
    assert [s["name"] for s in run["steps"]] == [
        "tell-on-call", "restart", "restart/verify", "wait-listening", "wait-fault-cleared"]
    assert all(s["status"] == "ok" for s in run["steps"]), run["steps"]
    assert steps["restart"]["command"] == f"ssh {sshd.username}@127.0.0.1: systemctl restart webapp"
    assert steps["restart"]["exit_status"] == 0
    assert steps["restart/verify"]["command"].endswith("systemctl is-active --quiet webapp")
    assert "port webapp listens" in steps["wait-listening"]["detail"]
    assert service.listening() and service.pid() not in (None, old_pid)

    resolved = wait_until(lambda: (d := incident(collector, run["incident_id"]))["state"] == "resolved" and d,
                          timeout=30, what="the incident resolved")
    assert resolved["resolved_by"] == "schoolops"
    texts = [e["text"] for e in resolved["timeline"]]
    assert any(f"restart-service run {run['id']} succeeded" in t for t in texts), texts
    resolve = next(e for e in resolved["timeline"] if e["kind"] == "resolve")
    assert f"fixed by runbook restart-service (run {run['id']})" in json.dumps(resolve, ensure_ascii=False)
    # the on-call person was told before anything was touched, in their language
    mail = wait_until(lambda: [m for m in smtp[0].to("wang.wei@school.test") if "restart-service" in m["Subject"]],
                      timeout=20, what="the notify step's email")
    assert "正在重新啟動 web-01 上的 webapp" in mail[0].get_body(preferencelist=("plain",)).get_content()
    assert sshd.accepted_logins() >= 2  # restart and its verify: real SSH sessions


def test_a_remediation_that_cannot_fix_it_runs_three_times_then_escalates_and_stops(
    setup: Callable[..., Collector], make_agent: Callable[..., Agent], service: Service, smtp: tuple[Mailbox, int],
) -> None:
    service.start()
    collector = setup(retry_after="1s")
    watched(collector, make_agent, service)
    service.break_it()

    service.kill()

    def restart_runs() -> list[dict[str, Any]]:
        return [r for r in runs(collector) if r["runbook"] == "restart-service"]

    wait_until(lambda: len([r for r in restart_runs() if r["state"] == "escalated"]) == 3, timeout=90,
               what="three escalated attempts")
    number = restart_runs()[0]["incident"]
    budget = wait_until(lambda: [e for e in incident(collector, number)["timeline"]
                                 if e["kind"] == "escalation" and "no further automatic attempts" in e["text"]],
                        timeout=20, what="the escalation when the budget ran out")
    assert "3 automatic runs in the past 60 minutes did not fix it" in budget[0]["text"]
    failed = record(collector, restart_runs()[-1]["id"])
    verify = next(s for s in failed["steps"] if s["name"] == "restart/verify")
    assert verify["status"] == "failed" and verify["detail"] == "exit status 1"
    assert "step restart failed: its check restart/verify failed: exit status 1" in failed["result"]
    time.sleep(4)  # several retry intervals and ticks: a 4th attempt would have started by now
    assert len(restart_runs()) == 3
    mails = wait_until(lambda: (m := [m for m in smtp[0].to("wang.wei@school.test") if "處置流程未能解決" in m["Subject"]])
                       and len(m) >= 2 and m, timeout=20, what="the escalation emails")
    assert len(mails) == 2  # one for the failed run (once per incident), one when the budget ran out
    assert "no further automatic attempts" in mails[-1].get_body(preferencelist=("plain",)).get_content()


SLOW_PORT = """\
name: slow-port-check
description: A slow look at the port (holds the asset's lock a while)
when: {rule: [port_closed], labels: {role: web}}
safe_for_automation: true
steps:
  - name: look
    action: ssh
    params: {argv: [sleep, "3"]}
"""


def test_two_faults_on_one_asset_run_their_runbooks_one_after_the_other(
    setup: Callable[..., Collector], make_agent: Callable[..., Agent], service: Service,
) -> None:
    service.start()
    collector = setup({"slow-port.yaml": SLOW_PORT})
    watched(collector, make_agent, service)

    service.kill()

    seen_waiting = []

    def both_done() -> list[dict[str, Any]] | None:
        current = runs(collector, "--asset", "web-01")
        seen_waiting.extend(r for r in current if r["state"] == "queued" and "waiting for the lock" in (r["result"] or ""))
        mine = [r for r in current if r["runbook"] in ("restart-service", "slow-port-check")]
        return mine if len({r["runbook"] for r in mine if r["state"] == "succeeded"}) == 2 else None

    done = wait_until(both_done, timeout=60, interval=0.2, what="both runbooks finished")
    first, second = sorted((record(collector, r["id"]) for r in done), key=lambda r: r["started_at"])
    assert first["finished_at"] <= second["started_at"], "the runs overlapped on one asset"
    assert seen_waiting, "the second run was never seen waiting for the lock"
    assert f"run {first['id']} holds it" in seen_waiting[0]["result"]


def test_a_dry_run_prints_the_commands_and_opens_no_ssh_session(
    setup: Callable[..., Collector], sshd: Sshd,
) -> None:
    collector = setup()

    out = cli("runbooks", "run", "restart-service", "--asset", "web-01", "--var", "service=webapp", "--dry-run",
              "--config", str(collector.config_path)).stdout

    assert "dry run on web-01: nothing is executed" in out
    assert f"ssh {sshd.username}@127.0.0.1: systemctl restart webapp" in out
    assert "verify: ssh" in out and "systemctl is-active --quiet webapp" in out
    assert "not simulated: waits for fresh data" in out
    time.sleep(0.5)
    assert sshd.accepted_logins() == 0 and sshd.sessions() == 0
    assert runs(collector) == []
    refused = cli("runbooks", "run", "restart-service", "--asset", "web-01", "--dry-run",
                  "--config", str(collector.config_path), check=False)
    assert refused.returncode != 0
    assert "{{ fault.key }} has no value: this run was not started by a fault" in refused.stderr


HANG = """\
name: hang
description: A command that does not finish in time
manual: true
steps:
  - name: stuck
    action: ssh
    params: {argv: [sleep, "47.5"]}
    timeout: 2s
"""


def test_a_changed_host_key_aborts_the_step_and_a_step_past_its_timeout_is_killed(
    setup: Callable[..., Collector], sshd: Sshd,
) -> None:
    collector = setup({"hang.yaml": HANG})
    config = ["--config", str(collector.config_path)]

    result = cli("runbooks", "run", "hang", "--asset", "web-01", "--as", "li.na", *config, check=False)
    assert result.returncode == 1 and "stuck: timed_out" in result.stdout
    run = record(collector, runs(collector)[0]["id"])
    assert run["state"] == "aborted" and run["started_by"] == "li.na"
    assert run["steps"][0]["status"] == "timed_out" and "killed after 2s" in run["steps"][0]["detail"]
    still = subprocess.run(["pgrep", "-f", "sleep 47.5"], capture_output=True, text=True)
    assert still.stdout.strip() == "", "the remote command outlived its step"

    sshd.replace_host_key()
    logins = sshd.accepted_logins()
    result = cli("runbooks", "run", "restart-service", "--asset", "web-01", "--var", "service=webapp",
                 *config, check=False)
    assert result.returncode == 1
    run = record(collector, runs(collector)[0]["id"])
    restart = next(s for s in run["steps"] if s["name"] == "restart")
    assert restart["status"] == "failed" and "POSSIBLE IMPOSTOR" in restart["detail"]
    assert run["state"] == "escalated" and "restart failed" in run["result"]
    assert sshd.accepted_logins() == logins  # nothing was sent to the impostor


SLOW_TOTAL = """\
name: slow-total
description: Steps that each fit their own timeout but not the runbook's
manual: true
timeout: 3s
steps:
  - {name: first, action: ssh, params: {argv: [sleep, "2"]}, timeout: 10s}
  - {name: second, action: ssh, params: {argv: [sleep, "2.5"]}, timeout: 10s}
  - {name: never, action: ssh, params: {argv: ["true"]}}
"""


def test_everything_stops_at_the_runbooks_overall_timeout(setup: Callable[..., Collector]) -> None:
    collector = setup({"slow-total.yaml": SLOW_TOTAL})

    result = cli("runbooks", "run", "slow-total", "--asset", "web-01", "--as", "li.na",
                 "--config", str(collector.config_path), check=False)

    assert result.returncode == 1
    run = record(collector, runs(collector)[0]["id"])
    assert run["state"] == "timed_out" and "overall timeout (3s)" in run["result"]
    assert [s["name"] for s in run["steps"]] == ["first"]  # the second was stopped, the third never began
    assert run["finished_at"] - run["started_at"] < 6
