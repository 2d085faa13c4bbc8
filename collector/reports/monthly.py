"""The director's monthly report: pure functions from :class:`~collector.store.monthly.MonthData` to figures and words.

:func:`build` makes a :class:`MonthlyReport` in the reader's language and the school's time zone;
:func:`to_markdown`, :func:`to_json` and :func:`to_html` (a printable A4 sheet, readable on a phone,
laid out like the patrol record) render it; :func:`summary_message` is the director's few lines.

What the figures mean:

- **Availability** of each key service (tier core or important, or kind service): 1 − down time ÷
  the time observed (the month; from the asset's creation if it was added during the month; until
  the report was made if that was before the month ended). Down time is the union of the times a
  down fault of the asset was active (:data:`~collector.store.monthly.DOWN_RULES`, consequences
  of a parent's outage included), minus the times a maintenance window covering the asset was
  active: planned work is shown apart and not counted. Shown rounded down to two decimals.
- **Incidents** opened in the month, P1–P4 (``info`` records page nobody and are left out), by
  severity (the incident's current one) and type; time to acknowledge (MTTA: opened →
  acknowledged) and to resolve (MTTR: opened → resolved), mean and median, of those that were.
- **Escalations that reached the director**: incidents about which a director was paged (a step
  or a reminder of the escalation policy, or a runbook's escalation), with the first time.
- **Patrol**: per checklist, the working days its schedule runs on (school calendar: weekends and
  holidays off, make-up workdays on), the days with a finished patrol, runs finished, signed and
  reviewed, the pass rate (normal ÷ judged), and items abnormal in at least
  :data:`RECURRING` finished runs.
- **Preventive measures**: set in the month, done in the month, still open at its end (overdue
  when the due date is before the day after the period).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from collector.calendar import SchoolCalendar
from collector.domain import FaultType, Severity
from collector.patrol.model import Checklist, text_for
from collector.reports import figures
from collector.reports.model import (
    DASH,
    ChecklistRow,
    EscalationRow,
    MeasureRow,
    MonthlyReport,
    RecurringRow,
    ServiceRow,
    SeverityRow,
    TypeRow,
    full_report_command,
    percent,
    recurring_text,
)
from collector.reports.phrases import LANGUAGES
from collector.reports.render import to_html, to_json, to_markdown
from collector.rules.loader import RuleSet
from collector.store.incidents import IncidentRecord
from collector.store.monthly import DOWN_RULES, FINISHED_RUNS, MonthData
from collector.store.patrol import PatrolResult, PatrolRun

RECURRING = 3  # abnormal in this many finished runs of the month or more: a recurring item
MAX_NAMED = 5  # items named in one line of the director's message; the rest are counted
SEVERITIES = (Severity.P1, Severity.P2, Severity.P3, Severity.P4)


def down_rules(rules: RuleSet | None) -> frozenset[str]:
    """The rules whose faults count as down time: the shipped ones, and every rule of ``rules`` that marks
    its asset down (absence rules, and state rules with ``marks_down``)."""
    found = {rule.id for rule in rules.rules if rule.kind == "absence" or rule.marks_down} if rules else set()
    return DOWN_RULES | found


def build(data: MonthData, *, month: str, language: str, tz: str, names: Mapping[str, str] | None = None,
          checklists: Mapping[str, Checklist] | None = None, calendar: SchoolCalendar | None = None) -> MonthlyReport:
    """The report of ``month`` (YYYY-MM, in ``tz``) from ``data`` read for exactly that month.
    ``names``: person id → name; ``checklists``: the loaded patrol checklists (titles, schedules);
    ``calendar``: the school calendar for working days (None: every scheduled day counts)."""
    lang = language if language in LANGUAGES else "zh-CN" if language.lower().startswith("zh") else "en"
    start, end = figures.month_bounds(month, tz)
    if (start, end) != (data.start, data.end):
        raise ValueError(f"the data was read for [{data.start}, {data.end}), not for the month {month} in {tz}")
    names = names or {}
    until = min(end, max(start, data.as_of))
    severities, total = _severities(data)
    checklist_rows, recurring = _patrol(data, checklists or {}, calendar, tz, lang, until)
    opened, done, still_open = _measures(data, until, tz, names)
    return MonthlyReport(
        month=month, language=lang, tz=tz, start=start, end=end, until=until, made_at=data.as_of,
        services=_services(data, until), severities=severities, total=total, types=_types(data),
        escalations=_escalations(data, names), checklists=checklist_rows, recurring=recurring,
        recurring_threshold=RECURRING, measures_opened=opened, measures_done=done, open_measures=still_open)


def _services(data: MonthData, until: float) -> tuple[ServiceRow, ...]:
    spans = figures.down_intervals(data.fault_events, until)
    rows = []
    for service in data.services:
        lo = max(data.start, min(service.created_at, until))
        down = figures.clip(spans.get(service.name, []), lo, until)
        planned_time = figures.merge(i for w in data.windows if figures.covers(w, service)
                                     for i in figures.window_intervals(w, lo, until))
        unplanned = figures.subtract(down, planned_time)
        rows.append(ServiceRow(
            name=service.name, kind=service.kind, tier=service.tier, site=service.site, period=until - lo,
            downtime=figures.length(unplanned), planned=figures.length(down) - figures.length(unplanned),
            outages=sum(1 for span in down if figures.subtract([span], planned_time)),
            monitored_from=lo if lo > data.start else None))
    return tuple(sorted(rows, key=lambda r: (r.availability if r.availability is not None else 2.0, r.name)))


def _severity_row(severity: Severity | None, incidents: Sequence[IncidentRecord]) -> SeverityRow:
    acks = [i.acknowledged_at - i.opened_at for i in incidents if i.acknowledged_at is not None]
    fixes = [i.resolved_at - i.opened_at for i in incidents if i.resolved_at is not None]
    return SeverityRow(severity, len(incidents), len(acks), len(fixes), figures.mean_median(acks),
                       figures.mean_median(fixes))


def _severities(data: MonthData) -> tuple[tuple[SeverityRow, ...], SeverityRow]:
    counted = [i for i in data.incidents if i.severity in SEVERITIES]
    rows = tuple(_severity_row(s, [i for i in counted if i.severity == s]) for s in SEVERITIES)
    return rows, _severity_row(None, counted)


def _types(data: MonthData) -> tuple[TypeRow, ...]:
    counts = Counter(i.type for i in data.incidents if i.severity in SEVERITIES)
    order = list(FaultType)
    return tuple(TypeRow(kind, n) for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], order.index(kv[0]))))


def _escalations(data: MonthData, names: Mapping[str, str]) -> tuple[EscalationRow, ...]:
    pages = defaultdict(list)
    for page in data.director_pages:
        pages[page.incident_id].append(page)
    rows = []
    for incident_id, found in pages.items():
        severities = [Severity(p.severity) for p in found if p.severity is not None]
        people = tuple(dict.fromkeys(names.get(p.person, p.person) for p in found if p.person))
        delivered = [p.delivered for p in found if p.delivered is not None]
        asset, title = data.incident_titles.get(incident_id, ("", ""))
        rows.append(EscalationRow(
            incident_id=incident_id, asset=asset, title=title, severity=min(severities) if severities else None,
            first_at=min(p.at for p in found), messages=len(found), people=people,
            delivered=any(delivered) if delivered else None))
    return tuple(sorted(rows, key=lambda r: (r.first_at, r.incident_id)))


def _patrol(data: MonthData, checklists: Mapping[str, Checklist], calendar: SchoolCalendar | None, tz: str,
            lang: str, until: float) -> tuple[tuple[ChecklistRow, ...], tuple[RecurringRow, ...]]:
    runs: dict[str, list[PatrolRun]] = defaultdict(list)
    for run in data.patrol_runs:
        if run.state in FINISHED_RUNS:
            runs[run.checklist].append(run)
    results: dict[int, list[PatrolResult]] = defaultdict(list)
    for result in data.patrol_results:
        results[result.run_id].append(result)
    rows, recurring = [], []
    for name in sorted(set(checklists) | set(runs)):
        checklist, finished = checklists.get(name), runs.get(name, [])
        zone = checklist.timezone if checklist else tz
        scheduled = (figures.scheduled_days(checklist.schedule, zone, data.start, until, calendar)
                     if checklist else None)
        days = {figures.local_date(run.started_at, zone) for run in finished}
        statuses = Counter(r.status for run in finished for r in results[run.id])
        rows.append(ChecklistRow(
            name=name, title=text_for(checklist.title, lang) if checklist else name,
            scheduled=None if scheduled is None else len(scheduled),
            patrolled=len(days) if scheduled is None else len(days & set(scheduled)), runs=len(finished),
            signed=sum(1 for r in finished if r.signed_at is not None),
            reviewed=sum(1 for r in finished if r.reviewed_at is not None),
            normal=statuses["normal"], abnormal=statuses["abnormal"], not_checked=statuses["not_checked"],
            missed=tuple(day for day in scheduled or () if day not in days)))
        abnormal = Counter(identity for run in finished  # once per run, however many rows it has
                           for identity in {r.identity for r in results[run.id] if r.status == "abnormal"})
        for (item, asset, key), count in abnormal.items():
            if count >= RECURRING:
                found = checklist.item(item) if checklist else None
                check = text_for(found[1].check, lang) if found else item
                recurring.append(RecurringRow(name, item, check, asset, key, count))
    recurring.sort(key=lambda r: (-r.runs, r.checklist, r.item, r.asset, r.key))
    return tuple(rows), tuple(recurring)


def _measures(data: MonthData, until: float, tz: str,
              names: Mapping[str, str]) -> tuple[int, int, tuple[MeasureRow, ...]]:
    opened = sum(1 for m in data.measures if data.start <= m.created_at < until)
    done = sum(1 for m in data.measures if m.done_at is not None and data.start <= m.done_at < until)
    today = figures.local_date(until, tz).isoformat()  # the day after the period: due before it is overdue
    still_open = tuple(
        MeasureRow(m.id, m.incident_id, m.description, names.get(m.owner, m.owner), m.due, m.due < today)
        for m in data.measures if m.created_at < until and (m.done_at is None or m.done_at >= until))
    return opened, done, still_open


# --- the director's message -----------------------------------------------------------------------


def _named(report: MonthlyReport, texts: list[str]) -> str:
    more = report.t("more", n=len(texts) - MAX_NAMED) if len(texts) > MAX_NAMED else ""
    return report.t("join").join(texts[:MAX_NAMED]) + more


def summary_message(report: MonthlyReport, link: str | None = None, link_days: int = 30) -> tuple[str, str]:
    """(subject, text) for the director: availability, incidents, escalations, patrol, measures; and how
    to open the full report: ``link`` (a signed link that works for ``link_days``), and the command."""
    t, total = report.t, report.total
    major = sum(row.count for row in report.severities if row.severity is not None and row.severity.is_major)
    subject = t("subject", month=report.month, count=total.count, major=major)
    lines = [t("line.period", month=report.month)]
    below = [row for row in report.services if row.downtime > 0]
    if not report.services:
        lines.append(t("line.no_services"))
    elif not below:
        lines.append(t("line.available", count=len(report.services)))
    else:
        lines.append(t("line.availability", items=_named(report, [f"{r.name} {percent(r.availability)}" for r in below])))
    counts = t("list").join(f"{row.severity.label} {row.count}" for row in report.severities if row.severity)
    lines.append(t("line.incidents", counts=counts))
    if total.count:
        lines.append(t("line.times", mtta=report.duration(total.mtta[0]), mttr=report.duration(total.mttr[0])))
    if report.escalations:
        items = [t("escalated", id=r.incident_id, asset=r.asset, severity=r.severity.label if r.severity else DASH)
                 for r in report.escalations]
        lines.append(t("line.escalations", items=_named(report, items)))
    else:
        lines.append(t("line.no_escalations"))
    for row in report.checklists:
        lines.append(t("line.patrol", title=row.title, patrolled=row.patrolled,
                       scheduled=DASH if row.scheduled is None else row.scheduled, signed=row.signed,
                       reviewed=row.reviewed, rate=percent(row.pass_rate)))
    if report.recurring:
        lines.append(t("line.recurring", items=_named(report, [recurring_text(report, r) for r in report.recurring])))
    lines.append(t("measures.counts", opened=report.measures_opened, done=report.measures_done,
                   open=len(report.open_measures), overdue=sum(1 for m in report.open_measures if m.overdue)))
    if link:
        lines.append(t("line.link", days=link_days, url=link))
    lines.append(t("line.full", command=full_report_command(report)))
    return subject, "\n".join(lines)


__all__ = ["RECURRING", "MonthlyReport", "build", "down_rules", "summary_message", "to_html", "to_json", "to_markdown"]
