"""The director's monthly report over a seeded month (October 2026, Asia/Shanghai) in a real SQLite store:
availability of key services, incidents with MTTA/MTTR, escalations to the director, the patrol, the
preventive measures; the renderers; when the report is due and that it is sent once; the command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector import cli_reports
from collector.calendar import SchoolCalendar
from collector.cli import UsageError
from collector.domain import FaultType, Finding, Severity
from collector.fleet import Fleet
from collector.incidents import actions
from collector.incidents.engine import IncidentEngine
from collector.incidents.lifecycle import Action
from collector.notify.escalator import Escalator
from collector.notify.oncall import parse_oncall
from collector.patrol import manual
from collector.patrol.loader import load_checklists
from collector.patrol.model import Checklist
from collector.reports.monthly import (
    MonthlyReport,
    build,
    summary_message,
    to_html,
    to_json,
    to_markdown,
)
from collector.reports.schedule import MonthlyReportService, due_month
from collector.rules.loader import load_rules
from collector.runbooks.notices import RunbookNotices
from collector.store import InventoryAsset, outbox
from collector.store import incidents as q
from collector.store import patrol as p
from collector.store.monthly import MonthData, month_data
from collector.store.sql import SqlStore, sqlite_url, sync_inventory
from collector.store.tables import audit_log, notifications

REPO = Path(__file__).resolve().parents[2]
TZ = "Asia/Shanghai"
MIN, H, DAY = 60.0, 3600.0, 86400.0
NAMES = {"liu.director": "刘主任", "wang": "王工", "chen": "陈工"}
DIRECTORS = {"liu.director", "mary"}
TITLE_10 = "mail: <script>alert(1)</script> & co"


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(TZ)).timestamp()


START, END = at(10, 1), at(11, 1)
AS_OF = at(11, 1, 9)
MONTH = END - START  # 31 days

ONCALL = """\
timezone: Asia/Shanghai
people:
  - {id: wang, name: 王工, language: zh-CN, roles: [on-call, operator], contacts: [{channel: email, address: wang@school.example}]}
  - {id: zhao, name: Zhao, language: en, roles: [on-call], contacts: [{channel: email, address: zhao@school.example}]}
  - {id: chen, name: 陈工, language: zh-CN, roles: [operator], contacts: [{channel: email, address: chen@school.example}]}
  - {id: liu.director, name: 刘主任, language: zh-CN, roles: [director], contacts: [{channel: email, address: liu@school.example}]}
  - {id: mary, name: Mary Smith, language: en, roles: [director, viewer], contacts: [{channel: email, address: mary@school.example}]}
channels:
  - {kind: email, id: email, host: smtp.school.example, sender: ops@school.example, username: ops, password_secret: smtp}
schedule:
  start: 2026-09-07
  rotation:
    - {primary: wang, backup: zhao}
"""


# --- the seeded month -----------------------------------------------------------------------------


def incident(conn: Connection, asset: str, rule: str, kind: FaultType, severity: Severity, opened: float, *,
             ack: float | None = None, resolved: float | None = None, title: str | None = None) -> int:
    """An incident through the store and the people's actions (acknowledge, resolve) at known times."""
    incident_id = q.insert_incident(conn, {
        "fingerprint": f"{asset}|{rule}", "asset": asset, "site": "main", "rule": rule, "type": kind.value,
        "severity": int(severity), "title": title or f"{asset}: {rule}", "reason": "seeded", "state": "open",
        "opened_at": opened})
    assert incident_id is not None
    if ack is not None:
        actions.transition(conn, incident_id, Action.ACKNOWLEDGE, actor="wang", at=ack)
    if resolved is not None:
        actions.transition(conn, incident_id, Action.RESOLVE, actor="wang" if ack else "schoolops", at=resolved)
    return incident_id


def fault(conn: Connection, incident_id: int, rule: str, asset: str, key: str, fired: float,
          cleared: float | None = None, *, since: float | None = None, kind: str = "opened") -> None:
    """A fault's row and its timeline events, written the way the incident engine writes them."""
    fingerprint = f"{rule}|{asset}|{key}"
    record = q.FaultRecord(
        fingerprint=fingerprint, rule=rule, asset=asset, key=key, type=FaultType.NETWORK, base_severity=Severity.P3,
        severity=Severity.P3, summary=f"{rule} on {asset}", reason="seeded", value=None, active=True,
        since=fired if since is None else since, fired_at=fired, cleared_at=None, incident_id=incident_id,
        consequence_of=None)
    q.save_fault(conn, record)
    q.add_event(conn, incident_id, fired, kind, "schoolops", record.summary, {"fault": fingerprint, "severity": "P3"})
    if cleared is not None:
        q.save_fault(conn, replace(record, active=False, cleared_at=cleared))
        q.add_event(conn, incident_id, cleared, "fault_cleared", "schoolops", f"cleared: {record.summary}",
                    {"fault": fingerprint})


def page(conn: Connection, incident_id: int, person: str, at_: float, *, kind: str = "page", step: str = "step:2",
         severity: int, state: str = "sent") -> None:
    row = outbox.enqueue(conn, incident_id=incident_id, step_key=step, person=person, channel="email",
                         address=f"{person}@school.example", kind=kind, severity=severity, language="zh-CN",
                         subject="s", text="t", ack_url=None, created_at=at_)
    outbox.update(conn, row, state=state, sent_at=at_ + 5 if state == "sent" else None)


