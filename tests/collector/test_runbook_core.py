"""The pure core of runbooks: templates filled safely, triggers, the approval rule, the attempt budget."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collector.domain import FaultType, Severity
from collector.runbooks.loader import load_runbooks
from collector.runbooks.model import CliParams, SnmpGetParams, SshParams
from collector.runbooks.render import MASK, RenderError, Scope, plan, redact
from collector.runbooks.safety import (
    ApprovalRequest,
    TriggerFacts,
    approval_refusal,
    automation_problem,
    budget_left,
    matches,
)

REPO = Path(__file__).resolve().parents[2]


def load(tmp_path: Path, text: str, name: str = "rb.yaml") -> dict:  # type: ignore[type-arg]
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_runbooks(tmp_path)


RB = """\
name: probe
description: d
manual: true
variables: {service: "{{ fault.key }}", port: "8080"}
steps:
  - name: restart
    action: ssh
    params: {argv: [systemctl, restart, "{{ service }}", "--token={{ secret.api.key }}"]}
    mutating: true
  - name: show
    action: cli
    params: {commands: ["show interfaces {{ asset.labels.uplink }}"]}
  - name: oper
    action: snmp_get
    params: {oids: ["1.3.6.1.2.1.2.2.1.8.{{ asset.labels.ifindex }}"]}
