"""Rule evaluation: reports and ``now`` in, the findings active now out; no clock, no I/O.

Rules come from real YAML files written to ``tmp_path`` (or the shipped ``alerts/``); reports are
real :class:`schoolops.wire.Report` structs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.domain import AssetContext, Finding, Severity
from collector.rules.evaluate import AssetRuleState, evaluate_asset
from collector.rules.loader import RuleSet, load_rules
from collector.rules.measure import measurements
from collector.rules.model import Rule, ThresholdRule
from schoolops.wire import (
    CheckStatus,
    CommandCheck,
    Cpu,
    CpuTimes,
    FileFreshness,
    Filesystem,
    Load,
    LogLine,
    LogWatch,
    Memory,
    Port,
    ProbeError,
    Report,
    Temperature,
    Tier,
    WatchedProcess,
)

REPO = Path(__file__).resolve().parents[2]
WEB = AssetContext(name="web-01", site="north", role="web", tier=Tier.IMPORTANT)
GB = 1_000_000_000


def fs(mountpoint: str, used_percent: float, *, size: int = 100 * GB, avail: int | None = None) -> Filesystem:
    avail = int(size * (100 - used_percent) / 100) if avail is None else avail
    return Filesystem(device="/dev/sda1", mountpoint=mountpoint, fstype="ext4", size=size, free=avail,
                      avail=avail, files=1000, files_free=500)


def report(at: float = 1000.0, *, seq: int = 1, interval: float = 15.0, **sections: object) -> Report:
    return Report(schema=1, asset="web-01", stream="0123456789abcdef", seq=seq, collected_at=at, interval=interval,
                  agent_version="test", **sections)  # type: ignore[arg-type]


def rules_from(tmp_path: Path, text: str, asset: AssetContext = WEB) -> list[Rule]:
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    return load_rules(tmp_path).rules_for(asset)


@cache
def shipped() -> RuleSet:
    return load_rules(REPO / "alerts")


@dataclass
class Asset:
    """Drives evaluate_asset the way the collector does: keeps the state, passes ``now``."""

    rules: list[Rule]
    asset: AssetContext = WEB
    state: AssetRuleState = field(default_factory=AssetRuleState)
    last: Report | None = None
    received_at: float | None = None

    def receive(self, report: Report, now: float) -> list[Finding]:
        self.last, self.received_at = report, now
        return self.tick(now)

    def tick(self, now: float) -> list[Finding]:
        self.state, findings = evaluate_asset(self.rules, self.asset, self.last, self.received_at, self.state, now)
        return findings


FS_RULE = """\
rules:
  - id: filesystem_usage
    kind: threshold
    type: capacity
    metric: filesystem.used_percent
    levels: {P4: 80, P3: 90, P2: 95}
    recovery: 75
    summary: "filesystem {key} on {asset} is {value:.0f}% full ({severity} at {level:.0f}%)"