def escalation_event(conn: Connection, incident_id: int, at_: float, step: str) -> None:
    q.add_event(conn, incident_id, at_, "escalation", "schoolops", f"{step}: 刘主任",
                {"step": step, "kind": "page", "director": True})


def patrol_run(conn: Connection, day: int, state: str, results: list[tuple[str, str, str, str, str]],
               month: int = 10) -> int:
    run_id = p.create_run(conn, "daily", "schedule", at(month, day, 8))
    p.update_run(conn, run_id, state="interrupted" if state == "interrupted" else "done",
                 finished_at=at(month, day, 8, 10), total=len(results))
    for section, item, asset, key, status in results:
        p.add_result(conn, run_id=run_id, section=section, item=item, asset=asset, key=key, status=status, value=None,
                     evidence="", at=at(month, day, 8, 5))
    if state in ("signed", "reviewed"):
        manual.sign(conn, run_id, person="wang", at=at(month, day, 17))
    if state == "reviewed":
        manual.review(conn, run_id, person="liu.director", at=at(month, day, 18))
    return run_id


def measure(conn: Connection, incident_id: int, text: str, due: str, created: float,
            done: float | None = None) -> int:
    actions.submit_rca(conn, incident_id, actor="wang", at=created, rca=None,
                       measures=[actions.MeasureInput(text, "chen", due)])
    found = next(m.id for m in q.measures(conn, incident_id) if m.description == text)
    if done is not None:
        actions.complete_measure(conn, found, actor="chen", at=done)
    return found


# Working days of October 2026 (mainland China): the 8th, 9th, 10th (a Saturday made a workday for
# National Day), 12-16, 19-23 and 26-30: 18. Patrolled on all but the 10th and the 30th (that run was
# interrupted), and once on the 3rd, a holiday: 17 finished runs.
PATROL_DAYS = [3, 8, 9, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 26, 27, 28, 29]


