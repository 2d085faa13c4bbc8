"""Patrol checklists: the shipped one loads, every mistake is refused naming file, line, section,
item and key, selectors pick assets, and the judge says normal / abnormal / not checked with evidence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector.domain import AssetContext, FaultType, Severity
from collector.patrol.judge import (
    EVIDENCE_LIMIT,
    Finding,
    judge,
    judge_output,
    judge_value,
    standard_text,
)
from collector.patrol.loader import load_checklists
from collector.patrol.model import (
    CliMethod,
    HttpMethod,
    Item,
    ManualMethod,
    MetricMethod,
    Selector,
    SnmpGetMethod,
    SshMethod,
    asset_facts,
    text_for,
)
from collector.rules.measure import METRICS
from collector.runbooks.loader import load_runbooks
from schoolops import ConfigError
from schoolops.wire import Tier

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: daily
title: {en: Daily patrol, zh-CN: 日常巡检}
sections:
  - id: network
    title: Network
    items:
      - id: reachable
        check: Reachable
        standard: Reachable
        method: {kind: metric, metric: device.reachable, equals: 1}
        applies_to: {kind: [network]}
        on_abnormal: {type: network, severity: P2}
  - id: servers
    title: Servers
    items:
      - id: ups
        check: UPS
        standard: Green
        method: {kind: manual}
      - id: disk
        check: Disk
        standard: At most 85
        method:
          kind: metric
          metric: filesystem.used_percent
          max: 85
        applies_to: {kind: [server]}
        on_abnormal: {type: capacity, severity: P3, runbook: free-disk-space}
"""
# lines of GOOD: 13 sections[1] (id servers), 17 its items[0] (id ups), 19 its method,
# 20 items[1] (id disk), 23 its method, 24 method.kind, 25 method.metric, 28 its on_abnormal

UPS = "sections[1] (id servers).items[0] (id ups)"
DISK = "sections[1] (id servers).items[1] (id disk)"