"""


def test_measurements_follow_the_documented_formulas() -> None:
    got = measurements(report(
        filesystems=[fs("/", 50.0, size=1000, avail=250), fs("/proc", 0, size=0, avail=0)],
        memory=Memory(total=1000, available=250, used=700, free=100),
        cpu=Cpu(percent=12.5, cores=[CpuTimes(1, 0, 1, 10, 0, 0, 0, 0)] * 4),
        load=Load(load1=1.0, load5=6.0, load15=2.0),
        ports=[Port(name="web", port=80, listening=True), Port(name="web", port=443, listening=False)],
        temperatures=[Temperature(chip="coretemp", sensor="Core 0", celsius=50.0),
                      Temperature(chip="coretemp", sensor="Core 0", celsius=70.0)],
        logs=[LogWatch(name="auth", path="/var/log/auth.log", matches_total=40,
                       lines=[LogLine(pattern="Failed", line="Failed password")] * 3, suppressed=7)],
        errors=[ProbeError(probe="temperatures", message="no sensors")],
    ))
    assert got["filesystem.used_percent"] == [("/", 75.0)]  # like df: (size - avail) / size; size 0 skipped
    assert got["filesystem.inodes_used_percent"] == [("/", 50.0), ("/proc", 50.0)]
    assert got["filesystem.avail_bytes"] == [("/", 250.0), ("/proc", 0.0)]
    assert got["memory.used_percent"] == [("", 75.0)]
    assert got["swap.used_percent"] == [("", 0.0)]  # no swap
    assert got["load.per_core"] == [("", 1.5)]
    assert got["cpu.percent"] == [("", 12.5)]
    assert got["port.listening"] == [("web", 0.0)]  # any closed port of that name
    assert got["temperature.celsius"] == [("coretemp/Core 0", 70.0)]  # the hottest
    assert got["log.matched_lines"] == [("auth", 10.0)]
    assert got["agent.probe_errors"] == [("", 1.0)]
    assert "process.running" not in got  # no section, no measurement


# --- threshold ----------------------------------------------------------------------------------


def test_the_most_severe_level_reached_wins(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, FS_RULE))
    [finding] = web.receive(report(filesystems=[fs("/var", 92.0)]), now=1000.0)
    assert (finding.rule, finding.key, finding.severity, finding.since) == ("filesystem_usage", "/var", Severity.P3, 1000.0)
    assert finding.value is not None and round(finding.value) == 92
    assert finding.summary == "filesystem /var on web-01 is 92% full (P3 at 90%)"
    [finding] = web.receive(report(1015.0, seq=2, filesystems=[fs("/var", 96.0)]), now=1015.0)
    assert (finding.severity, finding.since) == (Severity.P2, 1000.0)  # same condition, still since 1000


def test_a_firing_threshold_holds_at_the_least_level_until_below_recovery(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, FS_RULE))
    assert [f.severity for f in web.receive(report(filesystems=[fs("/var", 92.0)]), now=1000.0)] == [Severity.P3]
    assert [f.severity for f in web.receive(report(1015.0, seq=2, filesystems=[fs("/var", 78.0)]), now=1015.0)] == [Severity.P4]
    [held] = web.receive(report(1030.0, seq=3, filesystems=[fs("/var", 76.0)]), now=1030.0)
    assert held.summary.endswith("(P4 at 80%)") and held.since == 1000.0
    assert web.receive(report(1045.0, seq=4, filesystems=[fs("/var", 74.0)]), now=1045.0) == []
    # not firing before: 78% is below every level, so nothing fires
    assert web.receive(report(1060.0, seq=5, filesystems=[fs("/var", 78.0)]), now=1060.0) == []


def test_below_direction_fires_at_or_under_the_level(tmp_path: Path) -> None:
    text = FS_RULE.replace("filesystem.used_percent", "filesystem.avail_bytes").replace(
        "{P4: 80, P3: 90, P2: 95}", "{P4: 10000000000, P3: 1000000000}\n    direction: below").replace("recovery: 75", "recovery: 20000000000")
    web = Asset(rules_from(tmp_path, text))
    [finding] = web.receive(report(filesystems=[fs("/", 0, avail=5 * GB)]), now=1000.0)
    assert finding.severity is Severity.P4
    assert web.receive(report(1015.0, seq=2, filesystems=[fs("/", 0, avail=15 * GB)]), now=1015.0) != []  # hysteresis
    assert web.receive(report(1030.0, seq=3, filesystems=[fs("/", 0, avail=25 * GB)]), now=1030.0) == []


def test_a_for_delay_returns_the_finding_only_after_the_duration_with_since_at_the_start(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, FS_RULE + "    for: 2m\n"))
    assert web.receive(report(filesystems=[fs("/var", 92.0)]), now=1000.0) == []
    assert web.tick(now=1060.0) == []
    assert web.receive(report(1110.0, seq=2, filesystems=[fs("/var", 93.0)]), now=1110.0) == []
    [finding] = web.tick(now=1120.0)
    assert finding.since == 1000.0
    # the condition broke: the delay starts over
    assert web.receive(report(1135.0, seq=3, filesystems=[fs("/var", 10.0)]), now=1135.0) == []
    assert web.receive(report(1150.0, seq=4, filesystems=[fs("/var", 92.0)]), now=1150.0) == []
    assert web.tick(now=1269.0) == []
    assert [f.since for f in web.tick(now=1270.0)] == [1150.0]


def test_a_disappearing_mountpoint_clears_its_finding(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, FS_RULE))
    assert {f.key for f in web.receive(report(filesystems=[fs("/", 50), fs("/mnt/usb", 99)]), now=1000.0)} == {"/mnt/usb"}
    assert web.receive(report(1015.0, seq=2, filesystems=[fs("/", 50)]), now=1015.0) == []
    assert web.state.pending == {} and web.state.firing == frozenset()


# --- absence ------------------------------------------------------------------------------------


def test_absence_fires_after_three_intervals_alone_and_clears_on_the_next_report() -> None:
    web = Asset(shipped().rules_for(WEB))
    [disk] = web.receive(report(filesystems=[fs("/var", 92.0)]), now=1000.0)
    assert web.tick(now=1045.0) == [disk]  # 3 × 15 s: not yet
    [silent] = web.tick(now=1046.0)
    assert (silent.rule, silent.key, silent.severity, silent.value, silent.since) == ("asset_silent", "", Severity.P2, 46.0, 1000.0)
    assert silent.summary == "no report from web-01 for 46 s"
    # the asset is back: silence clears, the disk finding returns with its first `since`
    assert web.receive(report(1100.0, seq=2, filesystems=[fs("/var", 92.0)]), now=1100.0) == [disk]


def test_an_asset_that_never_reported_has_no_findings() -> None:
    assert evaluate_asset(shipped().rules_for(WEB), WEB, None, None, AssetRuleState(), now=5000.0) == (AssetRuleState(), [])


def test_absence_uses_the_interval_of_the_last_report(tmp_path: Path) -> None:
    web = Asset(shipped().rules_for(WEB))
    web.receive(report(interval=60.0), now=1000.0)
    assert web.tick(now=1180.0) == []
    assert [f.rule for f in web.tick(now=1181.0)] == ["asset_silent"]


# --- rate ---------------------------------------------------------------------------------------


RATE_RULE = """\
rules:
  - id: filesystem_fill_rate
    kind: rate
    type: capacity
    metric: filesystem.avail_bytes
    severity: P3
    predict: 4h
    target: 0
    window: 30m
    min_samples: 4
    summary: "filesystem {key} will be full in about {value:.0f} s"