def seed(conn: Connection) -> dict[str, int]:
    """The month; returns the ids the figures name."""
    sync_inventory(conn, [
        InventoryAsset("web", "service", "main", "web", "core", ()),
        InventoryAsset("core-sw", "network", "main", "core-switch", "core", ()),
        InventoryAsset("mail", "server", "main", "mail", "important", ()),
        InventoryAsset("lab-pc", "server", "main", "classroom", "normal", ("core-sw",)),
    ], at(9, 1))
    sync_inventory(conn, [  # dns joins on the 20th
        InventoryAsset("web", "service", "main", "web", "core", ()),
        InventoryAsset("core-sw", "network", "main", "core-switch", "core", ()),
        InventoryAsset("mail", "server", "main", "mail", "important", ()),
        InventoryAsset("lab-pc", "server", "main", "classroom", "normal", ("core-sw",)),
        InventoryAsset("dns", "service", "main", "dns", "normal", ()),
    ], at(10, 20))
    ids: dict[str, int] = {}
    A, N, S = FaultType.APPLICATION, FaultType.NETWORK, FaultType.SECURITY

    # before the month: not counted, but the down time of I0 runs into it
    ids["I0"] = incident(conn, "core-sw", "device_unreachable", N, Severity.P2, at(9, 30, 23),
                         ack=at(9, 30, 23, 10), resolved=at(10, 1, 1, 10))
    fault(conn, ids["I0"], "device_unreachable", "core-sw", "", at(9, 30, 23), at(10, 1, 1))
    page(conn, ids["I0"], "liu.director", at(9, 30, 23, 20), severity=2)
    incident(conn, "srv-9", "filesystem_usage", FaultType.CAPACITY, Severity.P4, at(9, 28), resolved=at(9, 29))

    # web: two probes fail together on the 5th (10:00-11:30), and again on the 20th from 07:59 to 08:30
    ids["I1"] = incident(conn, "web", "probe_failed", A, Severity.P3, at(10, 5, 10),
                         ack=at(10, 5, 10, 10), resolved=at(10, 5, 11, 30))
    fault(conn, ids["I1"], "probe_failed", "web", "https", at(10, 5, 10), at(10, 5, 11))
    fault(conn, ids["I1"], "probe_failed", "web", "http", at(10, 5, 10, 30), at(10, 5, 11, 30), kind="fault_fired")
    ids["I2"] = incident(conn, "web", "probe_failed", A, Severity.P3, at(10, 20, 8),
                         ack=at(10, 20, 8, 5), resolved=at(10, 20, 8, 30))
    fault(conn, ids["I2"], "probe_failed", "web", "https", at(10, 20, 8), at(10, 20, 8, 30), since=at(10, 20, 7, 59))
    ids["I8"] = incident(conn, "web", "tls_certificate_expiry", S, Severity.P3, at(10, 8),
                         ack=at(10, 8, 0, 30), resolved=at(10, 9))
    fault(conn, ids["I8"], "tls_certificate_expiry", "web", "443", at(10, 8), at(10, 9))  # not down time

    # core-sw: 01:00-03:00 on Sunday the 18th (the weekly window from 02:00), and from 23:30 on the 31st
    ids["I3"] = incident(conn, "core-sw", "device_unreachable", N, Severity.P2, at(10, 18, 1),
                         ack=at(10, 18, 1, 20), resolved=at(10, 18, 3))
    fault(conn, ids["I3"], "device_unreachable", "core-sw", "", at(10, 18, 1), at(10, 18, 3))
    page(conn, ids["I3"], "liu.director", at(10, 18, 1, 20), severity=2)
    escalation_event(conn, ids["I3"], at(10, 18, 1, 20), "step:2")  # the same step: one message
    ids["I4"] = incident(conn, "core-sw", "device_unreachable", N, Severity.P1, at(10, 31, 23, 30),
                         ack=at(10, 31, 23, 40), resolved=at(11, 1, 0, 45))
    fault(conn, ids["I4"], "device_unreachable", "core-sw", "", at(10, 31, 23, 30), at(11, 1, 0, 45))
    page(conn, ids["I4"], "liu.director", at(10, 31, 23, 30), step="step:0", severity=1)
    page(conn, ids["I4"], "wang", at(10, 31, 23, 30), step="step:0", severity=1)  # not a director
    page(conn, ids["I4"], "liu.director", at(10, 31, 23, 40), kind="progress", step="progress:state:acknowledged",
         severity=1)  # a progress report, not an escalation

    # mail: silent 02:00-06:00 on the 12th inside a window 01:00-05:00; postfix down from 20:00 on the 31st
    ids["I5"] = incident(conn, "mail", "asset_silent", N, Severity.P2, at(10, 12, 2), resolved=at(10, 12, 6, 5))
    fault(conn, ids["I5"], "asset_silent", "mail", "", at(10, 12, 2), at(10, 12, 6))
    ids["I6"] = incident(conn, "mail", "process_down", A, Severity.P3, at(10, 31, 20))
    fault(conn, ids["I6"], "process_down", "mail", "postfix", at(10, 31, 20))
    page(conn, ids["I6"], "liu.director", at(10, 31, 21), step="runbook:restart-service:1", severity=3,
         state="given_up")
    ids["I10"] = incident(conn, "mail", "log_pattern_matched", S, Severity.P2, at(10, 15, 14),
                          ack=at(10, 15, 14, 25), resolved=at(10, 15, 17), title=TITLE_10)
    escalation_event(conn, ids["I10"], at(10, 15, 14, 20), "step:2")  # a director no longer in the file

    # dns, from the 20th: down 12:00-14:00 on the 25th; lab-pc is not a key service
    ids["I7"] = incident(conn, "dns", "probe_failed", A, Severity.P4, at(10, 25, 12),
                         ack=at(10, 25, 13), resolved=at(10, 25, 14))
    fault(conn, ids["I7"], "probe_failed", "dns", "udp", at(10, 25, 12), at(10, 25, 14))
    ids["I9"] = incident(conn, "lab-pc", "asset_silent", N, Severity.P4, at(10, 3, 9), resolved=at(10, 3, 9, 15))
    fault(conn, ids["I9"], "asset_silent", "lab-pc", "", at(10, 3, 9), at(10, 3, 9, 15))
    incident(conn, "web", "agent_probe_errors", FaultType.SYSTEM, Severity.INFO, at(10, 2))  # pages nobody
    incident(conn, "web", "check_status", A, Severity.P3, at(11, 1, 0, 10))  # next month

    q.add_window(conn, scope={"assets": ["mail"]}, starts_at=at(10, 12, 1), ends_at=at(10, 12, 5), owner="chen",
                 reason="mail upgrade", recurrence=None, at=at(10, 10), actor="chen")
    q.add_window(conn, scope={"assets": ["core-sw"]}, starts_at=START, ends_at=at(12, 31), owner="chen",
                 reason="weekly switch work", at=at(9, 25), actor="chen",
                 recurrence={"cron": "0 2 * * 0", "duration": 7200, "timezone": TZ})
    q.add_window(conn, scope={"sites": ["north"]}, starts_at=at(10, 5, 9), ends_at=at(10, 5, 12), owner="chen",
                 reason="another building", recurrence=None, at=at(10, 1), actor="chen")

    # the patrol: room temperature abnormal in 4 runs (recurring), /var in 2, the web page in 2 finished runs
    for n, day in enumerate(PATROL_DAYS):
        state = "reviewed" if n < 8 else "signed" if n < 12 else "done"
        patrol_run(conn, day, state, [
            ("server-room", "room-temperature", "room-sensor", "", "abnormal" if n in (2, 5, 9, 14) else "normal"),
            ("servers", "disk-usage", "srv-1", "/var", "abnormal" if n in (3, 7) else "normal"),
            ("services", "http-status", "www", "", "abnormal" if n in (0, 16) else "normal"),
            ("server-room", "room-humidity", "", "", "not_checked" if n == 4 else "normal"),
        ])
    patrol_run(conn, 30, "interrupted", [("services", "http-status", "www", "", "abnormal")])
    patrol_run(conn, 30, "done", [("server-room", "room-temperature", "room-sensor", "", "abnormal")], month=9)

    # preventive measures
    ids["M1"] = measure(conn, ids["I0"], "second uplink for the core switch", "2026-10-10", at(9, 30, 23, 50))
    measure(conn, ids["I0"], "label the uplink cables", "2026-10-15", at(9, 30, 23, 50), done=at(10, 5, 9))
    measure(conn, ids["I0"], "an older one", "2026-09-30", at(9, 20), done=at(9, 25))
    measure(conn, ids["I3"], "spare power supply", "2026-10-25", at(10, 18, 10), done=at(10, 24, 15))
    ids["M3"] = measure(conn, ids["I3"], "route cables | through ducts", "2026-11-30", at(10, 18, 10))
    ids["M4"] = measure(conn, ids["I10"], "block password guessing", "2026-10-31", at(10, 16, 9))
    measure(conn, ids["I4"], "set after the month", "2026-11-15", at(11, 1, 8))
    return ids


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "schoolops.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStore]:
    s = SqlStore.open(sqlite_url(db_path))
    yield s
    await s.close()


