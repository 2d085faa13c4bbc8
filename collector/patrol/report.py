"""The patrol record sheet (日常巡检记录表) of a run, from its stored results: pure functions, no I/O, no clock.

:func:`build` makes a :class:`PatrolReport` in the reader's language and time zone; :func:`to_markdown`,
:func:`to_csv`, :func:`to_json` and :func:`to_html` render it; :func:`summary_message` is the director's
few lines. The HTML is a printable A4 sheet laid out like a school's paper record, readable on a phone too;
abnormal rows are bold, coloured and marked "×", so that the marking survives black-and-white printing.
People read words in en, zh-CN or zh-TW; the CSV and JSON keep codes and ids, times in ISO 8601 with offset.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from collector.patrol.compare import Comparison, Identity
from collector.patrol.judge import standard_text
from collector.patrol.model import LANGUAGES, Checklist, MetricMethod, SnmpGetMethod, text_for
from collector.store.logbook import AssetLog
from collector.store.patrol import PatrolResult, PatrolRun

DASH = "—"
SEVERAL_DAYS = 2  # still abnormal this many days or more: named in the director's summary
MAX_NAMED = 5  # items named in one line of the summary; the rest are counted
CSV_COLUMNS = ("section", "item", "check", "standard", "asset", "key", "status", "value", "evidence", "reason",
               "handling", "handler", "note")

_ROWS: dict[str, tuple[str, str, str]] = {  # key: (en, zh-CN, zh-TW)
    "status.normal": ("Normal", "正常", "正常"),
    "status.abnormal": ("Abnormal", "异常", "異常"),
    "status.not_checked": ("Not checked", "未检查", "未檢查"),
    "status.pending": ("To fill in", "待填写", "待填寫"),
    "handling.handled": ("Handled", "已处理", "已處理"),
    "handling.recorded": ("Recorded and reported", "已记录并上报", "已記錄並上報"),
    "state.running": ("In progress", "进行中", "進行中"),
    "state.done": ("Finished, not signed yet", "已完成，待签字", "已完成，待簽字"),
    "state.signed": ("Signed, not reviewed yet", "已签字，待审核", "已簽字，待審核"),
    "state.reviewed": ("Reviewed", "已审核", "已審核"),
    "sheet": ("{title} record", "{title}记录表", "{title}記錄表"),
    "date": ("Date", "日期", "日期"),
    "started": ("Started", "开始时间", "開始時間"),
    "finished": ("Finished", "完成时间", "完成時間"),
    "state": ("State", "状态", "狀態"),
    "patroller": ("Patroller", "巡检人", "巡檢人"),
    "reviewer": ("Reviewer", "审核人", "審核人"),
    "signed_at": ("{who}, signed {time}", "{who}（{time} 签字）", "{who}（{time} 簽字）"),
    "reviewed_at": ("{who}, reviewed {time}", "{who}（{time} 审核）", "{who}（{time} 審核）"),
    "review_note": ("Review note", "审核意见", "審核意見"),
    "col.item": ("Item", "检查项目", "檢查項目"),
    "col.asset": ("Asset", "对象", "對象"),
    "col.standard": ("Standard", "检查标准", "檢查標準"),
    "col.result": ("Result", "检查结果", "檢查結果"),
    "col.status": ("Normal / abnormal", "正常/异常", "正常/異常"),
    "col.handling": ("Handling", "处理情况", "處理情況"),
    "col.handler": ("Handler", "处理人", "處理人"),
    "col.note": ("Note", "备注", "備註"),
    "reason": ("Not checked: {reason}", "未检查原因：{reason}", "未檢查原因：{reason}"),
    "compare": ("Compared with the previous patrol (#{run})", "与上次巡检（#{run}）对比", "與上次巡檢（#{run}）對比"),
    "compare.none": ("No earlier patrol to compare with.", "没有可对比的上次巡检。", "沒有可對比的上次巡檢。"),
    "compare.same": ("No change.", "无变化。", "無變化。"),
    "change.new": ("Newly abnormal", "新增异常", "新增異常"),
    "change.recovered": ("Recovered", "已恢复", "已恢復"),
    "change.still": ("Still abnormal", "持续异常", "持續異常"),
    "days": ("{days} days, since {since}", "已 {days} 天（自 {since} 起）", "已 {days} 天（自 {since} 起）"),
    "since": ("since {since}", "自 {since} 起", "自 {since} 起"),
    "totals": ("Totals", "统计", "統計"),
    "logs": ("Log lines of note, {start} to {end}", "值得注意的日志（{start} 至 {end}）", "值得注意的日誌（{start} 至 {end}）"),
    "logs.none": ("None.", "无。", "無。"),
    "logs.asset": ("{asset}: {count} lines ({sources})", "{asset}：{count} 条（{sources}）", "{asset}：{count} 條（{sources}）"),
    "line.logs": ("Log lines of note: {items}", "值得注意的日志：{items}", "值得注意的日誌：{items}"),
    "counts": ("normal {normal}, abnormal {abnormal}, not checked {not_checked}, to fill in {pending}",
               "正常 {normal} 项，异常 {abnormal} 项，未检查 {not_checked} 项，待填写 {pending} 项",
               "正常 {normal} 項，異常 {abnormal} 項，未檢查 {not_checked} 項，待填寫 {pending} 項"),
    "pass_rate": ("Pass rate: {rate} ({counts})", "合格率：{rate}（{counts}）", "合格率：{rate}（{counts}）"),
    "named": ("{check} ({where})", "{check}（{where}）", "{check}（{where}）"),
    "join": ("; ", "；", "；"),
    "colon": (": ", "：", "："),
    "more": (" (+{n} more)", "（另有 {n} 项）", "（另有 {n} 項）"),
    "subject": ("[Patrol] {title} {date}: {count} abnormal", "【巡检】{date} {title}：{count} 项异常", "【巡檢】{date} {title}：{count} 項異常"),
    "subject.ok": ("[Patrol] {title} {date}: nothing abnormal", "【巡检】{date} {title}：无异常", "【巡檢】{date} {title}：無異常"),
    "line.date": ("Date: {date} (patrol #{run})", "日期：{date}（巡检编号 #{run}）", "日期：{date}（巡檢編號 #{run}）"),
    "line.new": ("Newly abnormal: {items}", "新增异常：{items}", "新增異常：{items}"),
    "line.still": ("Abnormal for several days: {items}", "连续多日异常：{items}", "連續多日異常：{items}"),
    "line.still_item": ("{what} for {days} days", "{what}已 {days} 天", "{what}已 {days} 天"),
    "line.recovered": ("Recovered since the previous patrol: {count}", "较上次巡检已恢复：{count} 项", "較上次巡檢已恢復：{count} 項"),
    "line.unsigned": ("Not signed yet.", "尚未签字。", "尚未簽字。"),
    "line.signed": ("Signed by {who} at {time}", "已由 {who} 于 {time} 签字", "已由 {who} 於 {time} 簽字"),
    "line.reviewed": ("reviewed by {who} at {time}.", "已由 {who} 于 {time} 审核。", "已由 {who} 於 {time} 審核。"),
    "line.unreviewed": ("not reviewed yet.", "尚未审核。", "尚未審核。"),
}
_MARK = {"normal": "√", "abnormal": "×", "not_checked": "○", "pending": "□"}  # survive black-and-white printing


@dataclass(frozen=True)
class Row:
    """A stored result and what people read of it. ``limit``: the standard as applied ("at most 85") for
    metric and SNMP items, else ""."""

    result: PatrolResult
    check: str
    standard: str  # as the checklist words it
    limit: str
    status_text: str
    handling_text: str
    handler_name: str


@dataclass(frozen=True)
class SectionRows:
    id: str
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Totals:
    normal: int
    abnormal: int
    not_checked: int
    pending: int

    @property
    def pass_rate(self) -> float | None:
        """Normal among the judged (normal + abnormal); None when nothing was judged."""
        judged = self.normal + self.abnormal
        return self.normal / judged if judged else None


@dataclass(frozen=True)
class Change:
    kind: str  # new | recovered | still
    item: str
    asset: str
    key: str
    check: str
    since: float | None = None  # still abnormal: the start of the streak, and whole days since
    days: int | None = None


@dataclass(frozen=True)
class PatrolReport:
    run: PatrolRun
    language: str  # en | zh-CN | zh-TW
    tz: str
    title: str
    date: str  # the day the run started, in tz
    state_text: str
    patroller: str  # who signed, by name; "—" before
    reviewer: str
    sections: tuple[SectionRows, ...]
    totals: Totals
    previous_run: int | None
    changes: tuple[Change, ...]
    logs: tuple[AssetLog, ...] = ()  # per asset, the lines of note in log_period
    log_period: tuple[float, float] | None = None

    def t(self, key: str, **values: object) -> str:
        return _ROWS[key][LANGUAGES.index(self.language)].format(**values)

    def time(self, ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return datetime.fromtimestamp(ts, ZoneInfo(self.tz)).strftime(fmt) if ts is not None else DASH

    def iso(self, ts: float | None) -> str | None:
        return datetime.fromtimestamp(ts, ZoneInfo(self.tz)).isoformat(timespec="seconds") if ts is not None else None


def _word(lang: str, key: str, code: str) -> str:
    return _ROWS[key][LANGUAGES.index(lang)] if key in _ROWS else code


def build(checklist: Checklist, run: PatrolRun, results: list[PatrolResult], comparison: Comparison | None, *,
          language: str, tz: str, names: Mapping[str, str] | None = None, logs: list[AssetLog] | None = None,
          log_period: tuple[float, float] | None = None) -> PatrolReport:
    """The report of ``run``: rows by section in checklist order (results of items the checklist no longer
    has come last, under their stored section), totals, the comparison, and the assets' lines of note in
    ``log_period`` (since the previous patrol). ``names``: person id → name."""
    lang = language if language in LANGUAGES else "zh-CN" if language.lower().startswith("zh") else "en"
    names = names or {}
    order = {item.id: n for n, (_, item) in enumerate(checklist.items())}
    groups: dict[str, list[Row]] = {section.id: [] for section in checklist.sections}
    titles = {section.id: text_for(section.title, lang) for section in checklist.sections}
    for result in sorted(results, key=lambda r: (order.get(r.item, len(order)), r.id)):
        found = checklist.item(result.item)
        groups.setdefault(found[0].id if found else result.section, []).append(_row(result, checklist, lang, names))
    counts = Counter(result.status for result in results)
    comparison = comparison or Comparison(previous_run=None)
    changes = [*(_change("new", i, checklist, lang) for i in comparison.new_abnormal),
               *(_change("recovered", i, checklist, lang) for i in comparison.recovered),
               *(_change("still", s.identity, checklist, lang, s.since, s.days) for s in comparison.still_abnormal)]
    return PatrolReport(
        run=run, language=lang, tz=tz, title=text_for(checklist.title, lang),
        date=datetime.fromtimestamp(run.started_at, ZoneInfo(tz)).strftime("%Y-%m-%d"),
        state_text=_word(lang, f"state.{run.state}", run.state),
        patroller=names.get(run.signed_by, run.signed_by) if run.signed_by else DASH,
        reviewer=names.get(run.reviewed_by, run.reviewed_by) if run.reviewed_by else DASH,
        sections=tuple(SectionRows(sid, titles.get(sid, sid), tuple(rows)) for sid, rows in groups.items() if rows),
        totals=Totals(counts["normal"], counts["abnormal"], counts["not_checked"], counts["pending"]),
        previous_run=comparison.previous_run, changes=tuple(changes), logs=tuple(logs or ()), log_period=log_period)


def _row(result: PatrolResult, checklist: Checklist, lang: str, names: Mapping[str, str]) -> Row:
    found = checklist.item(result.item)
    item = found[1] if found else None
    method = item.method if item else None
    return Row(result, check=text_for(item.check, lang) if item else result.item,
               standard=text_for(item.standard, lang) if item else "",
               limit=standard_text(method) if isinstance(method, (MetricMethod, SnmpGetMethod)) else "",
               status_text=_word(lang, f"status.{result.status}", result.status),
               handling_text=_word(lang, f"handling.{result.handling}", result.handling),
               handler_name=names.get(result.handler or "", result.handler or ""))


def _change(kind: str, identity: Identity, checklist: Checklist, lang: str, since: float | None = None,
            days: int | None = None) -> Change:
    item, asset, key = identity
    found = checklist.item(item)
    return Change(kind, item, asset, key, text_for(found[1].check, lang) if found else item, since, days)


# --- words for people ---------------------------------------------------------------------------


def _where(asset: str, key: str) -> str:
    return " ".join(part for part in (asset, key) if part)


def _named(report: PatrolReport, change: Change) -> str:
    where = _where(change.asset, change.key)
    return report.t("named", check=change.check, where=where) if where else change.check


def _result(report: PatrolReport, row: Row) -> str:
    """What was seen: the evidence (or the value); and why not, when not checked."""
    r = row.result
    value = None if r.value is None else float(r.value)
    seen = r.evidence or ("" if value is None else str(int(value)) if value.is_integer() else f"{value:.4g}")
    if r.status == "not_checked" and r.reason:
        return " ".join(part for part in (seen, report.t("reason", reason=r.reason)) if part)
    return seen


def _totals(report: PatrolReport) -> str:
    totals, rate = report.totals, report.totals.pass_rate
    counts = report.t("counts", normal=totals.normal, abnormal=totals.abnormal, not_checked=totals.not_checked,
                      pending=totals.pending)
    shown = DASH if rate is None else f"{rate:.0%}" if round(rate * 100, 1).is_integer() else f"{rate:.1%}"
    return report.t("pass_rate", rate=shown, counts=counts)


def _comparison(report: PatrolReport) -> tuple[str, list[tuple[str, list[str]]]]:
    """The heading and the groups (heading, lines) of the comparison; no groups when nothing changed."""
    if report.previous_run is None:
        return report.t("compare.none"), []

    def line(change: Change) -> str:
        if change.kind != "still" or change.since is None:
            return _named(report, change)
        since = report.time(change.since, "%Y-%m-%d")
        span = report.t("days", days=change.days, since=since) if change.days else report.t("since", since=since)
        return _named(report, change) + report.t("colon") + span

    groups = [(report.t(f"change.{kind}"), [line(c) for c in report.changes if c.kind == kind])
              for kind in ("new", "recovered", "still")]
    return report.t("compare", run=report.previous_run), [(title, lines) for title, lines in groups if lines]


def _logs(report: PatrolReport) -> tuple[str, list[tuple[str, list[str]]]] | None:
    """The heading and, per asset, its count line and its latest lines (with their time); None without a period."""
    if report.log_period is None:
        return None
    start, end = report.log_period
    heading = report.t("logs", start=report.time(start), end=report.time(end))
    groups = []
    for log in report.logs:
        sources = report.t("join").join(f"{source} {count}" for source, count in log.counts.items())
        lines = [f"{report.time(e.at, '%m-%d %H:%M')} [{e.source}] {' '.join(e.text.split())}" for e in log.latest]
        groups.append((report.t("logs.asset", asset=log.asset, count=log.total, sources=sources), lines))
    return heading, groups


def _header(report: PatrolReport) -> list[tuple[str, str]]:
    """(label, value) of the sheet's head; a signature not yet given is "—"."""
    run = report.run

    def signature(who: str, at: float | None, key: str) -> str:
        return report.t(key, who=who, time=report.time(at)) if at is not None and who != DASH else DASH

    head = [("date", report.date), ("state", report.state_text), ("started", report.time(run.started_at)),
            ("finished", report.time(run.finished_at)),
            ("patroller", signature(report.patroller, run.signed_at, "signed_at")),
            ("reviewer", signature(report.reviewer, run.reviewed_at, "reviewed_at"))]
    note = [("review_note", run.review_note)] if run.review_note else []
    return [(report.t(label), value) for label, value in head + note]