def write(folder: Path, text: str, name: str = "daily.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(folder: Path, runbooks: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_checklists(folder, runbooks)
    return str(info.value)


def metric_item(**method: object) -> Item:
    return Item(id="x", check="x", standard="x", method=MetricMethod(**method),  # type: ignore[arg-type]
                applies_to=Selector(), on_abnormal=None)


# --- the shipped checklist ----------------------------------------------------------------------


def test_the_shipped_daily_checklist_loads_with_its_sections_and_names_only_shipped_runbooks() -> None:
    runbooks = load_runbooks(REPO / "runbooks")
    checklists = load_checklists(REPO / "runbooks" / "patrol", runbooks=set(runbooks))

    daily = checklists["daily"]
    assert daily.schedule == "0 8 * * *" and daily.timezone == "Asia/Shanghai"
    assert [s.id for s in daily.sections] == [
        "server-room", "power", "network", "servers", "backups", "services", "security", "certificates"]
    counts = {s.id: len(s.items) for s in daily.sections}
    assert counts == {"server-room": 3, "power": 2, "network": 3, "servers": 4, "backups": 1, "services": 2,
                      "security": 2, "certificates": 1}
    for section, item in daily.items():
        for text in (section.title, item.check, item.standard):
            assert isinstance(text, dict) and text["en"] and text["zh-CN"], (section.id, item.id)
        if item.automated:
            assert item.applies_to is not None and item.on_abnormal is not None, item.id
        assert isinstance(item.method, (MetricMethod, ManualMethod)), item.id
    found = daily.item("disk-usage")
    assert found is not None and found[0].id == "servers"
    disk = found[1]
    assert disk.method == MetricMethod(metric="filesystem.used_percent", max=85)
    assert disk.on_abnormal is not None and disk.on_abnormal.type is FaultType.CAPACITY
    assert disk.on_abnormal.level is Severity.P3 and disk.on_abnormal.runbook == "free-disk-space"
    _, reachable = daily.item("device-reachable") or (None, None)
    assert reachable is not None and reachable.on_abnormal is not None and reachable.on_abnormal.level is Severity.P2
    _, logins = daily.item("failed-logins") or (None, None)
    assert logins is not None and isinstance(logins.method, MetricMethod) and logins.method.key == "ssh-auth"
    assert {i.method.metric for _, i in daily.items() if isinstance(i.method, MetricMethod)} <= set(METRICS)


def test_the_runbook_loader_leaves_the_patrol_folder_alone() -> None:
    assert "daily" not in load_runbooks(REPO / "runbooks")


def test_a_good_file_loads_and_the_defaults_apply(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path / "old", GOOD.replace("name: daily", "name: other"))  # subfolders are not read

    checklists = load_checklists(tmp_path, runbooks=["free-disk-space"])

    assert list(checklists) == ["daily"]
    daily = checklists["daily"]
    assert daily.schedule == "0 8 * * *" and daily.timezone == "Asia/Shanghai"
    assert daily.source == str(tmp_path / "daily.yaml")
    assert [i.id for _, i in daily.items()] == ["reachable", "ups", "disk"]
    _, ups = daily.item("ups") or (None, None)
    assert ups is not None and not ups.automated and ups.applies_to is None and ups.on_abnormal is None
    assert text_for(daily.title, "zh-TW") == "日常巡检"  # no zh-TW text: the other Chinese before English


def test_the_next_scheduled_run_is_computed_in_the_checklists_time_zone(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("sections:", "schedule: '30 7 * * 1-5'\nsections:"))
    daily = load_checklists(tmp_path)["daily"]
    friday_noon = datetime(2024, 9, 6, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()

    assert daily.next_run(friday_noon) == datetime(2024, 9, 9, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


# --- mistakes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("kind: metric\n          metric", "kind: metrik\n          metric",
     f":24: {DISK}: method.kind: unknown method kind 'metrik': use one of metric, snmp_get, cli, ssh, http, manual"),
    ("method: {kind: manual}", "method: {}", f":19: {UPS}: method.kind: say how the item is checked"),
    ("metric: filesystem.used_percent", "metric: filesystem.usage",
     (f":25: {DISK}: method.metric: unknown measurement 'filesystem.usage': did you mean 'filesystem.used_percent'? "
      "known: filesystem.used_percent, filesystem.inodes_used_percent")),
    ("          max: 85\n", "", f":23: {DISK}: method: give the standard: at least one of min, max or equals"),
    ("          max: 85\n", "          max: 85\n          equals: 3\n", f":27: {DISK}: method.equals: give equals alone"),
    ("          max: 85\n", "          max: 85\n          min: 90\n", f":27: {DISK}: method.min: 90 is above max (85)"),
    ("method: {kind: manual}", "method: {kind: cli, command: show version, expect: '(unclosed'}",
     f":19: {UPS}: method.expect: '(unclosed' is not a regular expression"),
    ("method: {kind: manual}", "method: {kind: ssh, argv: [uptime], reject: '[z-a]'}",
     f":19: {UPS}: method.reject: '[z-a]' is not a regular expression"),
    ("method: {kind: manual}", "method: {kind: ssh, argv: ['systemctl status nginx']}",
     f":19: {UPS}: method.argv: commands are argument lists, never shell strings"),
    ("method: {kind: manual}", "method: {kind: cli, command: reload, expect: x}",
     f":19: {UPS}: method.command: a patrol only looks: use a show or display command, not 'reload'"),
    ("method: {kind: manual}", "method: {kind: snmp_get, oid: sysUpTime, max: 3}",
     f":19: {UPS}: method.oid: 'sysUpTime' is not a numeric OID"),
    ("method: {kind: manual}", "method: {kind: snmp_get, oid: 1.3.6.1.2.1.1.3.0}",
     f":19: {UPS}: method: give the standard: at least one of min, max or equals (or expect, a text)"),
    ("method: {kind: manual}", "method: {kind: http, url: 'ftp://x'}", f":19: {UPS}: method.url:"),
    ("      - id: disk", "      - id: reachable",
     (":20: sections[1] (id servers).items[1] (id reachable): id: item id 'reachable' repeated: "
      "already sections[0] (id network).items[0] (id reachable)")),
    ("  - id: servers", "  - id: network", ":13: sections[1] (id network): id: section id 'network' repeated"),
    ("        applies_to: {kind: [server]}\n", "",
     f":20: {DISK}: applies_to: a metric item needs applies_to: which assets it checks"),
    ("        on_abnormal: {type: capacity, severity: P3, runbook: free-disk-space}\n", "",
     f":20: {DISK}: on_abnormal: a metric item needs on_abnormal"),
    ("severity: P3", "severity: P5", f":28: {DISK}: on_abnormal.severity: Invalid enum value 'P5'"),
    ("type: capacity", "type: disk", f":28: {DISK}: on_abnormal.type: Invalid enum value 'disk'"),
    ("runbook: free-disk-space", "runbook: free-disk",
     f":28: {DISK}: on_abnormal.runbook: no runbook named 'free-disk'; known: free-disk-space"),
    ("applies_to: {kind: [server]}", "applies_to: {kind: [pc]}", f":27: {DISK}: applies_to.kind[0]: Invalid enum"),
    ("        check: Disk\n", "        check: Disk\n        owner: me\n",
     f":22: {DISK}: owner: Object contains unknown field `owner`"),
    ("        check: UPS", "        check: {zh-CN: 不间断电源}", f":17: {UPS}: check: by language, with keys en, zh-CN"),
    ("        check: UPS", "        check: {en: UPS, lamps, zh-CN: x}",
     f":17: {UPS}: check[...]: Expected `str`, got `null` (in {{en: ..., zh-CN: ...}} a comma starts a new key"),
    ("    title: Servers", "    title: {en: Servers, fr: Serveurs}",
     ":14: sections[1] (id servers): title: by language, with keys en, zh-CN, zh-TW and at least en (unknown: fr)"),
    ("sections:\n", "schedule: '0 25 * * *'\nsections:\n",
     ":3: schedule: '0 25 * * *' is not a cron expression: write minute hour day-of-month month day-of-week"),
    ("sections:\n", "schedule: '0 0 30 2 *'\nsections:\n", ":3: schedule: '0 0 30 2 *' never happens"),
    ("sections:\n", "timezone: Mars/Base\nsections:\n", ":3: timezone: unknown time zone 'Mars/Base'"),
])
def test_each_mistake_is_refused_naming_the_line_section_item_and_key(
        tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))

    assert load_error(tmp_path, ["free-disk-space"]).startswith(f"{path}{expected}")