@pytest.fixture
def ids(store: SqlStore) -> dict[str, int]:
    return store.run_sync(seed)


@pytest.fixture(scope="module")
def checklists() -> dict[str, Checklist]:
    return load_checklists(REPO / "runbooks" / "patrol")


@pytest.fixture(scope="module")
def calendar() -> SchoolCalendar:
    return SchoolCalendar.default()


def read(store: SqlStore, *, as_of: float = AS_OF, start: float = START, end: float = END) -> MonthData:
    return store.run_sync(lambda c: month_data(c, start, end, as_of=as_of, directors=DIRECTORS))


def report_of(data: MonthData, checklists: dict[str, Checklist], calendar: SchoolCalendar,
              language: str = "en") -> MonthlyReport:
    return build(data, month="2026-10", language=language, tz=TZ, names=NAMES, checklists=checklists,
                 calendar=calendar)


@pytest.fixture
def report(store: SqlStore, ids: dict[str, int], checklists: dict[str, Checklist],
           calendar: SchoolCalendar) -> MonthlyReport:
    return report_of(read(store), checklists, calendar)


# --- the figures ----------------------------------------------------------------------------------


def test_availability_of_key_services_counts_unplanned_down_time_only(report: MonthlyReport) -> None:
    from collector.reports.model import percent

    rows = [(r.name, r.kind, r.tier, percent(r.availability), r.downtime, r.planned, r.outages, r.monitored_from,
             r.period) for r in report.services]
    assert rows == [  # lowest availability first; lab-pc (tier normal, a server) is not a key service
        # from the 20th (12 days): 2 h down → 1 − 7200 / 1036800 = 99.305 %
        ("dns", "service", "normal", "99.30%", 2 * H, 0.0, 1, at(10, 20), 12 * DAY),
        # silent 02:00-06:00, 3 h of it in the window; postfix down from 20:00 on the 31st to the end: 1 h + 4 h
        ("mail", "server", "important", "99.32%", 5 * H, 3 * H, 2, None, MONTH),
        # 00:00-01:00 on the 1st (down since the 30th), 01:00-02:00 on the 18th (the weekly window took 02:00-03:00),
        # 23:30-24:00 on the 31st (cleared after midnight)
        ("core-sw", "network", "core", "99.66%", 150 * MIN, 1 * H, 3, None, MONTH),
        # 10:00-11:30 on the 5th (two probes, overlapping; the north building's window does not cover it), and
        # 07:59-08:30 on the 20th (the condition began before the fault fired); the certificate is not down time
        ("web", "service", "core", "99.72%", 121 * MIN, 0.0, 2, None, MONTH),
    ]
    assert [round(r.availability or 0, 6) for r in report.services] == [
        round(1 - 7200 / (12 * DAY), 6), round(1 - 5 * H / MONTH, 6), round(1 - 150 * MIN / MONTH, 6),
        round(1 - 121 * MIN / MONTH, 6)]


def test_incidents_by_severity_and_type_with_mtta_and_mttr(report: MonthlyReport) -> None:
    def row(r: Any) -> tuple[Any, ...]:
        return (r.severity.label if r.severity else "total", r.count, r.acknowledged, r.resolved, r.mtta, r.mttr)

    # opened in October, P1-P4 (the info record, September's and November's are left out); seconds
    assert [row(r) for r in report.severities] == [
        ("P1", 1, 1, 1, (10 * MIN, 10 * MIN), (75 * MIN, 75 * MIN)),
        ("P2", 3, 2, 3, (22.5 * MIN, 22.5 * MIN), (10900.0, 180 * MIN)),  # resolved after 120, 245, 180 min
        ("P3", 4, 3, 3, (15 * MIN, 10 * MIN), (520 * MIN, 90 * MIN)),  # one still open
        ("P4", 2, 1, 2, (60 * MIN, 60 * MIN), (67.5 * MIN, 67.5 * MIN)),
    ]
    total = row(report.total)
    assert total[:4] == ("total", 10, 7, 9)
    assert total[4] == pytest.approx((160 / 7 * MIN, 20 * MIN)) and total[5] == pytest.approx((2315 / 9 * MIN, 2 * H))
    assert [(r.type.value, r.count) for r in report.types] == [("network", 4), ("application", 4), ("security", 2)]
    shown = [(report.severity(r.severity), report.pair(r.mtta), report.pair(r.mttr))
             for r in (*report.severities, report.total)]
    assert shown == [
        ("P1 critical", "10 min / 10 min", "1 h 15 min / 1 h 15 min"),
        ("P2 major", "22 min / 22 min", "3 h 1 min / 3 h"),
        ("P3 significant", "15 min / 10 min", "8 h 40 min / 1 h 30 min"),
        ("P4 general", "1 h / 1 h", "1 h 7 min / 1 h 7 min"),
        ("Total", "22 min / 20 min", "4 h 17 min / 2 h"),
    ]