# --- renderings ---------------------------------------------------------------------------------


def to_markdown(report: PatrolReport) -> str:
    def cell(text: str | None) -> str:
        return escape(" ".join((text or "").split()), quote=False).replace("|", "\\|") or DASH

    t, colon = report.t, report.t("colon")
    lines = [f"# {t('sheet', title=report.title)}", "", *(f"- {label}{colon}{cell(v)}" for label, v in _header(report))]
    columns = ("col.item", "col.asset", "col.standard", "col.result", "col.status", "col.handling", "col.handler",
               "col.note")
    for number, section in enumerate(report.sections, start=1):
        lines += ["", f"## {number}. {section.title}", "", "| " + " | ".join(t(c) for c in columns) + " |",
                  "|" + "---|" * len(columns)]
        for row in section.rows:
            r = row.result
            status = f"**{_MARK['abnormal']} {row.status_text}**" if r.status == "abnormal" else row.status_text
            values = (row.check, _where(r.asset, r.key), row.standard, _result(report, row))
            tail = (row.handling_text, row.handler_name, r.note)
            lines.append("| " + " | ".join([*map(cell, values), status, *map(cell, tail)]) + " |")
    heading, groups = _comparison(report)
    lines += ["", f"## {heading}", ""]
    lines += [f"- {title}{colon}{cell(line)}" for title, group in groups for line in group] or (
        [t("compare.same")] if report.previous_run is not None else [])
    logs = _logs(report)
    if logs is not None:
        lines += ["", f"## {logs[0]}", ""]
        for head, latest in logs[1]:
            lines += [f"- {cell(head)}", *(f"    - `{line.replace('`', chr(39))}`" for line in latest)]
        if not logs[1]:
            lines.append(t("logs.none"))
    lines += ["", f"## {t('totals')}", "", _totals(report), ""]
    return "\n".join(lines)


