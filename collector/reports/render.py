"""The monthly report rendered: Markdown, JSON, and a printable A4 HTML sheet (readable on a phone).

Markdown and HTML are made from one list of sections (headings, tables, paragraphs), so the two
always say the same; JSON keeps codes, ids, seconds and fractions, times in ISO 8601 with offset.
The HTML has the patrol record's look: black on white, ruled tables, rows that need attention in
bold (and marked in words, so that the marking survives black-and-white printing), a line for the
director's signature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any, Literal

from collector.reports.model import DASH, MonthlyReport, percent, where


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    marked: list[bool] = field(default_factory=list)  # rows in bold: they need attention, or are totals

    def add(self, cells: list[str], marked: bool = False) -> None:
        self.rows.append(cells)
        self.marked.append(marked)


Part = tuple[Literal["table"], Table] | tuple[Literal["p", "h3", "note"], str]


def sections(report: MonthlyReport) -> list[tuple[str, list[Part]]]:
    t = report.t
    return [(t("sec.availability"), _availability(report)), (t("sec.incidents"), _incidents(report)),
            (t("sec.escalations"), _escalations(report)), (t("sec.patrol"), _patrol(report)),
            (t("sec.measures"), _measures(report))]


def _availability(report: MonthlyReport) -> list[Part]:
    t = report.t
    if not report.services:
        return [("p", t("line.no_services"))]
    table = Table([t(c) for c in ("col.service", "col.kind", "col.availability", "col.downtime", "col.outages",
                                  "col.planned")])
    for row in report.services:
        name = row.name if row.monitored_from is None else \
            t("since_date", name=row.name, date=report.time(row.monitored_from, "%Y-%m-%d"))
        table.add([name, report.kind(row), percent(row.availability), report.duration(row.downtime) if row.downtime
                   else DASH, str(row.outages), report.duration(row.planned) if row.planned else DASH],
                  marked=row.downtime > 0)
    return [("table", table), ("note", t("note.availability"))]


def _incidents(report: MonthlyReport) -> list[Part]:
    t = report.t
    table = Table([t(c) for c in ("col.severity", "col.count", "col.resolved", "col.mtta", "col.mttr")])
    for row in (*report.severities, report.total):
        table.add([report.severity(row.severity), str(row.count), str(row.resolved), report.pair(row.mtta),
                   report.pair(row.mttr)], marked=row.severity is None)
    parts: list[Part] = [("table", table), ("note", t("note.times")), ("h3", t("sec.types"))]
    if not report.types:
        return [*parts, ("p", t("none"))]
    types = Table([t("col.type"), t("col.count")])
    for kind in report.types:
        types.add([report.fault_type(kind.type), str(kind.count)])
    return [*parts, ("table", types)]


def _escalations(report: MonthlyReport) -> list[Part]:
    t = report.t
    if not report.escalations:
        return [("p", t("none"))]
    table = Table([t(c) for c in ("col.incident", "col.severity", "col.first", "col.messages")])
    for row in report.escalations:
        what = " ".join(part for part in (f"#{row.incident_id}", row.title or row.asset) if part)
        messages = t("people", n=row.messages, names=t("list").join(row.people)) if row.people else str(row.messages)
        if row.delivered is False:
            messages += f" {t('not_delivered')}"
        table.add([what, report.severity(row.severity) if row.severity else DASH, report.time(row.first_at), messages],
                  marked=row.delivered is False)
    return [("table", table)]


def _patrol(report: MonthlyReport) -> list[Part]:
    t = report.t
    parts: list[Part] = []
    if report.checklists:
        table = Table([t(c) for c in ("col.checklist", "col.scheduled", "col.patrolled", "col.runs", "col.signed",
                                      "col.reviewed", "col.pass_rate")])
        for row in report.checklists:
            table.add([row.title, DASH if row.scheduled is None else str(row.scheduled), str(row.patrolled),
                       str(row.runs), str(row.signed), str(row.reviewed), percent(row.pass_rate)],
                      marked=bool(row.missed))
        parts.append(("table", table))
        parts += [("p", t("missed", title=row.title, days=t("list").join(d.strftime("%m-%d") for d in row.missed)))
                  for row in report.checklists if row.missed]
    else:
        parts.append(("p", t("none")))
    parts.append(("h3", t("sec.recurring", n=report.recurring_threshold)))
    if not report.recurring:
        return [*parts, ("p", t("none"))]
    items = Table([t("col.item"), t("col.asset"), t("col.times")])
    for item in report.recurring:
        items.add([item.check, where(item.asset, item.key) or DASH, str(item.runs)], marked=True)
    return [*parts, ("table", items)]


def _measures(report: MonthlyReport) -> list[Part]:
    t = report.t
    overdue = sum(1 for m in report.open_measures if m.overdue)
    parts: list[Part] = [("p", t("measures.counts", opened=report.measures_opened, done=report.measures_done,
                                 open=len(report.open_measures), overdue=overdue))]
    if not report.open_measures:
        return parts
    table = Table(["#", t("col.incident"), t("col.measure"), t("col.owner"), t("col.due")])
    for m in report.open_measures:
        table.add([str(m.id), f"#{m.incident_id}", m.description, m.owner,
                   f"{m.due} {t('overdue')}" if m.overdue else m.due], marked=m.overdue)
    return [*parts, ("h3", t("open_measures")), ("table", table)]


def _head(report: MonthlyReport) -> list[tuple[str, str]]:
    return [(report.t("head.period"), report.period_text()), (report.t("head.made"), report.time(report.made_at))]


# --- Markdown -------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return escape(" ".join(text.split()), quote=False).replace("|", "\\|") or DASH


def to_markdown(report: MonthlyReport) -> str:
    colon = report.t("colon")
    lines = [f"# {_cell(report.title())}", "", *(f"- {label}{colon}{_cell(value)}" for label, value in _head(report))]
    for number, (title, parts) in enumerate(sections(report), start=1):
        lines += ["", f"## {number}. {_cell(title)}"]
        for kind, part in parts:
            if isinstance(part, Table):
                lines += ["", "| " + " | ".join(map(_cell, part.headers)) + " |", "|" + "---|" * len(part.headers)]
                for cells, marked in zip(part.rows, part.marked, strict=True):
                    shown = [f"**{_cell(c)}**" if marked else _cell(c) for c in cells]
                    lines.append("| " + " | ".join(shown) + " |")
            elif kind == "h3":
                lines += ["", f"### {_cell(part)}"]
            else:
                lines += ["", f"*{_cell(part)}*" if kind == "note" else _cell(part)]
    sign = report.t("sign.director"), report.t("sign.date")
    lines += ["", f"{sign[0]}{colon}________    {sign[1]}{colon}________", ""]
    return "\n".join(lines)


# --- JSON -----------------------------------------------------------------------------------------


def to_json(report: MonthlyReport) -> dict[str, Any]:
    """Everything, for machines: codes and ids, seconds and fractions, times in ISO 8601 with the offset."""
    def severity_row(row: Any) -> dict[str, Any]:
        return {"severity": row.severity.label if row.severity else "total", "count": row.count,
                "acknowledged": row.acknowledged, "resolved": row.resolved,
                "mtta_seconds": {"mean": row.mtta[0], "median": row.mtta[1]},
                "mttr_seconds": {"mean": row.mttr[0], "median": row.mttr[1]}}

    return {
        "month": report.month, "language": report.language, "tz": report.tz, "from": report.iso(report.start),
        "to": report.iso(report.end), "until": report.iso(report.until), "made_at": report.iso(report.made_at),
        "services": [{**asdict(row), "monitored_from": report.iso(row.monitored_from),
                      "availability": row.availability, "availability_percent": percent(row.availability)}
                     for row in report.services],
        "incidents": {"by_severity": [severity_row(row) for row in report.severities],
                      "total": severity_row(report.total),
                      "by_type": {row.type.value: row.count for row in report.types}},
        "director_escalations": [{**asdict(row), "severity": row.severity.label if row.severity else None,
                                  "first_at": report.iso(row.first_at), "people": list(row.people)}
                                 for row in report.escalations],
        "patrol": {
            "checklists": [{**asdict(row), "missed": [d.isoformat() for d in row.missed], "pass_rate": row.pass_rate}
                           for row in report.checklists],
            "recurring_threshold": report.recurring_threshold,
            "recurring_abnormal": [asdict(row) for row in report.recurring]},
        "measures": {"opened": report.measures_opened, "done": report.measures_done,
                     "open": [asdict(m) for m in report.open_measures],
                     "overdue": sum(1 for m in report.open_measures if m.overdue)},
    }


# --- printable HTML -------------------------------------------------------------------------------

_STYLE = """@page { size: A4; margin: 15mm }
body { font-family: sans-serif; font-size: 11pt; color: #000; max-width: 190mm; margin: 0 auto; padding: 6px }
h1 { font-size: 16pt; text-align: center; margin: 0 0 8px } h2 { font-size: 12pt; margin: 12px 0 4px }
h3 { font-size: 11pt; margin: 8px 0 4px }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin-bottom: 6px }
th, td { border: 1px solid #000; padding: 3px 5px; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; word-break: break-word }
th { background: #eee } thead { display: table-header-group } tr { break-inside: avoid; page-break-inside: avoid }
h2, h3 { break-after: avoid; page-break-after: avoid }
tr.marked td { font-weight: bold }
.blank { display: inline-block; min-width: 35mm; height: 1.2em; border-bottom: 1px solid #000 }
.small { font-size: 9pt } p { margin: 4px 0 }
@media (max-width: 600px) { body { font-size: 10pt } th, td { padding: 2px 3px } }"""


def to_html(report: MonthlyReport) -> str:
    e, title = escape, escape(report.title())
    head = "".join(f"<th>{e(label)}</th><td>{e(value)}</td>" for label, value in _head(report))
    out = ["<!DOCTYPE html>", f'<html lang="{e(report.language)}">', '<head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{title}</title>",
           f"<style>\n{_STYLE}\n</style></head>", "<body>", f"<h1>{title}</h1>",
           f'<table class="head"><tr>{head}</tr></table>']
    for number, (heading, parts) in enumerate(sections(report), start=1):
        out.append(f"<h2>{number}. {e(heading)}</h2>")
        for kind, part in parts:
            if isinstance(part, Table):
                out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in part.headers)
                           + "</tr></thead><tbody>")
                for cells, marked in zip(part.rows, part.marked, strict=True):
                    css = ' class="marked"' if marked else ""
                    out.append(f"<tr{css}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
                out.append("</tbody></table>")
            elif kind == "h3":
                out.append(f"<h3>{e(part)}</h3>")
            else:
                out.append(f'<p class="small">{e(part)}</p>' if kind == "note" else f"<p>{e(part)}</p>")
    blank = '<span class="blank"></span>'
    sign = (f'<table class="sign"><tr><th>{e(report.t("sign.director"))}</th><td>{blank}</td>'
            f'<th>{e(report.t("sign.date"))}</th><td>{blank}</td></tr></table>')
    out += [sign, "</body>", "</html>", ""]
    return "\n".join(out)


__all__ = ["sections", "to_html", "to_json", "to_markdown"]
