"""The on-call file: validation that names the file, line and key; the rotation, overrides and shifts."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.notify.model import Language
from collector.notify.oncall import (
    OnCallConfig,
    Role,
    directors,
    load_oncall,
    on_call_at,
    parse_oncall,
    people_with_role,
    person,
    shifts,
)
from schoolops import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = "Asia/Shanghai"

BASE = """\
timezone: Asia/Shanghai
people:
  - id: wang.wei
    name: 王偉
    language: zh-TW
    roles: [on-call, operator]
    contacts:
      - {channel: wecom-ops, address: "13800000001"}
      - {channel: email, address: wang.wei@school.example}
  - id: li.na
    name: 李娜
    language: zh-CN
    roles: [on-call]
    contacts:
      - {channel: email, address: li.na@school.example}
  - id: zhao.lei
    name: Zhao Lei
    language: en
    roles: [on-call, operator]
    contacts:
      - {channel: email, address: zhao.lei@school.example}
  - id: chen.jing
    name: 陈静
    language: zh-CN
    roles: [director]
    contacts:
      - {channel: email, address: chen.jing@school.example}
channels:
  - {kind: email, id: email, host: smtp.school.example, sender: ops@school.example, username: ops, password_secret: smtp}
  - {kind: wecom, id: wecom-ops, url_secret: wecom.ops}
schedule:
  handover: {day: mon, time: "09:00"}
  start: 2026-09-07
  rotation:
    - {primary: wang.wei, backup: li.na}
    - {primary: li.na, backup: zhao.lei}
  overrides:
    - {start: "2026-10-01 09:00", end: "2026-10-08 09:00", primary: zhao.lei, backup: wang.wei, reason: National Day duty}
