"""Runbook files: the shipped ones load, and every mistake is refused naming the file, line, step and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.domain import FaultType, Severity
from collector.runbooks.loader import load_runbooks
from collector.runbooks.model import (
    STEP_ACTIONS,
    ApproveParams,
    CliParams,
    OnFailure,
    SnmpGetParams,
    SshParams,
    WaitCondition,
    WaitUntilParams,
)
from schoolops import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: restart-service
description: Restart a failed service
when: {severity: [P3, P4], type: [application], rule: [process_down]}
variables: {service: "{{ fault.key }}", unit: "{{ service }}.service"}
steps:
  - name: ask
    action: approve
    params: {role: operator, reason: "restart {{ unit }} on {{ asset.name }}"}
  - name: restart
    action: ssh
    params: {argv: [systemctl, restart, "{{ unit }}"]}
    mutating: true
    verify: {action: ssh, params: {argv: [systemctl, is-active, "{{ unit }}"]}}
  - name: wait
    action: wait_until
    params: {condition: fault_cleared, timeout: 30s}
"""
# lines of GOOD: 6 steps[0], 9 steps[1] (name restart), 11 its params, 13 its verify


def write(folder: Path, text: str, name: str = "runbook.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(folder: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_runbooks(folder)
    return str(info.value)


# --- the shipped runbooks ----------------------------------------------------------------------


def test_the_shipped_runbooks_load_including_the_emergency_plan_in_its_subfolder() -> None:
    runbooks = load_runbooks(REPO / "runbooks")

    assert {"restart-service", "core-switch-outage"} <= set(runbooks)
    restart = runbooks["restart-service"]
    assert restart.automatic and restart.when is not None
    assert restart.when.severities == {Severity.P3, Severity.P4}
    assert restart.when.type == (FaultType.APPLICATION,)
    step = next(s for s in restart.steps if s.name == "restart")
    assert isinstance(step.params, SshParams)
    assert step.params.argv == ("systemctl", "restart", "{{ service }}")
    assert step.mutating and step.on_failure is OnFailure.ESCALATE
    assert step.verify is not None and isinstance(step.verify.params, SshParams)
    plan = runbooks["core-switch-outage"]
    assert plan.source.endswith("emergency/core-switch-outage.yaml")
    assert plan.when is not None and plan.when.severities == {Severity.P1, Severity.P2}
    assert not any(s.mutating for s in plan.steps)
    assert {type(s.params) for s in plan.steps} >= {CliParams, SnmpGetParams, WaitUntilParams}


def test_a_good_file_gets_typed_params_defaults_and_its_variables_in_order(tmp_path: Path) -> None:
    write(tmp_path, GOOD)

    runbook = load_runbooks(tmp_path)["restart-service"]

    ask, restart, wait = runbook.steps
    assert isinstance(ask.params, ApproveParams) and ask.params.expires == 24 * 3600
    assert restart.timeout == 60 and restart.on_failure is OnFailure.ABORT
    assert isinstance(wait.params, WaitUntilParams) and wait.params.condition is WaitCondition.FAULT_CLEARED
    assert list(runbook.variables) == ["service", "unit"]
    assert runbook.timeout == 600 and not runbook.manual


def test_every_action_has_a_params_type() -> None:
    assert set(STEP_ACTIONS) == {"ssh", "cli", "snmp_get", "http", "wait_until", "notify", "approve", "runbook"}


# --- refused files -----------------------------------------------------------------------------


def test_an_unknown_step_action_names_file_line_step_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("action: ssh\n", "action: sssh\n", 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:10: steps[1] (name restart): action: unknown step action 'sssh': use one of ssh, cli,")


def test_params_that_do_not_fit_the_action_name_the_param(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"{{ unit }}"]}\n    mutating', '"{{ unit }}"], user: root}\n    mutating', 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:11: steps[1] (name restart): params.user: ")
    assert "unknown field" in message


