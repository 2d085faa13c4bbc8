"""Rule files: the shipped set loads, and every mistake is refused naming the file, line, rule and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.domain import AssetContext, FaultType
from collector.rules.loader import RuleSet, load_rules
from collector.rules.measure import METRICS
from collector.rules.model import AbsenceRule, RateRule, StateRule, ThresholdRule
from schoolops import ConfigError
from schoolops.wire import Tier

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
rules:
  - id: filesystem_usage
    kind: threshold
    type: capacity
    metric: filesystem.used_percent
    levels: {P4: 80, P3: 90, P2: 95}
    recovery: 75
    summary: "filesystem {key} is {value:.0f}% full"
"""


def write(folder: Path, text: str, name: str = "rules.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(folder: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_rules(folder)
    return str(info.value)


def one_rule(**fields: str) -> str:
    """A rules file with one threshold rule (lines 2-8), fields replaced or added after it."""
    base = {
        "id": "filesystem_usage", "kind": "threshold", "type": "capacity", "metric": "filesystem.used_percent",
        "levels": "{P4: 80, P3: 90, P2: 95}", "summary": '"filesystem {key} is {value:.0f}% full"',
    }
    base.update(fields)
    lines = [f"    {key}: {value}" for key, value in base.items() if value != "-"]
    lines[0] = "  - " + lines[0].lstrip()
    return "rules:\n" + "\n".join(lines) + "\n"


# --- the shipped rules -------------------------------------------------------------------------


def test_the_shipped_alerts_folder_loads_with_every_rule_the_product_promises() -> None:
    rules = load_rules(REPO / "alerts")
    assert {rule.id for rule in rules.rules} >= {
        "filesystem_usage", "filesystem_inodes", "filesystem_fill_rate", "memory_usage", "swap_usage",
        "load_per_core", "process_down", "port_closed", "backup_stale", "log_pattern_matched", "asset_silent",
        "temperature_high", "check_status", "agent_probe_errors",
    }
    by_id = {rule.id: rule for rule in rules.rules}
    usage = by_id["filesystem_usage"]
    assert isinstance(usage, ThresholdRule)
    assert (usage.levels, usage.recovery) == ({"P4": 80, "P3": 90, "P2": 95}, 75)
    silent = by_id["asset_silent"]
    assert isinstance(silent, AbsenceRule) and (silent.severity, silent.intervals, silent.type) == ("P2", 3, FaultType.NETWORK)
    fill = by_id["filesystem_fill_rate"]
    assert isinstance(fill, RateRule) and float(fill.predict) == 4 * 3600
    checks = by_id["check_status"]
    assert isinstance(checks, StateRule) and checks.levels == {1: "P4", 2: "P3", 3: "P4"}
    assert by_id["log_pattern_matched"].type is FaultType.SECURITY
    assert by_id["temperature_high"].type is FaultType.HARDWARE
    assert isinstance(by_id["load_per_core"], ThresholdRule) and float(by_id["load_per_core"].for_) == 300


def test_every_shipped_rule_is_explained_by_a_comment_above_it() -> None:
    for path in sorted((REPO / "alerts").glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip().startswith("- id:"):
                assert lines[number - 1].strip().startswith("#"), f"{path.name}:{number + 1} has no comment"


def test_the_shipped_overrides_apply_to_the_assets_they_name() -> None:
    rules = load_rules(REPO / "alerts")
    exam = {r.id: r for r in rules.rules_for(AssetContext(name="exam-01", role="exam-server"))}
    plain = {r.id: r for r in rules.rules_for(AssetContext(name="lab-01"))}
    assert isinstance(exam["filesystem_usage"], ThresholdRule) and exam["filesystem_usage"].levels["P3"] == 80
    assert isinstance(plain["filesystem_usage"], ThresholdRule) and plain["filesystem_usage"].levels["P3"] == 90
    core = {r.id: r for r in rules.rules_for(AssetContext(name="web-01", tier=Tier.CORE))}
    assert isinstance(core["log_pattern_matched"], ThresholdRule) and "P3" in core["log_pattern_matched"].levels


def test_the_measurement_docstring_lists_every_metric_a_rule_may_use() -> None:
    from collector.rules import measure

    for name in METRICS:
        assert f"``{name}``" in (measure.__doc__ or "")


# --- loading ------------------------------------------------------------------------------------


def test_files_are_merged_in_name_order_and_both_extensions_count(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "b.yml")
    write(tmp_path, one_rule(id="memory_usage", metric="memory.used_percent", levels="{P4: 90}"), "a.yaml")
    write(tmp_path, "not: a rule file", "notes.txt")
    rules = load_rules(tmp_path)
    assert [rule.id for rule in rules.rules] == ["memory_usage", "filesystem_usage"]
    assert [Path(f).name for f in rules.files] == ["a.yaml", "b.yml"]


def test_an_empty_folder_gives_no_rules_and_a_missing_one_is_refused(tmp_path: Path) -> None:
    assert load_rules(tmp_path) == RuleSet(files=())
    assert load_error(tmp_path / "nope").startswith(f"{tmp_path / 'nope'}: ")


def test_one_bad_file_refuses_the_whole_folder(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    bad = write(tmp_path, one_rule(id="other", kind="thresold"), "b.yaml")
    assert load_error(tmp_path).startswith(f"{bad}:")


# --- each mistake, named ------------------------------------------------------------------------


def test_an_unknown_kind_names_the_rule_and_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(kind="thresold"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:3: rules[0] (id filesystem_usage): kind: unknown rule kind 'thresold'")
    assert "did you mean 'threshold'" in message


def test_a_field_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(predict="4h"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:8: rules[0] (id filesystem_usage): predict: not a field of a threshold rule")


def test_severity_in_a_threshold_rule_is_a_field_of_another_kind(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(severity="P3"))
    assert load_error(tmp_path).startswith(f"{path}:8: rules[0] (id filesystem_usage): severity: not a field")


def test_an_unknown_metric_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(metric="filesystem.use_percent"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:5: rules[0] (id filesystem_usage): metric: unknown measurement")
    assert "did you mean 'filesystem.used_percent'" in message


def test_empty_levels_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(levels="{}"))
    assert load_error(tmp_path).startswith(f"{path}:6: rules[0] (id filesystem_usage): levels: give at least one")


def test_levels_out_of_order_above_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(levels="{P4: 80, P3: 95, P2: 90}"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:6: rules[0] (id filesystem_usage): levels: P2 (90) must be above P3 (95)")


def test_levels_out_of_order_below_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(levels="{P4: 10, P3: 20}", direction="below"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:6: rules[0] (id filesystem_usage): levels: P3 (20) must be below P4 (10)")


def test_a_level_that_is_not_a_severity_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(levels="{P5: 80}"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:6: rules[0] (id filesystem_usage): levels.P5: 'P5' is not a severity")


def test_a_level_that_is_not_a_number_names_the_rule_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(levels="{P4: lots}"))
    message = load_error(tmp_path)
    # msgspec names a mapping's value `levels[...]`
    assert message.startswith(f"{path}:6: rules[0] (id filesystem_usage): levels")
    assert "Expected `float`, got `str`" in message


def test_recovery_on_the_wrong_side_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(recovery="85"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:8: rules[0] (id filesystem_usage): recovery: 85 would never clear")
    write(tmp_path, one_rule(levels="{P4: 10, P3: 5}", direction="below", recovery="8"))
    assert "recovery: 8 would never clear: it must be at or above" in load_error(tmp_path)


def test_a_summary_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(summary='"filesystem {mount} is full"'))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:7: rules[0] (id filesystem_usage): summary: unknown field {{mount}}")


@pytest.mark.parametrize(
    "summary, reason",
    [('"{}"', "unknown field {} (a positional field)"), ('"{key.upper}"', "unknown field {key.upper}"),
     ('"{value:.0q}"', "not a valid template"), ('"{value"', "not a valid template")],
)
def test_a_summary_template_must_format(tmp_path: Path, summary: str, reason: str) -> None:
    path = write(tmp_path, one_rule(summary=summary))
    assert load_error(tmp_path).startswith(f"{path}:7: rules[0] (id filesystem_usage): summary: {reason}")


def test_a_bad_id_is_refused_by_the_schema(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(id="Disk-Full"))
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:2: rules[0] (id Disk-Full): id: Expected `str` matching regex")


def test_duplicate_ids_across_two_files_name_both(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "a.yaml")
    second = write(tmp_path, "# local rules\n" + GOOD, "b.yaml")
    message = load_error(tmp_path)
    assert message.startswith(f"{second}:3: rules[0] (id filesystem_usage): id: duplicate rule id 'filesystem_usage'")
    assert f"already defined in {first} rules[0]" in message


def test_state_rules_take_bad_with_severity_or_levels_not_both(tmp_path: Path) -> None:
    text = """\
rules:
  - id: process_down
    kind: state
    type: application
    metric: process.running
    bad: [0]
    levels: {0: P3}
    summary: "process {key} is not running"
"""
    path = write(tmp_path, text)
    assert load_error(tmp_path).startswith(f"{path}:6: rules[0] (id process_down): bad: give either levels or bad")
    write(tmp_path, text.replace("    levels: {0: P3}\n", ""))
    assert "rules[0] (id process_down): severity: a state rule with bad values needs a severity" in load_error(tmp_path)


def test_an_absence_rule_needs_a_real_severity(tmp_path: Path) -> None:
    text = 'rules:\n  - {id: asset_silent, kind: absence, type: network, severity: P7, summary: "silent"}\n'
    path = write(tmp_path, text)
    assert load_error(tmp_path).startswith(f"{path}:2: rules[0] (id asset_silent): severity: 'P7' is not a severity")


def test_an_unknown_fault_type_names_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(type="disk"))
    assert load_error(tmp_path).startswith(f"{path}:4: rules[0] (id filesystem_usage): type: Invalid enum value 'disk'")


def test_an_unknown_top_level_key_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "overides: []\n")
    assert load_error(tmp_path).startswith(f"{path}:9: overides: ")


# --- overrides ----------------------------------------------------------------------------------


def test_an_override_naming_an_unknown_rule_is_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    path = write(tmp_path, "overrides:\n  - match: {role: [exam-server]}\n    rule: filesystem_usag\n    set: {for: 0s}\n", "b.yaml")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:3: overrides[0] (rule filesystem_usag): rule: unknown rule 'filesystem_usag'")
    assert "did you mean 'filesystem_usage'" in message


def test_an_override_may_only_set_the_keys_it_lists(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "overrides:\n  - rule: filesystem_usage\n    set: {metric: memory.used_percent}\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:11: overrides[0] (rule filesystem_usage): set.metric: cannot be overridden")


def test_an_override_may_not_set_a_key_of_another_kind(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "overrides:\n  - rule: filesystem_usage\n    set: {intervals: 5}\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:11: overrides[0] (rule filesystem_usage): set.intervals: ")
    assert "threshold rule, which has no intervals" in message


def test_an_override_is_checked_as_the_rule_it_makes(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "overrides:\n  - rule: filesystem_usage\n    set:\n      levels: {P4: 90, P3: 80}\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:12: overrides[0] (rule filesystem_usage): set.levels: P3 (80) must be above")
    write(tmp_path, GOOD + "overrides:\n  - rule: filesystem_usage\n    set: {levels: {P4: 70}}\n")
    message = load_error(tmp_path)
    assert "overrides[0] (rule filesystem_usage): set: the rule's recovery no longer fits: 75 would never clear" in message
    write(tmp_path, GOOD + "overrides:\n  - rule: filesystem_usage\n    set: {for: soon}\n")
    assert "overrides[0] (rule filesystem_usage): set.for: expected a duration" in load_error(tmp_path)


def test_an_override_selector_is_validated(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "overrides:\n  - match: {tier: [gold]}\n    rule: filesystem_usage\n    set: {for: 1m}\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{path}:10: overrides[0] (rule filesystem_usage): match.tier[0]: Invalid enum value 'gold'")


def test_a_rule_selector_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, one_rule(match="{building: [a]}"))
    message = load_error(tmp_path)
    assert re.match(rf"{re.escape(str(path))}:8: rules\[0\] \(id filesystem_usage\): match.building: .*unknown field", message)