def test_escalations_that_reached_the_director(report: MonthlyReport, ids: dict[str, int]) -> None:
    rows = [(r.incident_id, r.severity.label if r.severity else None, r.first_at, r.messages, r.people, r.delivered)
            for r in report.escalations]
    assert rows == [
        (ids["I10"], "P2", at(10, 15, 14, 20), 1, (), None),  # known from the timeline only
        (ids["I3"], "P2", at(10, 18, 1, 20), 1, ("刘主任",), True),  # outbox and timeline: one message
        (ids["I6"], "P3", at(10, 31, 21), 1, ("刘主任",), False),  # a runbook's escalation, given up
        (ids["I4"], "P1", at(10, 31, 23, 30), 1, ("刘主任",), True),  # the progress report is not an escalation
    ]
    assert report.escalations[0].title == TITLE_10


def test_patrol_completion_and_recurring_abnormal_items(report: MonthlyReport) -> None:
    from collector.reports.model import percent

    (daily,) = report.checklists
    assert (daily.name, daily.title, daily.scheduled, daily.patrolled, daily.runs, daily.signed, daily.reviewed) == \
        ("daily", "Daily patrol", 18, 16, 17, 12, 8)
    assert daily.missed == (dt.date(2026, 10, 10), dt.date(2026, 10, 30))
    assert (daily.normal, daily.abnormal, daily.not_checked) == (59, 8, 1)  # 17 runs × 4 results
    assert percent(daily.pass_rate) == "88.05%"  # 59 / 67
    assert [(r.item, r.check, r.asset, r.key, r.runs) for r in report.recurring] == [
        ("room-temperature", "Server room temperature", "room-sensor", "", 4)]


def test_preventive_measures_set_done_and_open(report: MonthlyReport, ids: dict[str, int]) -> None:
    assert (report.measures_opened, report.measures_done) == (3, 2)
    assert [(m.id, m.incident_id, m.owner, m.due, m.overdue) for m in report.open_measures] == [
        (ids["M1"], ids["I0"], "陈工", "2026-10-10", True),
        (ids["M4"], ids["I10"], "陈工", "2026-10-31", True),  # due on the last day: overdue once the month is over
        (ids["M3"], ids["I3"], "陈工", "2026-11-30", False),
    ]


def test_a_month_still_under_way_is_reported_up_to_now(store: SqlStore, ids: dict[str, int],
                                                       checklists: dict[str, Checklist],
                                                       calendar: SchoolCalendar) -> None:
    now = at(10, 20, 12)
    report = report_of(read(store, as_of=now), checklists, calendar)
    assert report.until == now
    assert report.period_text() == "2026-10-01 to 2026-10-20 12:00 (Asia/Shanghai)"
    web = next(r for r in report.services if r.name == "web")
    assert (web.downtime, web.period) == (121 * MIN, now - START)
    dns = next(r for r in report.services if r.name == "dns")
    assert (dns.downtime, dns.period, dns.monitored_from) == (0.0, 12 * H, at(10, 20))
    (daily,) = report.checklists
    # working days up to noon on the 20th: 8, 9, 10, 12-16, 19, 20
    assert (daily.scheduled, daily.patrolled, daily.missed) == (10, 9, (dt.date(2026, 10, 10),))
    # the spare power supply was done on the 24th: still open on the 20th
    assert [(m.due, m.overdue) for m in report.open_measures] == [
        ("2026-10-10", True), ("2026-10-25", False), ("2026-10-31", False), ("2026-11-30", False)]


async def test_down_time_is_read_from_what_the_incident_engine_writes(store: SqlStore) -> None:
    store.run_sync(lambda c: sync_inventory(c, [InventoryAsset("core-sw", "network", "main", "core", "core", ())],
                                            at(9, 1)))
    now = [at(10, 6, 9)]
    engine = IncidentEngine(store, Fleet(), load_rules(REPO / "alerts"), SchoolCalendar.default(),
                            clock=lambda: now[0])
    finding = Finding(rule="device_unreachable", asset="core-sw", key="", type=FaultType.NETWORK,
                      severity=Severity.P2, value=0.0, summary="core-sw does not answer (SNMP)", since=now[0])
    await engine.on_event(finding)
    now[0] += 10 * MIN
    await engine.on_event(finding, clears=True)
    now[0] = at(10, 6, 10)  # again an hour later: the condition began 30 s before the fault fired
    await engine.on_event(replace(finding, since=now[0] - 30))
    now[0] += 20 * MIN
    await engine.on_event(finding, clears=True)

    data = read(store)
    assert [(e.at, e.starts, e.since) for e in data.fault_events] == [
        (at(10, 6, 9), True, None), (at(10, 6, 9, 10), False, None),
        (at(10, 6, 10), True, at(10, 6, 10) - 30), (at(10, 6, 10, 20), False, None)]
    (row,) = build(data, month="2026-10", language="en", tz=TZ).services
    assert (row.name, row.downtime, row.outages) == ("core-sw", 10 * MIN + 20 * MIN + 30, 2)


# --- words and renderings -------------------------------------------------------------------------


