"""Messages in the reader's language: what, where, since when, how severe and why, what to do."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from collector.domain import FaultType, Severity
from collector.incidents.lifecycle import IncidentState
from collector.notify import messages
from collector.notify.messages import (
    PHRASES,
    channel_broken,
    closing_summary,
    digest,
    page,
    progress_report,
    security_clock,
)
from collector.notify.model import Language, Message, MessageKind
from collector.store.incidents import Event, FaultRecord, IncidentRecord

EN, CN, TW = Language.EN, Language.ZH_CN, Language.ZH_TW
TZ = "Asia/Shanghai"
ACK = "https://ops.school.example/ack/abc123"


def at(local: str, tz: str = TZ) -> float:
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp()


REASON = ("P3 from rule filesystem_usage (filesystem /var on web-01 is 96% full (P3 at 90%)); raised to P2: core asset; "
          "not raised (at most 2 levels above P3): lasting 5h 3m (over 4h)")
FAULT = FaultRecord(
    fingerprint="filesystem_usage|web-01|/var", rule="filesystem_usage", asset="web-01", key="/var", type=FaultType.CAPACITY,
    base_severity=Severity.P3, severity=Severity.P2, summary="filesystem /var on web-01 is 96% full (P3 at 90%)", reason=REASON,
    value=96.2, active=True, since=at("2026-10-02 09:05"), fired_at=at("2026-10-02 09:06"), cleared_at=None, incident_id=12,
    consequence_of=None,
)
INCIDENT = IncidentRecord(
    id=12, fingerprint="web-01|filesystem_usage", asset="web-01", site="main-campus", rule="filesystem_usage",
    type=FaultType.CAPACITY, severity=Severity.P2, title=f"web-01: {FAULT.summary}", reason=REASON, state=IncidentState.OPEN,
    version=1, owner=None, opened_at=at("2026-10-02 09:06"), acknowledged_at=None, acknowledged_by=None, resolved_at=None,
    resolved_by=None, reviewed_at=None, reviewed_by=None, closed_at=None, closed_by=None, all_cleared_at=None, rca=None,
    hold=None, notify_since=at("2026-10-02 09:06"),
)
OPENED = [Event(1, 12, at("2026-10-02 09:06"), "opened", "schoolops", FAULT.summary),
          Event(2, 12, at("2026-10-02 09:06"), "notify", "schoolops", "notify: P2")]
ACKED = replace(INCIDENT, state=IncidentState.ACKNOWLEDGED, owner="wang.wei", acknowledged_by="wang.wei",
                acknowledged_at=at("2026-10-02 09:15"))
ACKED_TIMELINE = [*OPENED, Event(3, 12, at("2026-10-02 09:15"), "acknowledge", "wang.wei", "acknowledged by wang.wei"),
                  Event(4, 12, at("2026-10-02 09:20"), "note", "wang.wei", "rotating /var/log/app now")]
RESOLVED = replace(ACKED, state=IncidentState.RESOLVED, resolved_at=at("2026-10-02 10:30"), resolved_by="wang.wei")
RESOLVED_TIMELINE = [*ACKED_TIMELINE, Event(5, 12, at("2026-10-02 10:30"), "resolve", "wang.wei", "resolved by wang.wei")]
NAMES = {"wang.wei": "王偉"}

# what each language must say about the incident above
WORDS = {
    EN: {"severity": "P2 major", "P1": "P1 critical", "what": "filesystem /var nearly full", "why": "a core system: raised to P2 major",
         "acked": "王偉 acknowledged", "progress": "Progress report 3", "resolved": "Resolved", "lasted": "1 h 25 min",
         "director_p1": "emergency plan", "backup": "backup", "reminder": "[Reminder]", "security": "report upward by"},
    CN: {"severity": "P2 重大", "P1": "P1 特别重大", "what": "磁盘 /var 将满", "why": "核心系统，升为 P2 重大", "acked": "王偉 已确认",
         "progress": "第 3 次进展报告", "resolved": "已解决", "lasted": "1 小时 25 分钟", "director_p1": "应急预案",
         "backup": "备班", "reminder": "【提醒】", "security": "上报"},
    TW: {"severity": "P2 重大", "P1": "P1 特別重大", "what": "磁碟 /var 將滿", "why": "核心系統，升為 P2 重大", "acked": "王偉 已確認",
         "progress": "第 3 次進展報告", "resolved": "已解決", "lasted": "1 小時 25 分鐘", "director_p1": "應急預案",
         "backup": "備班", "reminder": "【提醒】", "security": "上報"},
}
# characters that exist only in one script: a zh-TW message has none of the Simplified ones, and vice versa
SIMPLIFIED_ONLY = "盘确认处报时间级进将满题类统发无复备关闭须规应预启动会续汇项条经记录则态"
TRADITIONAL_ONLY = "碟確認處報時間級進將滿題類統發無復備關閉須規應預啟動會續匯項條經記錄則態"
LANGS = [EN, CN, TW]


def all_kinds(language: Language) -> list[Message]:
    p1 = replace(ACKED, severity=Severity.P1)
    return [
        page(INCIDENT, [FAULT], OPENED, language=language, tz=TZ, ack_url=ACK, step="primary"),
        page(INCIDENT, [FAULT], OPENED, language=language, tz=TZ, ack_url=ACK, reminder=True, step="backup"),
        page(p1, [FAULT], ACKED_TIMELINE, language=language, tz=TZ, ack_url=None, step="director", names=NAMES),
        progress_report(ACKED, [FAULT], ACKED_TIMELINE, language=language, tz=TZ, number=3, names=NAMES),
        closing_summary(RESOLVED, [replace(FAULT, active=False)], RESOLVED_TIMELINE, language=language, tz=TZ, names=NAMES),
        security_clock(replace(INCIDENT, type=FaultType.SECURITY), deadline=at("2026-10-02 13:06"), language=language, tz=TZ,
                       faults=[FAULT]),
        channel_broken("wecom-ops", "HTTP 404 from the robot: invalid webhook key", language=language),
    ]


def test_every_language_has_every_phrase() -> None:
    assert set(PHRASES) == set(Language)
    assert PHRASES[EN].keys() == PHRASES[CN].keys() == PHRASES[TW].keys()


@pytest.mark.parametrize("language", LANGS)
def test_a_page_says_what_where_since_how_severe_why_and_what_to_do(language: Language) -> None:
    words = WORDS[language]
    msg = page(INCIDENT, [FAULT], OPENED, language=language, tz=TZ, ack_url=ACK, step="primary")
    assert msg.kind is MessageKind.PAGE and msg.language is language and msg.ack_url == ACK
    assert msg.severity is Severity.P2 and msg.incident_id == 12
    assert "web-01" in msg.subject and words["severity"] in msg.subject and words["what"] in msg.subject
    for expected in ("web-01", "main-campus", "2026-10-02 09:05", words["severity"], words["what"], words["why"], ACK, "#12"):
        assert expected in msg.text, expected


def test_subjects_read_as_people_write_them() -> None:
    subjects = {lang: page(INCIDENT, [FAULT], OPENED, language=lang, tz=TZ, ack_url=ACK).subject for lang in LANGS}
    assert subjects[TW] == "【P2 重大】web-01：磁碟 /var 將滿（已用 96%）"
    assert subjects[CN] == "【P2 重大】web-01：磁盘 /var 将满（已用 96%）"
    assert subjects[EN] == "[P2 major] web-01: filesystem /var nearly full (96% used)"


@pytest.mark.parametrize("language", LANGS)
def test_every_kind_in_every_language(language: Language) -> None:
    words = WORDS[language]
    first, reminder, director, progress, summary, security, broken = all_kinds(language)
    for msg in (first, reminder, director, progress, summary, security, broken):
        assert msg.language is language
        assert "\n" not in msg.subject and 0 < len(msg.subject) <= messages.MAX_SUBJECT
    for msg in (first, reminder, director, progress, summary, security):
        severity = words["P1"] if msg.severity is Severity.P1 else words["severity"]
        assert "web-01" in msg.subject and severity in msg.subject and words["why"] in msg.text
    assert reminder.kind is MessageKind.REMINDER and words["reminder"] in reminder.subject and ACK in reminder.text
    assert words["backup"] in reminder.text
    assert words["director_p1"] in director.text and ACK not in director.text
    assert words["acked"] in director.text and "rotating /var/log/app now" in director.text
    assert progress.kind is MessageKind.PROGRESS and words["progress"] in progress.subject and "王偉" in progress.text
    assert summary.kind is MessageKind.SUMMARY and words["resolved"] in summary.subject and words["lasted"] in summary.text
    assert security.kind is MessageKind.SECURITY_CLOCK and words["security"] in security.subject
    assert "10-02 13:06" in security.subject and "2026-10-02 13:06" in security.text
    assert broken.kind is MessageKind.CHANNEL_BROKEN and "wecom-ops" in broken.subject and "invalid webhook key" in broken.text


@pytest.mark.parametrize(("language", "forbidden", "required"), [
    (TW, SIMPLIFIED_ONLY, ["磁碟", "確認", "處理"]),
    (CN, TRADITIONAL_ONLY, ["磁盘", "确认", "处理"]),
])
def test_traditional_and_simplified_are_each_their_own(language: Language, forbidden: str, required: list[str]) -> None:
    kinds = all_kinds(language)
    text = "\n".join(f"{m.subject}\n{m.text}" for m in kinds).replace("王偉", "")  # a name is written as its owner writes it
    assert [c for c in forbidden if c in text] == []
    assert all(word in text for word in required)
    assert [c for c in forbidden if c in "".join(PHRASES[language].values())] == []


def test_times_are_shown_in_the_given_timezone() -> None:
    shanghai = page(INCIDENT, [FAULT], OPENED, language=EN, tz="Asia/Shanghai", ack_url=None)
    london = page(INCIDENT, [FAULT], OPENED, language=EN, tz="Europe/London", ack_url=None)
    assert "Since: 2026-10-02 09:05" in shanghai.text
    assert "Since: 2026-10-02 02:05" in london.text  # BST, UTC+1


@pytest.mark.parametrize(("reason", "language", "why"), [
    ("P4 from rule memory_usage (memory on web-01 is 91% used); no adjustment", EN, "the check rates it P4 general"),
    ("P3 from rule x (s); lowered to P4: weekend", EN, "the check rates it P3 significant; weekend: lowered to P4 general"),
    ("P3 from rule x (s); lowered to P4: normal-tier asset", CN, "检查规则定为 P3 较大；普通系统，降为 P4 一般"),
    ("P3 from rule x (s); raised to P2: 3 of 4 assets in site north failing", EN,
     "3 of 4 systems at north failing: raised to P2 major"),
    ("P3 from rule x (s); raised to P2: 2 of 3 assets under the same parent failing", TW,
     "同一上級設備下共 3 台中 2 台故障，升為 P2 重大"),
    ("P2 from rule x (s); raised to P1: exam day (期末考) on an asset that serves teaching", TW,
     "考試日（期末考），升為 P1 特別重大"),
    ("P3 from rule x (s); raised to P2: class hours on a core asset", CN, "上课时间，升为 P2 重大"),
    ("P3 from rule x (s); lowered to P4: holiday (National Day)", EN, "holiday (National Day): lowered to P4 general"),
    ("P3 from rule x (s); raised to P2: lasting 1d 2h (over 4h)", CN, "已持续 1 天 2 小时，升为 P2 重大"),
    ("P3 from rule manual_report (printer jammed)", TW, "人工報告為 P3 較大"),
    ("set by hand", EN, "set by hand"),  # a reason this module cannot read is kept as written
])
def test_the_classification_reason_in_plain_words(reason: str, language: Language, why: str) -> None:
    msg = page(replace(INCIDENT, reason=reason), [FAULT], OPENED, language=language, tz=TZ, ack_url=None)
    line = next(line for line in msg.text.splitlines() if why in line)
    assert line.endswith(why)


def test_a_rule_without_a_phrase_keeps_its_summary_and_subjects_stay_one_short_line() -> None:
    summary = "打印機卡紙，\n三樓教師辦公室 " + "很長的說明" * 40
    fault = replace(FAULT, rule="school_printer", key="", summary=summary)
    incident = replace(INCIDENT, rule="school_printer", title=f"web-01: {summary}")
    for language in LANGS:
        msg = page(incident, [fault], OPENED, language=language, tz=TZ, ack_url=ACK)
        assert "打印機卡紙，" in msg.subject and "\n" not in msg.subject and len(msg.subject) == messages.MAX_SUBJECT
        assert msg.subject.endswith("…") and summary in msg.text


def test_without_a_link_the_page_gives_the_command() -> None:
    msg = page(INCIDENT, [FAULT], OPENED, language=TW, tz=TZ, ack_url=None)
    assert "schoolops incidents ack 12" in msg.text and msg.ack_url is None


def test_an_acknowledged_incident_asks_its_owner_to_resolve_it() -> None:
    msg = page(ACKED, [FAULT], ACKED_TIMELINE, language=EN, tz=TZ, ack_url=None, reminder=True, names=NAMES)
    assert "Reminder: 王偉 acknowledged this but it is not resolved yet." in msg.text
    assert "schoolops incidents resolve 12" in msg.text


def test_a_closing_summary_asks_for_the_root_cause_analysis_of_a_major_fault() -> None:
    due = closing_summary(RESOLVED, [FAULT], RESOLVED_TIMELINE, language=CN, tz=TZ)
    assert "原因分析" in due.text and "预防措施" in due.text
    done = closing_summary(replace(RESOLVED, rca="日志未轮转"), [FAULT], RESOLVED_TIMELINE, language=CN, tz=TZ)
    assert "原因分析：日志未轮转" in done.text


def test_consequences_are_named_as_also_affected() -> None:
    child = replace(FAULT, fingerprint="asset_silent|pc-12|", rule="asset_silent", asset="pc-12", key="", value=600.0,
                    consequence_of=FAULT.fingerprint)
    msg = page(INCIDENT, [FAULT, child], OPENED, language=EN, tz=TZ, ack_url=None)
    assert "Also affected: pc-12" in msg.text


@pytest.mark.parametrize("language", LANGS)
def test_a_digest_counts_and_keeps_every_ack_link(language: Language) -> None:
    links = [f"{ACK}/{n}" for n in range(3)]
    merged = [page(replace(INCIDENT, id=20 + n, asset=f"web-0{n}"), [replace(FAULT, asset=f"web-0{n}")], OPENED,
                   language=language, tz=TZ, ack_url=link) for n, link in enumerate(links)]
    merged.append(channel_broken("sms", "401 unauthorized", language=language))
    merged.append(page(replace(INCIDENT, id=30, severity=Severity.P1), [FAULT], OPENED, language=language, tz=TZ, ack_url=None))
    msg = digest(merged, language=language)
    assert msg.kind is MessageKind.DIGEST and msg.language is language and msg.severity is Severity.P1
    assert msg.ack_url is None and msg.incident_id is None
    assert "5" in msg.text.splitlines()[0] and "5" in msg.subject
    assert all(msg.text.count(link + "\n") + msg.text.endswith(link) >= 1 for link in links)
    for item in merged:
        assert item.subject in msg.text
    assert "\n" not in msg.subject and len(msg.subject) <= messages.MAX_SUBJECT
