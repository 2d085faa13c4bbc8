"""The patrol record sheet from a run's stored results: totals, order, words in each language, the
comparison, and the Markdown, CSV, JSON, printable HTML and the director's summary made from it."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.patrol.compare import Comparison, Still
from collector.patrol.loader import load_checklists
from collector.patrol.model import Checklist
from collector.patrol.report import (
    CSV_COLUMNS,
    PatrolReport,
    build,
    summary_message,
    to_csv,
    to_html,
    to_json,
    to_markdown,
)
from collector.store.patrol import PatrolResult, PatrolRun

REPO = Path(__file__).resolve().parents[2]
TZ = "Asia/Shanghai"
DAY = 86400.0
START = datetime(2026, 11, 24, 8, 0, tzinfo=ZoneInfo(TZ)).timestamp()
NAMES = {"zhang": "张三", "li": "李四"}


@pytest.fixture(scope="module")
def daily() -> Checklist:
    return load_checklists(REPO / "runbooks" / "patrol")["daily"]


def a_run(**changes: Any) -> PatrolRun:
    values: dict[str, Any] = {"id": 12, "checklist": "daily", "started_by": "schedule", "started_at": START,
                              "finished_at": START + 600, "state": "signed", "signed_by": "zhang",
                              "signed_at": START + 3600, "reviewed_by": None, "reviewed_at": None, "review_note": None}
    return PatrolRun(**{**values, **changes})


def a_result(id: int, section: str, item: str, status: str, *, asset: str = "", key: str = "",
             **changes: Any) -> PatrolResult:
    values: dict[str, Any] = {"id": id, "run_id": 12, "section": section, "item": item, "asset": asset, "key": key,
                              "status": status, "value": None, "evidence": "", "reason": "", "handling": "",
                              "handler": None, "note": None, "fault": None, "at": START + id}
    return PatrolResult(**{**values, **changes})


# Stored in the order the run made them, not the checklist's: the report puts them in order.
RESULTS = [
    a_result(1, "servers", "disk-usage", "abnormal", asset="srv-1", key="/var", value=91.2,
             evidence="/var: 91.2 % (standard: at most 85)", handling="recorded", handler="li",
             note="cleanup planned"),
    a_result(2, "servers", "disk-usage", "normal", asset="srv-1", key="/", value=40.0,
             evidence="/: 40 % (standard: at most 85)"),
    a_result(3, "server-room", "room-humidity", "normal", handler="zhang", note="55 %"),
    a_result(4, "server-room", "room-temperature", "abnormal", asset="room-sensor", value=29.0,
             evidence="29 °C (standard: at most 27)", handling="handled", handler="zhang"),
    a_result(5, "server-room", "room-safety", "pending"),
    a_result(6, "services", "http-status", "not_checked", asset="www", reason="the asset's report has no http.status"),
    a_result(7, "servers", "memory-usage", "normal", asset="srv-1", value=52.0, evidence="52 % (standard: at most 90)"),
]
COMPARISON = Comparison(
    previous_run=11,
    new_abnormal=[("disk-usage", "srv-1", "/var")],
    recovered=[("memory-usage", "srv-1", "")],
    still_abnormal=[Still(("room-temperature", "room-sensor", ""), START - 3 * DAY, 3)],
)


def report_of(daily: Checklist, language: str = "zh-CN", results: list[PatrolResult] | None = None,
              comparison: Comparison | None = COMPARISON, **run: Any) -> PatrolReport:
    return build(daily, a_run(**run), RESULTS if results is None else results, comparison, language=language, tz=TZ,
                 names=NAMES)


# --- the report ---------------------------------------------------------------------------------


def test_totals_count_each_status_and_the_pass_rate_is_normal_among_the_judged(daily: Checklist) -> None:
    totals = report_of(daily).totals
    assert (totals.normal, totals.abnormal, totals.not_checked, totals.pending) == (3, 2, 1, 1)
    assert totals.pass_rate == pytest.approx(3 / 5)  # not checked and to fill in are not judged

    only_unjudged = [r for r in RESULTS if r.status in ("pending", "not_checked")]
    assert report_of(daily, results=only_unjudged).totals.pass_rate is None
    assert report_of(daily, results=[]).totals.pass_rate is None


def test_sections_and_rows_follow_the_checklist_and_items_it_no_longer_has_come_last(daily: Checklist) -> None:
    retired = a_result(8, "old-section", "retired-item", "normal", asset="srv-9")
    report = report_of(daily, results=[*RESULTS, retired])

    assert [s.id for s in report.sections] == ["server-room", "servers", "services", "old-section"]
    room, servers, _, old = report.sections
    assert [r.result.item for r in room.rows] == ["room-temperature", "room-humidity", "room-safety"]
    assert [(r.result.item, r.result.key) for r in servers.rows] == [
        ("disk-usage", "/var"), ("disk-usage", "/"), ("memory-usage", "")]  # stored order within an item
    assert old.title == "old-section" and old.rows[0].check == "retired-item" and old.rows[0].standard == ""
    assert servers.rows[0].limit == "at most 85" and room.rows[1].limit == ""  # a manual item has no limit


@pytest.mark.parametrize(("language", "words"), [
    ("en", {"title": "Daily patrol", "section": "Server room environment", "abnormal": "Abnormal",
            "normal": "Normal", "pending": "To fill in", "not_checked": "Not checked", "handled": "Handled",
            "recorded": "Recorded and reported", "check": "Server room temperature",
            "state": "Signed, not reviewed yet"}),
    ("zh-CN", {"title": "日常巡检", "section": "机房环境", "abnormal": "异常", "normal": "正常", "pending": "待填写",
               "not_checked": "未检查", "handled": "已处理", "recorded": "已记录并上报", "check": "机房温度",
               "state": "已签字，待审核"}),
    ("zh-TW", {"title": "日常巡檢", "section": "機房環境", "abnormal": "異常", "normal": "正常", "pending": "待填寫",
               "not_checked": "未檢查", "handled": "已處理", "recorded": "已記錄並上報",
               "check": "机房温度",  # the checklist has no zh-TW for it: zh-CN rather than English
               "state": "已簽字，待審核"}),
])
def test_texts_are_in_the_readers_language(daily: Checklist, language: str, words: dict[str, str]) -> None:
    report = report_of(daily, language)
    assert report.language == language and report.title == words["title"]
    assert report.sections[0].title == words["section"] and report.state_text == words["state"]
    rows = {(r.result.item, r.result.key): r for s in report.sections for r in s.rows}
    temperature = rows[("room-temperature", "")]
    assert temperature.check == words["check"] and temperature.status_text == words["abnormal"]
    assert temperature.handling_text == words["handled"] and temperature.handler_name == "张三"
    assert rows[("disk-usage", "/var")].handling_text == words["recorded"]
    assert rows[("room-humidity", "")].status_text == words["normal"]
    assert rows[("room-safety", "")].status_text == words["pending"]
    assert rows[("http-status", "")].status_text == words["not_checked"]


def test_the_head_has_the_date_in_the_time_zone_and_the_signatures_by_name(daily: Checklist) -> None:
    late = datetime(2026, 11, 23, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()  # already the 24th in Shanghai
    report = report_of(daily, started_at=late, state="reviewed", reviewed_by="director", reviewed_at=late + DAY)
    assert report.date == "2026-11-24"
    assert (report.patroller, report.reviewer) == ("张三", "director")  # no name known: the id

    unsigned = report_of(daily, state="done", signed_by=None, signed_at=None)
    assert (unsigned.patroller, unsigned.reviewer) == ("—", "—")


def test_the_comparison_names_the_items_and_how_long_they_stay_abnormal(daily: Checklist) -> None:
    report = report_of(daily, "en")
    assert [(c.kind, c.check, c.asset, c.key) for c in report.changes] == [
        ("new", "Disk space used, by filesystem", "srv-1", "/var"),
        ("recovered", "Memory used", "srv-1", ""),
        ("still", "Server room temperature", "room-sensor", ""),
    ]
    markdown = to_markdown(report)
    assert "## Compared with the previous patrol (#11)" in markdown
    assert "- Newly abnormal: Disk space used, by filesystem (srv-1 /var)" in markdown
    assert "- Recovered: Memory used (srv-1)" in markdown
    assert "- Still abnormal: Server room temperature (room-sensor): 3 days, since 2026-11-21" in markdown

    assert "持续异常：机房温度（room-sensor）：已 3 天（自 2026-11-21 起）" in to_markdown(report_of(daily))
    first = report_of(daily, "en", comparison=None)
    assert first.changes == () and "No earlier patrol to compare with." in to_markdown(first)
    unchanged = report_of(daily, "en", comparison=Comparison(previous_run=11))
    assert "No change." in to_markdown(unchanged)


# --- renderings ---------------------------------------------------------------------------------


def test_markdown_has_the_head_a_table_per_section_and_the_totals(daily: Checklist) -> None:
    markdown = to_markdown(report_of(daily))
    assert markdown.startswith("# 日常巡检记录表\n")
    assert "- 日期：2026-11-24" in markdown and "- 巡检人：张三（2026-11-24 09:00 签字）" in markdown
    assert "- 审核人：—" in markdown
    assert markdown.index("## 1. 机房环境") < markdown.index("## 2. 服务器") < markdown.index("## 3. 网站与业务系统")
    assert "| 检查项目 | 对象 | 检查标准 | 检查结果 | 正常/异常 | 处理情况 | 处理人 | 备注 |" in markdown
    assert ("| 各文件系统磁盘使用率 | srv-1 /var | 不超过 85% | /var: 91.2 % (standard: at most 85) | **× 异常** "
            "| 已记录并上报 | 李四 | cleanup planned |") in markdown
    assert "未检查原因：the asset's report has no http.status" in markdown
    assert "合格率：60%（正常 3 项，异常 2 项，未检查 1 项，待填写 1 项）" in markdown

    piped = a_result(9, "servers", "load", "normal", asset="srv-1", note="a | b\nnext line")
    assert "a \\| b next line" in to_markdown(report_of(daily, results=[piped]))  # one table row still


def test_csv_is_one_row_per_result_with_codes_and_parses_back(daily: Checklist) -> None:
    text = to_csv(report_of(daily, "zh-CN"))
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    assert len(rows) == len(RESULTS)
    disk = next(r for r in rows if r["key"] == "/var")
    assert disk == {"section": "servers", "item": "disk-usage", "check": "各文件系统磁盘使用率",
                    "standard": "不超过 85%", "asset": "srv-1", "key": "/var", "status": "abnormal", "value": "91.2",
                    "evidence": "/var: 91.2 % (standard: at most 85)", "reason": "", "handling": "recorded",
                    "handler": "li", "note": "cleanup planned"}
    assert {r["status"] for r in rows} == {"normal", "abnormal", "not_checked", "pending"}  # codes, in any language
    pending = next(r for r in rows if r["item"] == "room-safety")
    assert (pending["value"], pending["handler"], pending["note"]) == ("", "", "")


def test_json_has_everything_with_codes_and_offset_times_and_round_trips(daily: Checklist) -> None:
    data = to_json(report_of(daily, "zh-TW"))
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert data["id"] == 12 and data["checklist"] == "daily" and data["language"] == "zh-TW"
    assert data["started_at"] == "2026-11-24T08:00:00+08:00" and data["signed_at"] == "2026-11-24T09:00:00+08:00"
    assert data["reviewed_at"] is None and data["signed_by"] == "zhang" and data["state"] == "signed"
    assert [s["id"] for s in data["sections"]] == ["server-room", "servers", "services"]
    disk = data["sections"][1]["rows"][0]
    assert (disk["status"], disk["handling"], disk["handler"], disk["value"]) == ("abnormal", "recorded", "li", 91.2)
    assert disk["at"] == "2026-11-24T08:00:01+08:00" and disk["limit"] == "at most 85"
    assert data["totals"] == {"normal": 3, "abnormal": 2, "not_checked": 1, "pending": 1, "pass_rate": 0.6}
    comparison = data["comparison"]
    assert comparison["previous_run"] == 11
    assert [(c["item"], c["asset"], c["key"]) for c in comparison["new_abnormal"]] == [("disk-usage", "srv-1", "/var")]
    assert comparison["recovered"][0]["item"] == "memory-usage"
    still = comparison["still_abnormal"][0]
    assert (still["item"], still["days"], still["since"]) == ("room-temperature", 3, "2026-11-21T08:00:00+08:00")


class _Checker(HTMLParser):
    """Every element closed in order (void elements aside); the tags and the text seen."""

    VOID = frozenset({"meta", "br", "col", "img", "hr", "input", "link"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[tuple[str | None, list[str]]] = []  # (class, texts) of each table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append((dict(attrs).get("class"), []))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.rows and "tr" in self.stack:
            self.rows[-1][1].append(data)


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    return checker


def test_html_is_a_printable_a4_sheet_with_abnormal_rows_marked_and_everything_escaped(daily: Checklist) -> None:
    script = a_result(9, "servers", "load", "abnormal", asset="srv-1", value=3.0,
                      evidence='<script>alert("x")</script> & more', note="<b>bold</b>")
    page = to_html(report_of(daily, "zh-CN", results=[*RESULTS, script]))
    checker = _parse(page)

    assert page.startswith("<!DOCTYPE html>") and ("html", {"lang": "zh-CN"}) in checker.tags
    assert "@page { size: A4; margin: 15mm }" in page
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in checker.tags
    assert not {"script", "link", "img", "b"} & {tag for tag, _ in checker.tags}  # no external resources, no injection
    assert "url(" not in page and "@import" not in page and "@font-face" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page

    heads = [[text for text in texts if text.strip()] for _, texts in checker.rows]
    assert ["检查项目", "检查标准", "检查结果", "正常/异常", "处理人", "备注"] in heads
    abnormal = [" ".join(texts) for css, texts in checker.rows if css == "abnormal"]
    assert len(abnormal) == 3 and all("× 异常" in row for row in abnormal)  # a text marker, not only colour
    assert any("srv-1 /var" in row and "已记录并上报" in row and "李四" in row for row in abnormal)
    normal = [" ".join(texts) for css, texts in checker.rows if css is None and "√ 正常" in " ".join(texts)]
    assert normal and not any("×" in row for row in normal)
    assert "与上次巡检（#11）对比" in page and "合格率：" in page


def test_html_leaves_a_line_to_sign_on_until_signed(daily: Checklist) -> None:
    unsigned = _parse(to_html(report_of(daily, "en", state="done", signed_by=None, signed_at=None)))
    assert sum(1 for tag, attrs in unsigned.tags if attrs.get("class") == "blank") == 2

    reviewed = report_of(daily, "en", state="reviewed", reviewed_by="li", reviewed_at=START + 7200,
                         review_note="Replace the <old> UPS battery")
    page = to_html(reviewed)
    checker = _parse(page)
    assert not any(attrs.get("class") == "blank" for _, attrs in checker.tags)
    assert "张三, signed 2026-11-24 09:00" in page and "李四, reviewed 2026-11-24 10:00" in page
    assert "Replace the &lt;old&gt; UPS battery" in page


# --- the director's summary ---------------------------------------------------------------------


def test_the_directors_summary_in_chinese(daily: Checklist) -> None:
    subject, text = summary_message(report_of(daily, "zh-CN"))
    assert subject == "【巡检】2026-11-24 日常巡检：2 项异常"
    assert text.splitlines() == [
        "日期：2026-11-24（巡检编号 #12）",
        "合格率：60%（正常 3 项，异常 2 项，未检查 1 项，待填写 1 项）",
        "新增异常：各文件系统磁盘使用率（srv-1 /var）",
        "连续多日异常：机房温度（room-sensor）已 3 天",
        "较上次巡检已恢复：1 项",
        "已由 张三 于 2026-11-24 09:00 签字；尚未审核。",
    ]


def test_the_directors_summary_in_english(daily: Checklist) -> None:
    subject, text = summary_message(report_of(daily, "en", state="reviewed", reviewed_by="li",
                                              reviewed_at=START + 7200))
    assert subject == "[Patrol] Daily patrol 2026-11-24: 2 abnormal"
    assert "Pass rate: 60% (normal 3, abnormal 2, not checked 1, to fill in 1)" in text
    assert "Newly abnormal: Disk space used, by filesystem (srv-1 /var)" in text
    assert "Abnormal for several days: Server room temperature (room-sensor) for 3 days" in text
    assert text.endswith("Signed by 张三 at 2026-11-24 09:00; reviewed by 李四 at 2026-11-24 10:00.")


def test_the_summary_names_only_long_streaks_counts_the_rest_and_says_when_unsigned(daily: Checklist) -> None:
    new = [(f"item-{n}", f"srv-{n}", "") for n in range(7)]
    comparison = Comparison(previous_run=11, new_abnormal=new,
                            still_abnormal=[Still(("load", "srv-1", ""), START - DAY, 1)])
    subject, text = summary_message(report_of(daily, "en", results=[RESULTS[2]], comparison=comparison,
                                              state="done", signed_by=None, signed_at=None))
    assert subject == "[Patrol] Daily patrol 2026-11-24: nothing abnormal"  # counted from this run's results
    assert "item-4 (srv-4) (+2 more)" in text and "item-5" not in text
    assert "several days" not in text  # abnormal since yesterday only
    assert "Pass rate: 100%" in text and text.endswith("Not signed yet.")


def test_the_evidence_says_what_the_report_knows_beside_the_number() -> None:
    from collector.patrol.context import describe
    from schoolops.wire import SCHEMA_VERSION, FileFreshness, Filesystem, Interface, ProbeResult, Report

    report = Report(
        schema=SCHEMA_VERSION, asset="web-01", stream="a" * 32, seq=1, collected_at=1.0, interval=60, agent_version="t",
        files=[FileFreshness(name="nightly", path="/srv/backup", max_age_seconds=93600, count=2, fresh=False,
                             newest_age_seconds=3 * 86400, newest_file="/srv/backup/db.sql.gz"),
               FileFreshness(name="empty", path="/srv/none", max_age_seconds=5400, count=0, fresh=False)],
        filesystems=[Filesystem(device="/dev/sda1", mountpoint="/", fstype="ext4", size=4 * 1024**3, free=1024**3,
                                avail=900 * 1024**2, files=10, files_free=5)],
        interfaces=[Interface(index=3, name="Gi0/3", alias="library", admin_up=True, oper_up=False)],
        probes=[ProbeResult(name="home", kind="http", target="https://www.school.test/", up=False, status=500,
                            error="HTTP 500")])
    assert describe(report, "file.fresh", "nightly") == "newest /srv/backup/db.sql.gz, 3.0 days old (at most 26 h)"
    assert describe(report, "file.age_seconds", "empty") == "no matching file in /srv/none (at most 90 min)"
    assert describe(report, "filesystem.used_percent", "/") == "3.0 GiB used of 4.0 GiB, 900.0 MiB free"
    assert describe(report, "interface.oper_down", "Gi0/3") == "library (admin up, oper down)"
    assert describe(report, "http.status", "home") == "http https://www.school.test/: HTTP 500"
    assert describe(report, "memory.used_percent", "") == ""
    assert describe(report, "file.fresh", "not-there") == ""