def to_csv(report: PatrolReport) -> str:
    """One row per result; codes and ids (status, handling, handler), the value as stored."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for section in report.sections:
        for row in section.rows:
            writer.writerow({**asdict(row.result), "section": section.id, "check": row.check,
                             "standard": row.standard})
    return out.getvalue()


def to_json(report: PatrolReport) -> dict[str, Any]:
    """Everything, for machines: codes, ids, times in ISO 8601 with the offset."""
    def timed(values: dict[str, Any]) -> dict[str, Any]:
        return {k: report.iso(v) if k in ("at", "since") or k.endswith("_at") else v for k, v in values.items()}

    def changes(kind: str) -> list[dict[str, Any]]:
        return [timed(asdict(c)) for c in report.changes if c.kind == kind]

    totals = report.totals
    return {
        **timed(asdict(report.run)), "title": report.title, "language": report.language, "tz": report.tz,
        "date": report.date,
        "sections": [{"id": s.id, "title": s.title, "rows": [
            timed({**asdict(r.result), "check": r.check, "standard": r.standard, "limit": r.limit}) for r in s.rows]}
            for s in report.sections],
        "totals": {**asdict(totals), "pass_rate": totals.pass_rate},
        "comparison": {"previous_run": report.previous_run, "new_abnormal": changes("new"),
                       "recovered": changes("recovered"), "still_abnormal": changes("still")},
        "logs": None if report.log_period is None else {
            "from": report.iso(report.log_period[0]), "to": report.iso(report.log_period[1]),
            "assets": [{"asset": log.asset, "total": log.total, "counts": log.counts,
                        "latest": [timed(asdict(e)) for e in log.latest]} for log in report.logs]},
    }


_STYLE = """@page { size: A4; margin: 15mm }
body { font-family: sans-serif; font-size: 11pt; color: #000; max-width: 190mm; margin: 0 auto; padding: 6px }
h1 { font-size: 16pt; text-align: center; margin: 0 0 8px } h2 { font-size: 12pt; margin: 12px 0 4px }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin-bottom: 6px }
th, td { border: 1px solid #000; padding: 3px 5px; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; word-break: break-word }
th { background: #eee } thead { display: table-header-group } tr { break-inside: avoid; page-break-inside: avoid }
tr.abnormal td { font-weight: bold; color: #b00000; background: #fdecea }
.blank { display: inline-block; min-width: 35mm; height: 1.2em; border-bottom: 1px solid #000 }
.small { font-size: 9pt } ul { margin: 2px 0 6px; padding-left: 18px } p { margin: 4px 0 }
@media (max-width: 600px) { body { font-size: 10pt } th, td { padding: 2px 3px } }"""
_WIDTHS = (24, 19, 25, 11, 9, 12)  # item, standard, result, normal/abnormal, handler, note (percent)
_COLUMNS = ("col.item", "col.standard", "col.result", "col.status", "col.handler", "col.note")


def to_html(report: PatrolReport) -> str:
    t, e = report.t, escape
    title = e(t("sheet", title=report.title))
    blank = '<span class="blank"></span>'  # a line to sign on, on paper
    signers = (t("patroller"), t("reviewer"))
    cells = [f"<th>{e(label)}</th><td>{blank if value == DASH and label in signers else e(value)}</td>"
             for label, value in _header(report)]
    if len(cells) % 2:
        cells[-1] = cells[-1].replace("<td>", '<td colspan="3">', 1)
    out = ["<!DOCTYPE html>", f'<html lang="{e(report.language)}">', '<head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{title} {e(report.date)}</title>", f"<style>\n{_STYLE}\n</style></head>", "<body>",
           f"<h1>{title}</h1>", '<table class="head">',
           *("<tr>" + "".join(cells[n:n + 2]) + "</tr>" for n in range(0, len(cells), 2)), "</table>"]
    colgroup = "<colgroup>" + "".join(f'<col style="width: {w}%">' for w in _WIDTHS) + "</colgroup>"
    heads = "".join(f"<th>{e(t(c))}</th>" for c in _COLUMNS)
    for number, section in enumerate(report.sections, start=1):
        out += [f"<h2>{number}. {e(section.title)}</h2>", f"<table>{colgroup}<thead><tr>{heads}</tr></thead><tbody>"]
        for row in section.rows:
            r, where = row.result, _where(row.result.asset, row.result.key)
            item = e(row.check) + (f'<br><span class="small">{e(where)}</span>' if where else "")
            status = e(f"{_MARK.get(r.status, '')} {row.status_text}".strip())
            status += f'<br><span class="small">{e(row.handling_text)}</span>' if row.handling_text else ""
            css = ' class="abnormal"' if r.status == "abnormal" else ""
            out.append(f"<tr{css}><td>{item}</td><td>{e(row.standard)}</td><td>{e(_result(report, row))}</td>"
                       f"<td>{status}</td><td>{e(row.handler_name)}</td><td>{e(r.note or '')}</td></tr>")
        out.append("</tbody></table>")
    heading, groups = _comparison(report)
    out.append(f"<h2>{e(heading)}</h2>")
    out += [f"<p>{e(name)}</p><ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>"
            for name, lines in groups]
    if not groups and report.previous_run is not None:
        out.append(f"<p>{e(t('compare.same'))}</p>")
    logs = _logs(report)
    if logs is not None:
        out.append(f"<h2>{e(logs[0])}</h2>")
        out += [f"<p>{e(head)}</p><ul class=\"small\">" + "".join(f"<li>{e(line)}</li>" for line in latest) + "</ul>"
                for head, latest in logs[1]] or [f"<p>{e(t('logs.none'))}</p>"]
    out += [f"<h2>{e(t('totals'))}</h2>", f"<p>{e(_totals(report))}</p>", "</body>", "</html>", ""]
    return "\n".join(out)


def summary_message(report: PatrolReport) -> tuple[str, str]:
    """(subject, text) for the director: the date, the pass rate, what is newly or long abnormal, the signatures."""
    t, abnormal, run = report.t, report.totals.abnormal, report.run
    subject = t("subject" if abnormal else "subject.ok", title=report.title, date=report.date, count=abnormal)
    lines = [t("line.date", date=report.date, run=run.id), _totals(report)]

    def listed(key: str, texts: list[str]) -> None:
        if texts:
            more = t("more", n=len(texts) - MAX_NAMED) if len(texts) > MAX_NAMED else ""
            lines.append(t(key, items=t("join").join(texts[:MAX_NAMED]) + more))

    listed("line.new", [_named(report, c) for c in report.changes if c.kind == "new"])
    long = sorted((c for c in report.changes if c.kind == "still" and (c.days or 0) >= SEVERAL_DAYS),
                  key=lambda c: -(c.days or 0))
    listed("line.still", [t("line.still_item", what=_named(report, c), days=c.days) for c in long])
    recovered = sum(1 for c in report.changes if c.kind == "recovered")
    if recovered:
        lines.append(t("line.recovered", count=recovered))
    busiest = sorted(report.logs, key=lambda log: -log.total)
    listed("line.logs", [f"{log.asset} {log.total}" for log in busiest])
    if run.signed_at is None or report.patroller == DASH:
        lines.append(t("line.unsigned"))
    else:
        review = (t("line.reviewed", who=report.reviewer, time=report.time(run.reviewed_at))
                  if run.reviewed_at is not None and report.reviewer != DASH else t("line.unreviewed"))
        lines.append(t("line.signed", who=report.patroller, time=report.time(run.signed_at)) + t("join") + review)
    return subject, "\n".join(lines)
