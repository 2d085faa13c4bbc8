"""promtool on what deploy/prometheus ships: the config, the rules (linted), and the rules' unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.dashboards.shipped import DEPLOY

pytestmark = pytest.mark.peers
PROMETHEUS = DEPLOY / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_config_and_finds_the_rule_files() -> None:
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_rules_with_every_lint_fatal() -> None:
    assert RULES
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", *RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    alerts = {rule["alert"] for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    fired = {case["alertname"] for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts and alerts == fired, alerts ^ fired


def test_a_broken_rule_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a misspelled metric makes them fail (check rules alone would pass)."""
    for path in RULES:
        (tmp_path / "rules").mkdir(exist_ok=True)
        text = path.read_text().replace("schoolops_notifications_total", "schoolops_notification_total")
        (tmp_path / "rules" / path.name).write_text(text)
    (tmp_path / "tests").mkdir()
    for path in RULE_TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    assert promtool("check", "rules", *sorted((tmp_path / "rules").glob("*.yml"))).returncode == 0
    assert promtool("test", "rules", *sorted((tmp_path / "tests").glob("*.yml"))).returncode == 1