"""


def config(text: str = BASE) -> OnCallConfig:
    return parse_oncall(text, source="oncall.yaml")


def at(local: str, tz: str = SHANGHAI) -> float:
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp()


def local(ts: float, tz: str = SHANGHAI) -> str:
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


# --- the rotation and overrides ----------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "primary", "backup", "source"), [
    ("2026-09-07 08:59", "li.na", "zhao.lei", "rotation week 2"),  # the week before start: the rotation cycles back
    ("2026-09-07 09:00", "wang.wei", "li.na", "rotation week 1"),  # the handover itself belongs to the new week
    ("2026-09-13 23:59", "wang.wei", "li.na", "rotation week 1"),
    ("2026-09-14 08:59", "wang.wei", "li.na", "rotation week 1"),
    ("2026-09-14 09:00", "li.na", "zhao.lei", "rotation week 2"),
    ("2026-09-21 09:00", "wang.wei", "li.na", "rotation week 1"),
    ("2026-10-01 08:59", "li.na", "zhao.lei", "rotation week 2"),  # week of 09-28, just before the override
    ("2026-10-01 09:00", "zhao.lei", "wang.wei", "override: National Day duty"),
    ("2026-10-05 09:00", "zhao.lei", "wang.wei", "override: National Day duty"),  # a handover inside the override
    ("2026-10-08 08:59", "zhao.lei", "wang.wei", "override: National Day duty"),
    ("2026-10-08 09:00", "wang.wei", "li.na", "rotation week 1"),  # the override's end is exclusive
    ("2027-01-04 09:00", "li.na", "zhao.lei", "rotation week 2"),  # 17 weeks on
])
def test_on_call_at_follows_the_rotation_and_overrides(moment: str, primary: str, backup: str, source: str) -> None:
    duty = on_call_at(config(), at(moment))
    assert (duty.primary.id, duty.backup.id, duty.source) == (primary, backup, source)


def test_start_may_be_any_date_in_the_first_week() -> None:
    wednesday = config(BASE.replace("start: 2026-09-07", "start: 2026-09-09"))
    sunday = config(BASE.replace("start: 2026-09-07", "start: 2026-09-13"))
    for cfg in (wednesday, sunday):
        assert on_call_at(cfg, at("2026-09-07 09:00")).source == "rotation week 1"
        assert on_call_at(cfg, at("2026-09-14 09:00")).source == "rotation week 2"


@pytest.mark.parametrize(("tz", "moment_utc", "source"), [
    # 01:30 UTC on Monday 2026-09-07 is 09:30 in Shanghai (after the handover) but 02:30 in London (before it)
    ("Asia/Shanghai", "2026-09-07 01:30", "rotation week 1"),
    ("Europe/London", "2026-09-07 01:30", "rotation week 2"),
    ("Europe/London", "2026-09-07 08:00", "rotation week 1"),  # 09:00 BST
])
def test_the_handover_is_in_the_configured_timezone(tz: str, moment_utc: str, source: str) -> None:
    cfg = config(BASE.replace("timezone: Asia/Shanghai", f"timezone: {tz}"))
    assert on_call_at(cfg, at(moment_utc, "UTC")).source == source


@pytest.mark.parametrize(("moment", "source"), [
    ("2026-09-04 17:29", "rotation week 2"),
    ("2026-09-04 17:30", "rotation week 1"),  # the Friday on or before start (Wednesday 09-09)
    ("2026-09-09 12:00", "rotation week 1"),
    ("2026-09-11 17:29", "rotation week 1"),
    ("2026-09-11 17:30", "rotation week 2"),
])
def test_a_handover_on_another_day_and_time(moment: str, source: str) -> None:
    cfg = config(BASE.replace('handover: {day: mon, time: "09:00"}', 'handover: {day: friday, time: "17:30"}')
                 .replace("start: 2026-09-07", "start: 2026-09-09"))
    assert on_call_at(cfg, at(moment)).source == source


def test_shifts_for_a_week_containing_an_override() -> None:
    found = shifts(config(), at("2026-10-06 00:00"), 7)
    assert [(local(s.start), local(s.end), s.primary.id, s.backup.id, s.source) for s in found] == [
        ("2026-10-01 09:00", "2026-10-08 09:00", "zhao.lei", "wang.wei", "override: National Day duty"),
        ("2026-10-08 09:00", "2026-10-12 09:00", "wang.wei", "li.na", "rotation week 1"),  # cut short at its start
        ("2026-10-12 09:00", "2026-10-19 09:00", "li.na", "zhao.lei", "rotation week 2"),
    ]


def test_shifts_before_an_override_end_where_it_begins() -> None:
    found = shifts(config(), at("2026-09-28 12:00"), 7)
    assert [(local(s.start), local(s.end), s.source) for s in found] == [
        ("2026-09-28 09:00", "2026-10-01 09:00", "rotation week 2"),
        ("2026-10-01 09:00", "2026-10-08 09:00", "override: National Day duty"),
    ]


def test_shifts_across_a_daylight_saving_change_keep_the_local_handover() -> None:
    cfg = config(BASE.replace("timezone: Asia/Shanghai", "timezone: Europe/Berlin").replace("  overrides:\n", "  overrides: []\n")
                 .replace('    - {start: "2026-10-01 09:00", end: "2026-10-08 09:00", primary: zhao.lei, backup: wang.wei, reason: National Day duty}\n', ""))
    found = shifts(cfg, at("2026-10-20 12:00", "Europe/Berlin"), 7)  # summer time ends on 2026-10-25
    assert [local(s.start, "Europe/Berlin") for s in found] == ["2026-10-19 09:00", "2026-10-26 09:00"]
    assert found[0].end - found[0].start == 7 * 86400 + 3600


@settings(max_examples=200, deadline=None)
@given(start=st.floats(min_value=at("2026-06-01 00:00"), max_value=at("2027-06-01 00:00")), days=st.integers(1, 21))
def test_shifts_tile_the_window_and_agree_with_on_call_at(start: float, days: int) -> None:
    cfg = config()
    found = shifts(cfg, start, days)
    assert found[0].start <= start < found[0].end
    for before, after in itertools.pairwise(found):
        assert before.end == after.start
    for shift in found:
        for moment in (shift.start, shift.end - 1):
            duty = on_call_at(cfg, moment)
            assert (duty.primary, duty.backup, duty.source) == (shift.primary, shift.backup, shift.source)


def test_people_lookups() -> None:
    cfg = config()
    assert person(cfg, "li.na").name == "李娜" and person(cfg, "li.na").language is Language.ZH_CN
    with pytest.raises(KeyError):
        person(cfg, "nobody")
    assert [p.id for p in people_with_role(cfg, Role.OPERATOR)] == ["wang.wei", "zhao.lei"]
    assert [p.id for p in people_with_role(cfg, "on-call")] == ["wang.wei", "li.na", "zhao.lei"]
    assert [p.id for p in directors(cfg)] == ["chen.jing"]
    assert cfg.escalation.policies.P2.steps[0].notify == ["primary"]  # defaults when absent


# --- validation: every error names the file, the line and the key ------------------------------------

ESCALATION = """\
escalation:
  policies:
    P2:
      steps:
        - {after: 0s, notify: [primary, TARGET]}  # here