def test_the_directors_message(report: MonthlyReport, ids: dict[str, int], store: SqlStore,
                               checklists: dict[str, Checklist], calendar: SchoolCalendar) -> None:
    subject, text = summary_message(report)
    assert subject == "[Monthly report] 2026-10: 10 incidents, 4 major"
    assert text.splitlines() == [
        "Monthly report for 2026-10.",
        "Key services below 100%: dns 99.30%; mail 99.32%; core-sw 99.66%; web 99.72%",
        "Incidents: P1 1, P2 3, P3 4, P4 2.",
        "Mean time to acknowledge 22 min; mean time to resolve 4 h 17 min.",
        (f"Escalated to you: #{ids['I10']} mail (P2); #{ids['I3']} core-sw (P2); #{ids['I6']} mail (P3); "
         f"#{ids['I4']} core-sw (P1)"),
        "Daily patrol: patrolled 16 of 18 working days; 12 signed, 8 reviewed; pass rate 88.05%.",
        "Abnormal again and again: Server room temperature (room-sensor): 4 times",
        "Set this month: 3. Done this month: 2. Still open: 3, of which overdue: 2.",
        ("The full report, to print: schoolops report monthly --month 2026-10 --language en --format html "
         "-o monthly-2026-10.html"),
    ]
    subject_cn, text_cn = summary_message(report_of(read(store), checklists, calendar, "zh-CN"))
    assert subject_cn == "【运维月报】2026-10：故障事件 10 起，重大及以上 4 起"
    assert "日常巡检：应巡检 18 个工作日，实际 16 天；签字 12 次，审核 8 次；合格率 88.05%。" in text_cn
    assert "反复异常：机房温度（room-sensor）：4 次" in text_cn
    assert "本月新增 3 项，本月完成 2 项；尚未完成 3 项，其中逾期 2 项。" in text_cn
    subject_tw, text_tw = summary_message(report_of(read(store), checklists, calendar, "zh-TW"))
    assert subject_tw == "【運維月報】2026-10：故障事件 10 起，重大及以上 4 起"
    assert "平均確認用時 22 分鐘；平均修復用時 4 小時 17 分鐘。" in text_tw