def test_runbook_names_are_not_checked_without_a_list_of_runbooks(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("runbook: free-disk-space", "runbook: not-written-yet"))

    assert "daily" in load_checklists(tmp_path)
    assert "on_abnormal.runbook: no runbook named 'not-written-yet'; known: (none)" in load_error(tmp_path, [])


def test_a_checklist_name_is_used_once_across_files_and_nothing_is_kept(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "a.yaml")
    second = write(tmp_path, GOOD, "b.yaml")

    assert load_error(tmp_path) == f"{second}:1: name: duplicate checklist name 'daily': already defined in {first}"
    assert load_error(tmp_path / "missing").endswith("missing: not a folder of patrol checklists")


# --- selectors ----------------------------------------------------------------------------------


def test_a_selector_matches_when_every_given_key_matches_and_any_listed_value_does() -> None:
    web = asset_facts(AssetContext(name="web-01", kind="server", site="north", role="web", tier=Tier.CORE,
                                   labels={"rack": "a1", "os": "debian"}))
    switch = {"name": "sw-1", "kind": "network", "site": "south", "role": "access", "tier": "normal"}

    assert Selector().matches(web) and Selector().matches(switch)
    assert Selector(kind=("server", "service")).matches(web) and not Selector(kind=("server",)).matches(switch)
    assert Selector(kind=("server",), site=("north", "east"), tier=(Tier.CORE,)).matches(web)
    assert not Selector(kind=("server",), site=("south",)).matches(web)
    assert Selector(role=("access",), tier=(Tier.NORMAL,)).matches(switch)
    assert Selector(labels={"rack": "a1", "os": "debian"}).matches(web)
    assert not Selector(labels={"rack": "a1", "os": "windows"}).matches(web)
    assert not Selector(labels={"rack": "a1"}).matches(switch)  # no such label
    assert Selector(names=("sw-1", "sw-2")).matches(switch) and not Selector(names=("sw-2",)).matches(switch)


# --- the judge ----------------------------------------------------------------------------------


def test_a_maximum_is_normal_below_and_at_the_limit_and_abnormal_above_it() -> None:
    item = metric_item(metric="filesystem.used_percent", max=85)

    found = judge(item, [("/", 40.0), ("/srv", 85.0), ("/var", 91.234)])

    assert found == [
        Finding("/", 40.0, "normal", "/: 40 % (standard: at most 85)"),
        Finding("/srv", 85.0, "normal", "/srv: 85 % (standard: at most 85)"),
        Finding("/var", 91.234, "abnormal", "/var: 91.2 % (standard: at most 85)"),
    ]


def test_a_minimum_a_range_and_equals() -> None:
    tls = metric_item(metric="tls.days_left", min=14)
    assert [f.status for f in judge(tls, [("www", 13.5), ("mail", 14.0), ("moodle", 200.0)])] == [
        "abnormal", "normal", "normal"]
    assert judge(tls, [("www", 13.5)])[0].evidence == "www: 13.5 days (standard: at least 14)"

    room = metric_item(metric="temperature.celsius", min=10, max=27)
    assert [f.status for f in judge(room, [("a", 9.9), ("b", 10.0), ("c", 27.0), ("d", 27.1)])] == [
        "abnormal", "normal", "normal", "abnormal"]
    assert judge(room, [("ups/probe", 27.1)])[0].evidence == "ups/probe: 27.1 °C (standard: between 10 and 27)"

    running = metric_item(metric="process.running", equals=1)
    found = judge(running, [("nginx", 1.0), ("mysqld", 0.0)])
    assert [(f.key, f.status) for f in found] == [("nginx", "normal"), ("mysqld", "abnormal")]
    assert found[1].evidence == "mysqld: 0 (standard: equal to 1)"
    memory = judge(metric_item(metric="memory.used_percent", max=90), [("", 93.0)])
    assert memory == [Finding("", 93.0, "abnormal", "93 % (standard: at most 90)")]