"""


def test_a_steadily_filling_disk_is_predicted_full(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, RATE_RULE))
    findings: list[Finding] = []
    for i in range(6):  # 500 MB less every 5 minutes, from 10 GB
        at = 1000.0 + 300 * i
        findings = web.receive(report(at, seq=i + 1, filesystems=[fs("/srv", 0, avail=10 * GB - i * 500_000_000)]), now=at)
        if i < 3:
            assert findings == []  # fewer than min_samples
    [finding] = findings
    assert finding.severity is Severity.P3 and finding.key == "/srv"
    assert finding.value == pytest.approx(7.5 * GB / (500_000_000 / 300))  # 7.5 GB left at 5/3 MB/s: 75 minutes
    assert finding.summary == "filesystem /srv will be full in about 4500 s"
    assert len(web.state.samples["filesystem_fill_rate|web-01|/srv"]) == 6


def test_a_stable_or_slowly_filling_disk_is_not(tmp_path: Path) -> None:
    for step in (0, 1_000_000):  # flat, then 1 MB per 5 minutes (years to fill)
        web = Asset(rules_from(tmp_path, RATE_RULE))
        for i in range(8):
            at = 1000.0 + 300 * i
            assert web.receive(report(at, seq=i + 1, filesystems=[fs("/srv", 0, avail=10 * GB - i * step)]), now=at) == []


def test_ticks_with_the_same_report_add_no_samples(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, RATE_RULE.replace("min_samples: 4", "min_samples: 2")))
    web.receive(report(filesystems=[fs("/srv", 0, avail=10 * GB)]), now=1000.0)
    for now in (1015.0, 1030.0, 1045.0):
        assert web.tick(now) == []
    assert web.state.samples["filesystem_fill_rate|web-01|/srv"] == ((1000.0, 10.0 * GB),)
    web.receive(report(1040.0, seq=2, filesystems=[fs("/srv", 0, avail=9 * GB)]), now=1046.0)
    assert len(web.state.samples["filesystem_fill_rate|web-01|/srv"]) == 2


def test_rate_samples_older_than_the_window_are_dropped(tmp_path: Path) -> None:
    web = Asset(rules_from(tmp_path, RATE_RULE))
    for i in range(10):
        at = 1000.0 + 600 * i
        web.receive(report(at, seq=i + 1, filesystems=[fs("/srv", 0, avail=10 * GB)]), now=at)
    assert [t for t, _ in web.state.samples["filesystem_fill_rate|web-01|/srv"]] == [4600.0, 5200.0, 5800.0, 6400.0]


# --- state --------------------------------------------------------------------------------------


def test_a_stopped_process_fires_after_its_grace_period() -> None:
    web = Asset(shipped().rules_for(WEB))
    nginx = WatchedProcess(name="nginx", running=False, count=0, cpu_seconds=0, rss_bytes=0)
    assert web.receive(report(processes=[nginx]), now=1000.0) == []
    [finding] = web.tick(now=1030.0)
    assert (finding.rule, finding.key, finding.severity, finding.since) == ("process_down", "nginx", Severity.P3, 1000.0)
    assert finding.summary == "process nginx is not running on web-01"
    running = WatchedProcess(name="nginx", running=True, count=4, cpu_seconds=1, rss_bytes=1)
    assert web.receive(report(1015.0, seq=2, processes=[running]), now=1040.0) == []


def test_a_closed_port_fires_after_its_grace_period() -> None:
    web = Asset(shipped().rules_for(WEB))
    web.receive(report(ports=[Port(name="https", port=443, listening=False)]), now=1000.0)
    assert [(f.rule, f.key) for f in web.tick(now=1031.0)] == [("port_closed", "https")]


def test_check_status_maps_each_plugin_status_to_its_severity() -> None:
    rules = shipped().rules_for(WEB)
    commands = [
        CommandCheck(name=f"check_{status.name.lower()}", status=status, output="", duration_seconds=0.1)
        for status in CheckStatus
    ]
    _, findings = evaluate_asset(rules, WEB, report(commands=commands), 1000.0, AssetRuleState(), now=1000.0)
    assert {f.key: f.severity for f in findings if f.rule == "check_status"} == {
        "check_warning": Severity.P4, "check_critical": Severity.P3, "check_unknown": Severity.P4,
    }


def test_matched_log_lines_fire_for_one_interval_and_a_stale_backup_fires() -> None:
    rules = shipped().rules_for(WEB)
    auth = LogWatch(name="auth", path="/var/log/auth.log", matches_total=3, suppressed=2,
                    lines=[LogLine(pattern="Failed password", line="Failed password for root")])
    backup = FileFreshness(name="nightly_backup", path="/backup", max_age_seconds=93600, count=3, fresh=False)
    web = Asset(rules)
    findings = web.receive(report(logs=[auth], files=[backup]), now=1000.0)
    assert {(f.rule, f.key, f.severity, f.value) for f in findings} == {
        ("log_pattern_matched", "auth", Severity.P4, 3.0), ("backup_stale", "nightly_backup", Severity.P3, 0.0),
    }
    quiet = LogWatch(name="auth", path="/var/log/auth.log", matches_total=3)
    assert [f.rule for f in web.receive(report(1015.0, seq=2, logs=[quiet], files=[backup]), now=1015.0)] == ["backup_stale"]


# --- overrides and selection ---------------------------------------------------------------------


OVERRIDES = FS_RULE + """\
  - id: temperature_high
    kind: threshold
    type: hardware
    metric: temperature.celsius
    levels: {P3: 75, P2: 85}
    summary: "{key} is at {value:.0f} C"
  - id: exam_disk_rate
    kind: rate
    type: capacity
    metric: filesystem.avail_bytes
    severity: P3
    predict: 1h
    match: {role: [exam-server], site: [north, south]}
    summary: "{key} fills up"