"""


def scope(**fault: str) -> Scope:
    return Scope(incident={"id": "7"}, fault=fault or {"key": "nginx"},
                 asset={"name": "web-01", "address": "10.0.0.5", "labels.uplink": "Gi1/0/5", "labels.ifindex": "10105"})


def test_each_value_stays_one_argument_and_secrets_are_masked_where_shown(tmp_path: Path) -> None:
    runbook = load(tmp_path, RB)["probe"]
    steps = plan(runbook, scope(key="nginx; rm -rf /"), reveal=lambda name: "s3cr3t-value")

    ssh = steps[0]
    assert isinstance(ssh.params, SshParams)
    assert ssh.params.argv == ("systemctl", "restart", "nginx; rm -rf /", "--token=s3cr3t-value")
    assert ssh.shown == f"ssh ?@10.0.0.5: systemctl restart 'nginx; rm -rf /' '--token={MASK}'"
    assert "s3cr3t-value" not in ssh.shown and ssh.secrets == ("s3cr3t-value",)
    assert isinstance(steps[1].params, CliParams) and steps[1].params.commands == ("show interfaces Gi1/0/5",)
    assert isinstance(steps[2].params, SnmpGetParams) and steps[2].params.oids == ("1.3.6.1.2.1.2.2.1.8.10105",)


def test_a_dry_run_plan_never_asks_for_a_secret(tmp_path: Path) -> None:
    runbook = load(tmp_path, RB)["probe"]
    steps = plan(runbook, scope())
    assert isinstance(steps[0].params, SshParams) and steps[0].params.argv[-1] == f"--token={MASK}"


def test_a_line_break_cannot_reach_a_device_command_nor_a_letter_an_oid(tmp_path: Path) -> None:
    runbook = load(tmp_path, RB)["probe"]
    bad = Scope(fault={"key": "x"}, asset={"name": "sw", "labels.uplink": "Gi1/0/5\nreload", "labels.ifindex": "1"})
    with pytest.raises(RenderError, match="step show: .*line break"):
        plan(runbook, bad)
    bad = Scope(fault={"key": "x"}, asset={"name": "sw", "labels.uplink": "Gi1", "labels.ifindex": "1.3 x"})
    with pytest.raises(RenderError, match="step oper: .*OID part must be numeric"):
        plan(runbook, bad)


def test_a_placeholder_without_a_value_names_itself(tmp_path: Path) -> None:
    runbook = load(tmp_path, RB)["probe"]
    with pytest.raises(RenderError, match=r"variables.service: \{\{ fault.key \}\} has no value: this run was not "
                                          r"started by a fault; give the variable"):
        plan(runbook, Scope(asset={"name": "web-01"}))
    steps = plan(runbook, Scope(asset={"name": "web-01", "labels.uplink": "Gi1", "labels.ifindex": "3"},
                                variables={"service": "nginx"}))
    assert steps[0].params.argv[2] == "nginx"  # type: ignore[attr-defined]
    with pytest.raises(RenderError, match="no variable named colour"):
        plan(runbook, Scope(asset={"name": "web-01"}, variables={"colour": "red"}))


def test_outputs_are_redacted() -> None:
    text = "login ok\npassword=hunter22 token: so_abcdefgh12.abcdefghijklmnopqrstu\nkey s3cr3t-value"
    cleaned = redact(text, ("s3cr3t-value",))
    assert "hunter22" not in cleaned and "s3cr3t-value" not in cleaned and "abcdefghijklmnopqrstu" not in cleaned
    assert cleaned.startswith("login ok\npassword=")


def test_when_matches_every_given_key() -> None:
    runbooks = load_runbooks(REPO / "runbooks")
    when = runbooks["restart-service"].when
    assert when is not None
    web = TriggerFacts(severity=Severity.P4, type=FaultType.APPLICATION, rule="process_down", labels={"role": "web"})
    assert matches(when, web)
    assert not matches(when, TriggerFacts(Severity.P2, FaultType.APPLICATION, "process_down", {"role": "web"}))
    assert not matches(when, TriggerFacts(Severity.P4, FaultType.APPLICATION, "port_closed", {"role": "web"}))
    assert not matches(when, TriggerFacts(Severity.P4, FaultType.APPLICATION, "process_down", {"role": "db"}))


def test_automatic_runs_of_changing_steps_need_an_approve_step_first(tmp_path: Path) -> None:
    body = ("name: fix\ndescription: d\nwhen: {rule: [process_down]}\nsteps:\n{steps}")
    change = "  - name: change\n    action: ssh\n    params: {argv: [\"true\"]}\n    mutating: true\n"
    ask = "  - name: ask\n    action: approve\n    params: {role: director, reason: r}\n"
    runbooks = load(tmp_path, body.replace("{steps}", change))
    assert automation_problem(runbooks["fix"], runbooks) == (
        "step 'change' changes things and no approve step comes before it: add an approve step or mark runbook "
        "'fix' safe_for_automation")
    runbooks = load(tmp_path, body.replace("{steps}", ask + change))
    assert automation_problem(runbooks["fix"], runbooks) is None
    runbooks = load(tmp_path, body.replace("{steps}", change) + "safe_for_automation: true\n")
    assert automation_problem(runbooks["fix"], runbooks) is None


def test_the_attempt_budget_counts_the_window() -> None:
    assert budget_left([], 1000.0, limit=3, window=3600) == 3
    assert budget_left([100.0, 200.0, 300.0], 1000.0, limit=3, window=3600) == 0
    assert budget_left([100.0, 200.0, 300.0], 3701.0, limit=3, window=3600) == 1  # the first left the hour


def test_nobody_approves_their_own_request_and_the_role_must_match() -> None:
    request = ApprovalRequest(run_id=4, role="director", requested_by="li.ops", expires_at=2000.0)
    assert approval_refusal(request, "li.ops", ["director"], 1000.0) == (
        "run 4: li.ops started this run and cannot approve their own request")
    assert approval_refusal(request, "wang", ["on-call"], 1000.0) == (
        "run 4: only someone with the director role may decide; wang does not have it")
    assert approval_refusal(request, "zhang", ["director"], 2000.0) == "run 4: the request expired; start the runbook again"
    assert approval_refusal(request, "zhang", ["director"], 1000.0) is None
    done = ApprovalRequest(run_id=4, role="director", requested_by="li.ops", expires_at=2000.0, decision="denied")
    assert approval_refusal(done, "zhang", ["director"], 1000.0) == "run 4: the request was already denied"


def test_runbooks_check_names_the_file_and_step_of_an_unknown_kind_or_variable(tmp_path: Path) -> None:
    from tests.support import cli

    folder = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", folder)
    ok = cli("runbooks", "check", str(folder), "--data-dir", str(tmp_path / "data"))
    assert ok.stdout.startswith("7 runbooks OK: ")

    bad = folder / "emergency" / "bad.yaml"
    bad.write_text("name: bad\ndescription: d\nmanual: true\nsteps:\n  - name: reboot\n    action: reboot_server\n")
    refused = cli("runbooks", "check", str(folder), "--data-dir", str(tmp_path / "data"), check=False)
    assert refused.returncode == 2
    assert f"{bad}:6: steps[0] (name reboot): action: unknown step action 'reboot_server'" in refused.stderr

    bad.write_text("name: bad\ndescription: d\nmanual: true\nsteps:\n  - name: hello\n    action: ssh\n"
                   "    params: {argv: [echo, \"{{ greting }}\"]}\n")
    refused = cli("runbooks", "check", str(folder), "--data-dir", str(tmp_path / "data"), check=False)
    assert refused.returncode == 2
    assert f"{bad}:7: steps[0] (name hello): params.argv[1]: unknown template variable 'greting'" in refused.stderr


async def test_a_run_cut_off_by_a_restart_is_marked_interrupted_and_frees_its_asset(tmp_path: Path) -> None:
    from collector.fleet import Fleet
    from collector.runbooks.notices import RunbookNotices
    from collector.runbooks.service import RunbookService
    from collector.store import runbooks as r
    from collector.store.sql import SqlStore

    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        def half_done(conn: object) -> tuple[int, int]:
            cut = r.create_run(conn, runbook="diagnostics", asset="web-01", incident_id=None, fault=None,  # type: ignore[arg-type]
                               started_by="li.na", automatic=False, variables={}, at=1.0, state="running")
            waiting = r.create_run(conn, runbook="isolate-host", asset="pc-2", incident_id=None, fault=None,  # type: ignore[arg-type]
                                   started_by="li.na", automatic=False, variables={}, at=1.0, state="waiting_approval")
            r.acquire_lock(conn, "web-01", cut, 1.0)  # type: ignore[arg-type]
            r.acquire_lock(conn, "pc-2", waiting, 1.0)  # type: ignore[arg-type]
            return cut, waiting

        cut, waiting = await store.run(half_done)
        service = RunbookService(store, Fleet(), None, {}, entries=[], secret=lambda n: "",  # type: ignore[arg-type]
                                 notices=RunbookNotices(None, None))
        await service.start()

        runs = await store.run(lambda c: {run.id: run for run in r.list_runs(c)})
        assert runs[cut].state == "interrupted" and "a step may have half-run" in (runs[cut].result or "")
        assert runs[waiting].state == "waiting_approval"  # a run parked before its next step carries on
        assert await store.run(r.locks) == {"pc-2": waiting}
    finally:
        await store.close()