def test_a_missing_section_or_key_is_not_checked_with_the_reason() -> None:
    item = metric_item(metric="file.fresh", equals=1)
    assert judge(item, None) == [Finding("", None, "not_checked", reason="the asset's report has no file.fresh")]
    assert judge(item, [])[0].status == "not_checked"

    logins = metric_item(metric="log.matched_lines", key="ssh-auth", max=20)
    assert judge(logins, [("nginx-errors", 300.0)]) == [Finding(
        "ssh-auth", None, "not_checked", reason="the asset's report has no log.matched_lines for 'ssh-auth'")]
    assert judge(logins, None)[0].key == "ssh-auth"
    assert judge(logins, [("nginx-errors", 300.0), ("ssh-auth", 21.0)]) == [
        Finding("ssh-auth", 21.0, "abnormal", "ssh-auth: 21 (standard: at most 20)")]
    assert judge(item, [("nightly", float("nan"))])[0].status == "not_checked"
    with pytest.raises(TypeError):
        judge(Item(id="ups", check="UPS", standard="green", method=ManualMethod()), None)


def test_snmp_and_http_values() -> None:
    battery = SnmpGetMethod(oid="1.3.6.1.2.1.33.1.2.4.0", min=50)
    assert judge_value(battery, 100).status == "normal"
    low = judge_value(battery, "42")
    assert (low.status, low.value, low.evidence) == ("abnormal", 42.0, "1.3.6.1.2.1.33.1.2.4.0: 42 (standard: at least 50)")
    assert judge_value(battery, "n/a").status == "not_checked"
    unread = judge_value(battery, None, error="timeout")
    assert (unread.status, unread.reason) == ("not_checked", "no value was read: timeout")
    on_mains = SnmpGetMethod(oid="1.3.6.1.2.1.33.1.4.1.0", expect="3")
    assert judge_value(on_mains, 3.0).status == "normal" and judge_value(on_mains, "5").status == "abnormal"
    assert standard_text(on_mains) == "equal to '3'"

    page = HttpMethod(url="https://www.school.example/", body_contains="Welcome")
    assert judge_value(page, 200, body="<h1>Welcome</h1>") == Finding("", 200.0, "normal", "HTTP 200, contains 'Welcome'")
    assert judge_value(page, 503, body="busy") == Finding("", 503.0, "abnormal", "HTTP 503 (standard: 200)")
    assert judge_value(page, 200, body="It works").evidence == "HTTP 200, but the page does not contain 'Welcome'"
    down = judge_value(page, None, error="connection refused")
    assert (down.status, down.evidence) == ("abnormal", "no answer: connection refused")


def test_command_output_is_judged_by_exit_status_and_expressions_and_the_evidence_is_short() -> None:
    active = SshMethod(argv=("systemctl", "is-active", "nginx"), expect="^active$")
    assert judge_output(active, 0, "active\n") == Finding("", 0.0, "normal", "matched '^active$': active")
    assert judge_output(active, 3, "inactive\n") == Finding("", 3.0, "abnormal", "exit 3: inactive")
    assert judge_output(active, 0, "activating\n").status == "abnormal"
    assert judge_output(active, None, "").evidence == "the program did not finish"
    plain = SshMethod(argv=("/usr/lib/nagios/plugins/check_raid",))
    assert judge_output(plain, 0, "OK: 2 arrays\n").evidence == "exit 0: OK: 2 arrays"

    errdisabled = CliMethod(command="show interfaces status", expect="connected", reject="err-disabled")
    output = "Gi1/0/1 connected 1\nGi1/0/2 err-disabled 1\nGi1/0/3 connected 1\n"
    assert judge_output(errdisabled, None, output) == Finding(
        "", None, "abnormal", "found 'err-disabled': Gi1/0/2 err-disabled 1")
    long = "x" * 5000 + "\nfatal: disk missing"
    failed = judge_output(plain, 2, long)
    assert failed.status == "abnormal" and len(failed.evidence) <= EVIDENCE_LIMIT
    assert failed.evidence.startswith("exit 2: …") and failed.evidence.endswith("fatal: disk missing")
    nomatch = judge_output(errdisabled, None, "y" * 5000)
    assert len(nomatch.evidence) <= EVIDENCE_LIMIT and nomatch.evidence.startswith("no match for 'connected': …")