"""

ERRORS = [
    ("duplicate person", [("- id: zhao.lei\n", "- id: li.na  # here\n")], "people[2].id", "listed twice"),
    ("duplicate channel", [("{kind: wecom, id: wecom-ops, url_secret: wecom.ops}", "{kind: wecom, id: email, url_secret: wecom.ops}  # here")],
     "channels[1].id", "defined twice"),
    ("contact on an unknown channel", [('{channel: wecom-ops, address: "13800000001"}', '{channel: sms, address: "1"}  # here')],
     "people[0].contacts[0].channel", "unknown channel 'sms'"),
    ("email contact without an address", [("{channel: email, address: wang.wei@school.example}", "{channel: email}  # here")],
     "people[0].contacts[1].address", "email address"),
    ("no director", [("roles: [director]", "roles: [viewer]"), ("people:\n", "people:  # here\n")], "people", "director"),
    ("director without contact", [("    roles: [director]\n    contacts:\n      - {channel: email, address: chen.jing@school.example}\n",
                                   "    roles: [director]\n"), ("- id: chen.jing", "- id: chen.jing  # here")],
     "people[3].contacts", "no contact"),
    ("rotation names an unknown person", [("{primary: li.na, backup: zhao.lei}", "{primary: li.na, backup: zhou.yu}  # here")],
     "schedule.rotation[1].backup", "unknown person 'zhou.yu'"),
    ("rotation names someone not on call", [("{primary: li.na, backup: zhao.lei}", "{primary: chen.jing, backup: zhao.lei}  # here")],
     "schedule.rotation[1].primary", "on-call role"),
    ("primary is also backup", [("{primary: li.na, backup: zhao.lei}", "{primary: li.na, backup: li.na}  # here")],
     "schedule.rotation[1].backup", "someone else"),
    ("override names an unknown person", [("backup: wang.wei, reason", "backup: nobody, reason"), ("  overrides:\n    - {", "  overrides:\n    - {")],
     "schedule.overrides[0].backup", "unknown person 'nobody'"),
    ("override ends before it starts", [('end: "2026-10-08 09:00"', 'end: "2026-09-30 09:00"')], "schedule.overrides[0].end", "not after start"),
    ("override time not a time", [('start: "2026-10-01 09:00"', 'start: "October 1st"')], "schedule.overrides[0].start", "YYYY-MM-DD HH:MM"),
    ("override time unquoted with seconds", [('start: "2026-10-01 09:00"', "start: 2026-10-01 09:00:00")],
     "schedule.overrides[0].start", "quote"),
    ("overlapping overrides", [("reason: National Day duty}\n", (
        "reason: National Day duty}\n"
        "    - {start: \"2026-10-07 09:00\", end: \"2026-10-09 09:00\", primary: li.na, backup: wang.wei, reason: swap}  # here\n"))],
     "schedule.overrides[1]", "overlaps overrides[0]"),
    ("handover time unquoted", [('time: "09:00"}', "time: 9:00}  # here")], "schedule.handover.time", "quote the time"),
    ("handover time out of range", [('time: "09:00"}', 'time: "25:00"}  # here')], "schedule.handover.time", "HH:MM"),
    ("handover day unknown", [("day: mon,", "day: funday,")], "schedule.handover.day", "unknown weekday"),
    ("unknown timezone", [("timezone: Asia/Shanghai", "timezone: Mars/Olympus  # here")], "timezone", "unknown time zone"),
    ("unknown field", [("    name: 王偉\n", "    name: 王偉\n    pager: 123  # here\n")], "people[0].pager", "unknown field"),
    ("bad person id", [("- id: wang.wei", "- id: Wang Wei  # here")], "people[0].id", "matching regex"),
    ("unknown language", [("language: zh-TW", "language: fr  # here")], "people[0].language", "Invalid enum value 'fr'"),
    ("unknown role", [("roles: [on-call, operator]\n    contacts:\n      - {channel: wecom-ops",
                       "roles: [on-call, boss]  # here\n    contacts:\n      - {channel: wecom-ops")], "people[0].roles[1]", "boss"),
    ("escalation to an unknown person", [("", ESCALATION.replace("TARGET", "person:nobody"))],
     "escalation.policies.P2.steps[0].notify[1]", "unknown person 'nobody'"),
    ("escalation to a person without contact", [("channels:\n", "  - {id: zhou.yu, name: 周宇, language: zh-CN, roles: [viewer]}\nchannels:\n"),
                                                ("", ESCALATION.replace("TARGET", "person:zhou.yu"))],
     "escalation.policies.P2.steps[0].notify[1]", "zhou.yu has no contact"),
    ("escalation to an unknown channel", [("", ESCALATION.replace("TARGET", "channel:dingtalk"))],
     "escalation.policies.P2.steps[0].notify[1]", "unknown channel 'dingtalk'"),
    ("escalation to an unknown role", [("", ESCALATION.replace("TARGET", "role:boss"))],
     "escalation.policies.P2.steps[0].notify[1]", "unknown role 'boss'"),
    ("escalation to a role nobody has", [("", ESCALATION.replace("TARGET", "role:viewer"))],
     "escalation.policies.P2.steps[0].notify[1]", "nobody has the role 'viewer'"),
]


def mutate(edits: list[tuple[str, str]]) -> str:
    text = BASE
    for old, new in edits:
        if old == "":
            text += new
            continue
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(("edits", "key", "reason"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_every_error_names_the_file_the_line_and_the_key(tmp_path: Path, edits: list[tuple[str, str]], key: str,
                                                         reason: str) -> None:
    text = mutate(edits)
    path = tmp_path / "oncall.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_oncall(path)
    message = str(caught.value)
    marked = [n for n, line in enumerate(text.splitlines(), start=1) if "# here" in line]
    changed = marked[0] if marked else next(n for n, line in enumerate(text.splitlines(), start=1)
                                            if any(new.strip() and new.strip() in line for _, new in edits))
    assert message.startswith(f"{path}:{changed}: {key}: "), message
    assert reason in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere.yaml: file not found"):
        load_oncall(tmp_path / "nowhere.yaml")


# --- the shipped example ---------------------------------------------------------------------------------


def test_the_shipped_example_loads() -> None:
    cfg = load_oncall(ROOT / "deploy/examples/oncall.yaml")
    assert len(cfg.people) == 4 and len(directors(cfg)) == 1
    assert {p.language for p in cfg.people} == set(Language)
    assert {c.id: type(c).__struct_config__.tag for c in cfg.channels} == {
        "email": "email", "wecom-ops": "wecom", "dingtalk-ops": "dingtalk", "sms": "webhook"}
    assert len(cfg.schedule.rotation) == 3
    assert on_call_at(cfg, at("2026-10-03 12:00")).source.startswith("override: National Day")
    week = shifts(cfg, at("2026-09-28 12:00"), 7)
    assert [s.source.split(" (")[0] for s in week] == ["rotation week 1", "override: National Day duty"]
    assert cfg.escalation.policies.P1.progress_interval == 1800