class _Checker(HTMLParser):
    """Every element closed in order (void elements aside); the tags, and the cells of each row."""

    VOID = frozenset({"meta", "br", "col"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[tuple[str | None, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append((dict(attrs).get("class"), []))
        if tag in ("td", "th"):
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and not checker.stack
    return checker


def test_html_is_a_printable_a4_sheet_with_the_figures_escaped(report: MonthlyReport, ids: dict[str, int]) -> None:
    page = to_html(report)
    checker = _parse(page)
    assert page.startswith("<!DOCTYPE html>") and ("html", {"lang": "en"}) in checker.tags
    assert (None, ["Period", "2026-10-01 to 2026-10-31 (Asia/Shanghai)", "Made", "2026-11-01 09:00"]) in checker.rows
    assert "@page { size: A4; margin: 15mm }" in page and "@media (max-width: 600px)" in page
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in checker.tags
    assert not {"script", "link", "img"} & {tag for tag, _ in checker.tags}
    assert "url(" not in page and "@import" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    rows = checker.rows
    assert ("marked", ["dns (monitored since 2026-10-20)", "service, normal", "99.30%", "2 h", "1", "—"]) in rows
    assert ("marked", ["mail", "server, important", "99.32%", "5 h", "2", "3 h"]) in rows
    assert (None, ["P2 major", "3", "3", "22 min / 22 min", "3 h 1 min / 3 h"]) in rows
    assert ("marked", ["Total", "10", "9", "22 min / 20 min", "4 h 17 min / 2 h"]) in rows
    assert (None, [f"#{ids['I10']} {TITLE_10}", "P2 major", "2026-10-15 14:20", "1"]) in rows
    assert ("marked", [f"#{ids['I6']} mail: process_down", "P3 significant", "2026-10-31 21:00",
                       "1 (刘主任) not delivered"]) in rows
    assert ("marked", ["Daily patrol", "18", "16", "17", "12", "8", "88.05%"]) in rows
    assert ("marked", ["Server room temperature", "room-sensor", "4"]) in rows
    assert ("marked", [str(ids["M4"]), f"#{ids['I10']}", "block password guessing", "陈工",
                       "2026-10-31 overdue"]) in rows
    assert "Daily patrol: no patrol on 10-10, 10-30" in page
    assert sum(1 for _, attrs in checker.tags if attrs.get("class") == "blank") == 2  # the director signs


def test_html_in_chinese(store: SqlStore, ids: dict[str, int], checklists: dict[str, Checklist],
                         calendar: SchoolCalendar) -> None:
    simplified = to_html(report_of(read(store), checklists, calendar, "zh-CN"))
    assert 'lang="zh-CN"' in simplified and "2026年10月运维月报" in simplified
    assert "重点服务可用率" in simplified and "P1 特别重大" in simplified and "业务服务、核心" in simplified
    traditional = to_html(report_of(read(store), checklists, calendar, "zh-TW"))
    assert "2026年10月運維月報" in traditional and "重點服務可用率" in traditional and "P1 特別重大" in traditional
    assert "業務服務、核心" in traditional and "已逾期" in traditional and "網路" in traditional


def test_every_phrase_is_written_in_three_languages_with_the_same_fields() -> None:
    import string

    from collector.reports.phrases import ROWS

    for key, row in ROWS.items():
        fields = [{name for _, name, _, _ in string.Formatter().parse(text) if name} for text in row]
        assert len(row) == 3 and fields[0] == fields[1] == fields[2], key


def test_markdown_and_json(report: MonthlyReport, ids: dict[str, int]) -> None:
    text = to_markdown(report)
    assert text.startswith("# Monthly operations report 2026-10\n")
    assert "| **dns (monitored since 2026-10-20)** | **service, normal** | **99.30%** | **2 h** | **1** | **—** |" in text
    assert "| P1 critical | 1 | 1 | 10 min / 10 min | 1 h 15 min / 1 h 15 min |" in text
    assert "route cables \\| through ducts" in text and "&lt;script&gt;" in text
    data = json.loads(json.dumps(to_json(report)))
    assert data["from"] == "2026-10-01T00:00:00+08:00" and data["to"] == "2026-11-01T00:00:00+08:00"
    assert [(s["name"], s["availability_percent"], s["downtime"]) for s in data["services"]][:2] == [
        ("dns", "99.30%", 7200.0), ("mail", "99.32%", 18000.0)]
    assert data["incidents"]["by_type"] == {"network": 4, "application": 4, "security": 2}
    assert data["incidents"]["by_severity"][0]["mttr_seconds"] == {"mean": 4500.0, "median": 4500.0}
    assert [e["incident_id"] for e in data["director_escalations"]] == [ids["I10"], ids["I3"], ids["I6"], ids["I4"]]
    assert data["patrol"]["checklists"][0]["missed"] == ["2026-10-10", "2026-10-30"]
    assert data["measures"]["overdue"] == 2 and len(data["measures"]["open"]) == 3


# --- when it is sent ------------------------------------------------------------------------------


def test_due_month() -> None:
    assert due_month(None, at(11, 1, 9), TZ) == "2026-10"
    assert due_month("2026-10", at(11, 1, 9), TZ) is None  # sent already
    assert due_month("2026-09", at(11, 1, 7, 59), TZ) is None  # the 1st, before 08:00
    assert due_month("2026-09", at(11, 1, 8), TZ) == "2026-10"
    assert due_month("2026-09", at(11, 15, 3), TZ) == "2026-10"  # missed while down: sent late, once
    assert due_month("2026-08", at(11, 2), TZ) == "2026-10"  # not September's any more
    assert due_month("2026-11", at(1, 1, 9, year=2027), TZ) == "2026-12"
    utc_evening = dt.datetime(2026, 10, 31, 17, tzinfo=dt.UTC).timestamp()  # 01:00 on 1 November in Shanghai
    assert due_month("2026-09", utc_evening, TZ, hour=0) == "2026-10"
    assert due_month("2026-09", utc_evening, "UTC", hour=0) is None


async def test_the_service_sends_each_director_the_report_once(store: SqlStore, ids: dict[str, int],
                                                              checklists: dict[str, Checklist],
                                                              calendar: SchoolCalendar) -> None:
    oncall = parse_oncall(ONCALL)
    now = [at(11, 1, 7)]

    def service() -> MonthlyReportService:
        escalator = Escalator(store, oncall, link_key=b"k" * 32, public_url="http://collector.example")
        return MonthlyReportService(store, oncall, RunbookNotices(oncall, escalator), checklists=checklists,
                                    calendar=calendar, clock=lambda: now[0])

    def sent() -> list[tuple[str, str, str, str]]:
        rows = store.run_sync(lambda c: c.execute(sa.select(notifications).where(
            notifications.c.step_key.like("report.monthly:%")).order_by(notifications.c.id)).all())
        return [(r.person, r.language, r.kind, r.subject) for r in rows]

    first = service()
    assert await first.tick() is None and sent() == []  # 07:00 on the 1st: not yet
    now[0] = AS_OF
    assert await first.tick() == "2026-10"
    assert sent() == [("liu.director", "zh-CN", "summary", "【运维月报】2026-10：故障事件 10 起，重大及以上 4 起"),
                      ("mary", "en", "summary", "[Monthly report] 2026-10: 10 incidents, 4 major")]
    text = store.run_sync(lambda c: c.execute(sa.select(notifications.c.text).where(
        notifications.c.person == "mary")).scalar_one())
    assert text == summary_message(report_of(read(store), checklists, calendar))[1]
    assert await first.tick() is None
    now[0] += H
    assert await service().tick() is None  # restarted: nothing again
    assert len(sent()) == 2
    (audit,) = store.run_sync(lambda c: c.execute(sa.select(audit_log).where(
        audit_log.c.action == "report.monthly.sent")).all())
    assert (audit.target, json.loads(audit.detail)) == ("report.monthly:2026-10",
                                                       {"month": "2026-10", "to": ["刘主任", "Mary Smith"]})
    now[0] = at(12, 1, 9)
    assert await service().tick() == "2026-11" and len(sent()) == 4


async def test_each_directors_message_links_to_the_report_in_their_language(store: SqlStore, ids: dict[str, int],
                                                                            checklists: dict[str, Checklist],
                                                                            calendar: SchoolCalendar) -> None:
    from urllib.parse import parse_qs, urlsplit

    from collector.reports import reportweb

    oncall, key = parse_oncall(ONCALL), b"k" * 32
    escalator = Escalator(store, oncall, link_key=key, public_url="https://ops.school.example")
    service = MonthlyReportService(store, oncall, RunbookNotices(oncall, escalator), checklists=checklists,
                                   calendar=calendar, clock=lambda: AS_OF, link_key=key,
                                   base_url="https://ops.school.example/")
    assert await service.tick() == "2026-10"
    texts = dict(store.run_sync(lambda c: c.execute(sa.select(notifications.c.person, notifications.c.text).where(
        notifications.c.step_key == "report.monthly:2026-10")).all()))
    for person, language in (("liu.director", "zh-CN"), ("mary", "en")):
        link = re.search(r"https://\S+", texts[person]).group(0)  # type: ignore[union-attr]
        parts, query = urlsplit(link), parse_qs(urlsplit(link).query)
        assert (parts.netloc, parts.path, query["lang"]) == ("ops.school.example", "/reports/monthly/2026-10", [language])
        expires = int(query["expires"][0])
        assert expires == int(AS_OF + 30 * DAY)  # the link works for 30 days
        assert query["sig"] == [reportweb.signature(key, "2026-10", language, expires)]
        assert reportweb.signature(key, "2026-09", language, expires) != query["sig"][0]
    assert "(the link works for 30 days): https://ops.school.example/reports/monthly/2026-10?lang=en&" in texts["mary"]
    assert "打开完整报告阅读或打印（链接 30 天内有效）：https://" in texts["liu.director"]
    # the rest of the message is as before, the command to print it last
    lines, before = texts["mary"].splitlines(), summary_message(report_of(read(store), checklists, calendar))[1]
    assert [line for line in lines if "https://" not in line] == before.splitlines()
    assert lines[-1].startswith("The full report, to print: schoolops report monthly")


def test_the_link_line_in_three_languages(report: MonthlyReport, store: SqlStore, checklists: dict[str, Checklist],
                                          calendar: SchoolCalendar) -> None:
    link = "https://ops.example/reports/monthly/2026-10?lang=x"
    assert summary_message(report, link, 30)[1].splitlines()[-2] == (
        f"Open the full report to read or print it (the link works for 30 days): {link}")
    traditional = report_of(read(store), checklists, calendar, "zh-TW")
    assert summary_message(traditional, link, 7)[1].splitlines()[-2] == f"開啟完整報告閱讀或列印（連結 7 天內有效）：{link}"


async def test_a_month_before_anything_was_recorded_is_not_sent(store: SqlStore) -> None:
    oncall = parse_oncall(ONCALL)
    escalator = Escalator(store, oncall, link_key=b"k" * 32, public_url="http://collector.example")
    service = MonthlyReportService(store, oncall, RunbookNotices(oncall, escalator), clock=lambda: AS_OF)
    assert await service.tick() == "2026-10"
    assert store.run_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(notifications)).scalar()) == 0
    detail = store.run_sync(lambda c: c.execute(sa.select(audit_log.c.detail).where(
        audit_log.c.action == "report.monthly.sent")).scalar_one())
    assert json.loads(detail)["skipped"]


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, store: SqlStore, ids: dict[str, int]) -> Iterator[Path]:
    (tmp_path / "oncall.yaml").write_text(ONCALL, encoding="utf-8")
    path = tmp_path / "collector.yaml"
    path.write_text(f"data_dir: {tmp_path}\noncall_file: {tmp_path / 'oncall.yaml'}\n", encoding="utf-8")
    yield path


def _run(argv: list[str]) -> int:
    """The command as ``schoolops`` registers it (collector.cli's ``command`` helper, reproduced)."""
    parser = argparse.ArgumentParser(prog="schoolops")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, fn: Any, help_: str, parent: Any = sub) -> argparse.ArgumentParser:
        found: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        found.set_defaults(fn=fn)
        return found

    cli_reports.register(sub, command)
    args = parser.parse_args(argv)
    return int(args.fn(args))


