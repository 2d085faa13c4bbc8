"""Upgrade plans: what the loader refuses (with the file, line and key), and the pure decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.upgrades import core
from collector.upgrades.loader import load_plan, load_plan_text
from collector.upgrades.model import BackupFile, FreeDisk, Tolerance
from schoolops import ConfigError
from schoolops.units import ByteSize, Seconds

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: portal
description: Upgrade the portal
reason: {source: vendor_notice, reference: PS-2026-11}
assets: {role: [web]}
approval: {role: director}
window: {duration: 1h}
variables: {version: "2.4"}
backup:
  steps: [{name: dump, action: ssh, params: {argv: [tar, -czf, "{{ backup_file }}", /srv/app]}}]
  verify: {path: "/var/backups/{{ asset.name }}-{{ version }}.tar.gz", min_size: 1KiB}
execute:
  steps: [{name: swap, action: ssh, params: {argv: [ln, -sfn, "/srv/releases/{{ version }}", /srv/app]}}]
rollback:
  steps: [{name: back, action: ssh, params: {argv: [tar, -xzf, "{{ backup_file }}", -C, /]}}]
"""


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_plan_text(text, "upgrades/portal.yaml")
    return str(caught.value)


def test_the_shipped_example_plan_and_a_minimal_one_load() -> None:
    shipped = load_plan(ROOT / "runbooks" / "upgrades" / "portal-app.yaml")
    assert shipped.approval.role == "director" and shipped.serial == 1
    plan = load_plan_text(GOOD, "upgrades/portal.yaml")
    assert [s.name for s in plan.backup.steps.steps] == ["dump", "backup-file-stat", "backup-file-clock"]
    assert plan.variables["backup_file"] == "/var/backups/{{ asset.name }}-{{ version }}.tar.gz"
    assert plan.pre_checks.patrol and plan.max_failed_batches == 1


@pytest.mark.parametrize(("change", "expected"), [
    (("assets: {role: [web]}", "assets: {rol: [web]}"), "upgrades/portal.yaml:4: assets.rol: Object contains unknown field"),
    (("assets: {role: [web]}", "assets: {}"), "assets: name the assets to upgrade"),
    (("action: ssh, params: {argv: [ln", "action: reboot, params: {argv: [ln"), "execute.steps[0] (name swap): action: unknown step action 'reboot'"),
    (("[{name: swap, action: ssh", "[{name: swap, action: approve"), "'approve' steps are not for upgrade plans"),
    (("/srv/releases/{{ version }}", "/srv/releases/{{ versoin }}"), "unknown template variable 'versoin'"),
    (("approval: {role: director}", "approval: {role: janitor}"), "approval.role: 'janitor' cannot approve"),
    (("window: {duration: 1h}", "window: {duration: 1h, start: tomorrow}"), "window.start: 'tomorrow' is not a date"),
    (("window: {duration: 1h}", "window: {duration: 1h, start: '2026-12-05T18:00:00'}"), "give the offset from UTC"),
    (("  verify: {path", "  verfy: {path"), "backup.verfy: Object contains unknown field"),
    (("  verify: {path: \"/var/backups/{{ asset.name }}-{{ version }}.tar.gz\", min_size: 1KiB}\n", ""),
     "backup.verify: say which file the backup steps make"),
    (("rollback:\n  steps: [{name: back, action: ssh, params: {argv: [tar, -xzf, \"{{ backup_file }}\", -C, /]}}]\n", ""),
     "rollback"),
])
def test_a_bad_plan_is_refused_naming_the_place_and_the_reason(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    assert expected in refused(GOOD.replace(old, new))


def test_checks_may_only_look() -> None:
    text = GOOD + "pre_checks:\n  steps: [{name: tell, action: notify, params: {to: [primary], message: hi}}]\n"
    assert "pre_checks.steps[0] (name tell): action: pre_checks only look: 'notify'" in refused(text)
    text = GOOD + "pre_checks:\n  compare: {metrics: [{metric: cpu.percent, max_increase: 5}]}\n"
    assert "compare belongs in post_checks" in refused(text)
    text = GOOD + "post_checks:\n  compare: {metrics: [{metric: cpu.percnt, max_increase: 5}]}\n"
    assert "unknown measurement 'cpu.percnt'" in refused(text)


def test_batches_take_serial_assets_at_a_time_in_name_order() -> None:
    assert core.batches(["web-c", "web-a", "web-b"], 1) == [["web-a"], ["web-b"], ["web-c"]]
    assert core.batches(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert core.Progress(1, 1).stop and not core.Progress(1, 2).stop


def test_a_backup_file_must_exist_be_big_enough_and_fresh() -> None:
    spec = BackupFile(path="/b", min_size=ByteSize(1024), max_age=Seconds(600))
    assert core.backup_file(spec, "/b", "4096 1000", "1100").ok
    assert "less than the 1.0 KiB expected (empty)" in core.backup_file(spec, "/b", "0 1000", "1100").detail
    old = core.backup_file(spec, "/b", "4096 1000", "5000")
    assert not old.ok and "67 min old, older than 10 min: not made now" in old.detail
    assert not core.backup_file(spec, "/b", "garbage", "1").ok


def test_free_disk_and_before_after_comparisons() -> None:
    assert core.free_disk(FreeDisk(path="/", min=ByteSize(1 << 30)), 2 << 30).ok
    assert not core.free_disk(FreeDisk(path="/", min=ByteSize(1 << 30)), 1 << 20).ok
    assert "no such filesystem" in core.free_disk(FreeDisk(path="/x", min=ByteSize(1)), None).detail
    slower = Tolerance(metric="probe.latency_seconds", key="home", max_increase="50%")
    assert core.compare(slower, 0.2, 0.29).ok
    verdict = core.compare(slower, 0.2, 0.31)
    assert not verdict.ok and "rose more than allowed (+0.1)" in verdict.detail
    fewer = Tolerance(metric="port.listening", key="portal", max_decrease=0)
    assert core.compare(fewer, 1, 1).ok and not core.compare(fewer, 1, 0).ok
    assert "no value after" in core.compare(fewer, 1, None).detail


def test_nobody_approves_their_own_upgrade_and_only_the_named_role_may() -> None:
    common = {"upgrade_id": 4, "state": "waiting_approval", "role": "director", "requested_by": "li.na",
              "expires_at": 100.0, "now": 50.0}
    assert "cannot approve their own plan" in str(core.approval_refusal(**common, person="li.na", roles=["director"]))
    assert "only someone with the director role" in str(core.approval_refusal(**common, person="wang", roles=["on-call"]))
    assert core.approval_refusal(**common, person="zhang", roles=["director"]) is None
    late = {**common, "now": 100.0}
    assert "expired" in str(core.approval_refusal(**late, person="zhang", roles=["director"]))