def test_a_missing_or_mistyped_param_is_named_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{role: operator,", "{role: janitor,", 1))

    message = load_error(tmp_path)

    assert message == f"{path}:8: steps[0] (name ask): params.role: 'janitor' cannot approve: use director, on-call, operator"
    path = write(tmp_path, GOOD.replace("{role: operator, ", "{", 1))
    message = load_error(tmp_path)
    assert message == f"{path}:8: steps[0] (name ask): params.role: Object missing required field `role`"


def test_bad_verify_params_point_into_the_verify(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('[systemctl, is-active, "{{ unit }}"]', "[]", 1))

    message = load_error(tmp_path)

    assert message == f"{path}:13: steps[1] (name restart): verify.params.argv: Expected `array` of length >= 1"


def test_a_shell_string_in_argv_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("{argv: [systemctl, restart,", '{argv: ["systemctl restart nginx; rm -rf /tmp/x",', 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:11: steps[1] (name restart): params.argv: ")
    assert "commands are argument lists, never shell strings" in message


@pytest.mark.parametrize("program", ["a; b", "ls | sh", "$(reboot)", "echo `id`", "x && y"])
def test_shell_metacharacters_in_the_program_are_refused(program: str) -> None:
    with pytest.raises(ValueError, match="never shell strings"):
        SshParams(argv=(program,))


def test_an_unknown_template_variable_is_refused_in_a_step(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('restart, "{{ unit }}"', 'restart, "{{ servce }}"', 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:11: steps[1] (name restart): params.argv[2]: unknown template variable 'servce'")
    assert "incident.*, fault.*, asset.*, secret.*, service, unit" in message


def test_a_variable_may_only_use_variables_defined_before_it(tmp_path: Path) -> None:
    text = GOOD.replace('{service: "{{ fault.key }}", unit: "{{ service }}.service"}', '{unit: "{{ service }}.service", service: x}')
    path = write(tmp_path, text)

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:4: variables.unit: unknown template variable 'service'")


def test_a_placeholder_with_an_expression_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"restart {{ unit }}', '"restart {{ unit | upper }}', 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:8: steps[0] (name ask): params.reason: {{{{ unit | upper }}}} is not a placeholder")


def test_a_runbook_step_must_name_an_existing_runbook(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    path = write(tmp_path / "emergency", GOOD.replace("name: restart-service", "name: web-outage").replace(
        "  - name: wait\n    action: wait_until\n    params: {condition: fault_cleared, timeout: 30s}\n",
        "  - name: call\n    action: runbook\n    params: {name: restart-servce}\n",
    ), name="web-outage.yaml")

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:16: steps[2] (name call): params.name: no runbook named 'restart-servce'")
    write(tmp_path / "emergency", path.read_text().replace("restart-servce", "restart-service"), name="web-outage.yaml")
    assert "runbook 'restart-service' asks for approval (step 'ask') and cannot be called from another runbook" in (
        load_error(tmp_path))
    write(tmp_path, GOOD.replace("  - name: ask\n    action: approve\n    params: {role: operator, reason: \"restart {{ unit }} on {{ asset.name }}\"}\n", ""))
    assert set(load_runbooks(tmp_path)) == {"restart-service", "web-outage"}


def test_runbooks_calling_each_other_in_a_loop_are_refused(tmp_path: Path) -> None:
    def calling(name: str, callee: str) -> str:
        return (f"name: {name}\ndescription: d\nmanual: true\nsteps:\n"
                f"  - name: call\n    action: runbook\n    params: {{name: {callee}}}\n")

    write(tmp_path, calling("a", "b"), name="a.yaml")
    write(tmp_path, calling("b", "c"), name="b.yaml")
    write(tmp_path, calling("c", "a"), name="c.yaml")

    message = load_error(tmp_path)

    assert "runbook calls loop back to themselves: a -> b -> c -> a" in message
    assert message.startswith(f"{tmp_path / 'a.yaml'}:7: steps[0] (name call): params.name:")


def test_duplicate_runbook_names_across_files_are_refused(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, name="a.yaml")
    second = write(tmp_path / "emergency", GOOD, name="b.yaml")

    message = load_error(tmp_path)

    assert message == f"{second}:1: name: duplicate runbook name 'restart-service': already defined in {first}"


def test_a_repeated_step_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  - name: wait\n", "  - name: restart\n", 1))

    message = load_error(tmp_path)

    assert message == f"{path}:14: steps[2] (name restart): name: step name 'restart' repeated: already steps[1]"


def test_when_and_manual_together_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("variables:", "manual: true\nvariables:", 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:4: manual: give either when")


def test_a_wait_longer_than_its_step_timeout_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("timeout: 30s}", "timeout: 5m}", 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:14: steps[2] (name wait): timeout: 60s is shorter than the wait (300s)")


def test_a_verify_may_only_observe(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("verify: {action: ssh,", "verify: {action: notify,", 1))

    message = load_error(tmp_path)

    assert message.startswith(f"{path}:13: steps[1] (name restart): verify.action: unknown verify action 'notify'")


def test_one_bad_file_fails_the_whole_load(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    bad = write(tmp_path, "name: Bad Name\ndescription: x\nsteps: []\n", name="zz.yaml")

    message = load_error(tmp_path)

    assert message.startswith(f"{bad}:1: name: ")