def test_the_command_writes_each_format(config: Path, tmp_path: Path, ids: dict[str, int],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "monthly.html"
    assert _run(["report", "monthly", "--month", "2026-10", "--format", "html", "-o", str(out), "--config",
                 str(config)]) == 0
    page = out.read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in page and "2026年10月运维月报" in page and "88.05%" in page  # the director's language
    assert "99.30%" in page and "刘主任" in page
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert _run(["report", "monthly", "--month", "2026-10", "--format", "json", "--language", "en",
                 "--config", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["incidents"]["total"]["count"] == 10 and data["patrol"]["checklists"][0]["scheduled"] == 18
    assert [e["incident_id"] for e in data["director_escalations"]] == [ids["I10"], ids["I3"], ids["I6"], ids["I4"]]
    assert _run(["report", "monthly", "--month", "2026-10", "--format", "text", "--language", "en",
                 "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("[Monthly report] 2026-10: 10 incidents, 4 major\n\n")


def test_the_default_month_is_the_previous_one_in_the_schools_time_zone(config: Path) -> None:
    from collector import settings as settings_mod

    settings = settings_mod.load(config)
    built = cli_reports.monthly_report(settings, None, "en", at(11, 1, 0, 30))  # 16:30 on 31 October in UTC
    assert (built.month, built.until) == ("2026-10", END)
    with pytest.raises(UsageError, match="YYYY-MM"):
        cli_reports.monthly_report(settings, "2026-13", "en", AS_OF)
    with pytest.raises(UsageError, match="not begun"):
        cli_reports.monthly_report(settings, "2026-12", "en", AS_OF)


def _registered() -> bool:
    from collector.cli import build_parser

    found = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return any("report" in action.choices for action in found)


@pytest.mark.skipif(not _registered(), reason="collector/cli.py does not register cli_reports yet")
def test_python_m_collector_report_monthly(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "monthly.md"
    done = subprocess.run([sys.executable, "-m", "collector", "report", "monthly", "--month", "2026-10", "--format",
                           "md", "--language", "en", "-o", str(out), "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "| **dns (monitored since 2026-10-20)** |" in out.read_text(encoding="utf-8")