overrides:
  - match: {role: [exam-server]}
    rule: filesystem_usage
    set: {levels: {P3: 80, P2: 90}, for: 0s}
  - match: {tier: [core]}
    rule: filesystem_usage
    set: {levels: {P2: 70}, recovery: 60}
"""


def test_overrides_by_role_asset_and_tier_later_ones_winning(tmp_path: Path) -> None:
    text = OVERRIDES + (
        "  - match: {asset: [lab-pc-07]}\n    rule: temperature_high\n    set: {enabled: false}\n"
        "  - match: {role: [exam-server], asset: [exam-02]}\n    rule: filesystem_usage\n    set: {levels: {P2: 50}, recovery: 40}\n"
    )
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    rules = load_rules(tmp_path)

    def levels(asset: AssetContext) -> dict[str, float]:
        [rule] = [r for r in rules.rules_for(asset) if r.id == "filesystem_usage"]
        assert isinstance(rule, ThresholdRule)
        return rule.levels

    assert levels(WEB) == {"P4": 80, "P3": 90, "P2": 95}
    assert levels(AssetContext(name="exam-01", role="exam-server")) == {"P3": 80, "P2": 90}
    assert levels(AssetContext(name="exam-02", role="exam-server")) == {"P2": 50}  # later wins
    assert levels(AssetContext(name="db-01", tier=Tier.CORE)) == {"P2": 70}
    assert "temperature_high" not in {r.id for r in rules.rules_for(AssetContext(name="lab-pc-07"))}
    assert "temperature_high" in {r.id for r in rules.rules_for(AssetContext(name="lab-pc-08"))}
    # a rule's own `match`: every key must match, a list is an OR
    assert "exam_disk_rate" in {r.id for r in rules.rules_for(AssetContext(name="e", role="exam-server", site="south"))}
    assert "exam_disk_rate" not in {r.id for r in rules.rules_for(AssetContext(name="e", role="exam-server", site="east"))}
    assert "exam_disk_rate" not in {r.id for r in rules.rules_for(WEB)}

    exam = Asset(rules.rules_for(AssetContext(name="exam-01", role="exam-server")), AssetContext(name="exam-01", role="exam-server"))
    [finding] = exam.receive(report(filesystems=[fs("/var", 85.0)]), now=1000.0)
    assert finding.severity is Severity.P3


def test_an_override_can_enable_a_rule_that_ships_disabled(tmp_path: Path) -> None:
    text = FS_RULE + "    enabled: false\noverrides:\n  - match: {site: [north]}\n    rule: filesystem_usage\n    set: {enabled: true}\n"
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    rules = load_rules(tmp_path)
    assert [r.id for r in rules.rules_for(WEB)] == ["filesystem_usage"]
    assert rules.rules_for(AssetContext(name="x", site="south")) == []


# --- purity -------------------------------------------------------------------------------------


def test_evaluation_leaves_the_previous_state_untouched(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FS_RULE)
    before = AssetRuleState(pending={"filesystem_usage|web-01|/var": 900.0}, firing=frozenset({"filesystem_usage|web-01|/var"}))
    after, findings = evaluate_asset(rules, WEB, report(filesystems=[fs("/var", 78.0)]), 1000.0, before, now=1000.0)
    assert before == AssetRuleState(pending={"filesystem_usage|web-01|/var": 900.0}, firing=frozenset({"filesystem_usage|web-01|/var"}))
    assert [(f.severity, f.since) for f in findings] == [(Severity.P4, 900.0)]
    assert after is not before


reports = st.builds(
    lambda used, running, status, load5, celsius, lines: report(
        filesystems=[fs(f"/d{i}", u) for i, u in enumerate(used)],
        processes=[WatchedProcess(name="nginx", running=running, count=1, cpu_seconds=0, rss_bytes=0)],
        commands=[CommandCheck(name="check_raid", status=status, output="", duration_seconds=0.1)],
        cpu=Cpu(percent=10.0, cores=[CpuTimes(1, 0, 1, 10, 0, 0, 0, 0)] * 2),
        load=Load(load1=load5, load5=load5, load15=load5),
        temperatures=[Temperature(chip="acpitz", sensor="temp1", celsius=celsius)],
        logs=[LogWatch(name="auth", path="/var/log/auth.log", matches_total=lines, suppressed=lines)],
    ),
    st.lists(st.floats(0, 100), max_size=3), st.booleans(), st.sampled_from(CheckStatus),
    st.floats(0, 20), st.floats(-20, 120), st.integers(0, 50),
)


@settings(max_examples=75, deadline=None)
@given(steps=st.lists(st.tuples(reports, st.floats(0, 400), st.booleans()), min_size=1, max_size=6))
def test_evaluation_is_a_function_of_its_inputs(steps: list[tuple[Report, float, bool]]) -> None:
    """The same rules, reports and times give the same findings and states, whatever the wall clock."""

    def run() -> list[tuple[float, AssetRuleState, list[Finding]]]:
        state, now, last, received = AssetRuleState(), 1000.0, None, None
        out: list[tuple[float, AssetRuleState, list[Finding]]] = []
        for i, (sample, wait, arrives) in enumerate(steps):
            now += wait
            if arrives:
                last = Report(**{**{f: getattr(sample, f) for f in sample.__struct_fields__}, "seq": i + 1, "collected_at": now})
                received = now
            state, findings = evaluate_asset(shipped().rules_for(WEB), WEB, last, received, state, now)
            out.append((now, state, findings))
        return out

    first, second = run(), run()
    assert first == second
    for now, state, findings in first:
        assert len({f.fingerprint for f in findings}) == len(findings)
        assert all(f.since <= now for f in findings)
        assert {f.fingerprint for f in findings if f.rule != "asset_silent"} <= set(state.pending)
