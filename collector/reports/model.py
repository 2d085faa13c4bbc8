"""The monthly report as data: its rows, and the words and units people read them in. Pure; no I/O."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from collector.domain import FaultType, Severity
from collector.notify.model import Language
from collector.notify.phrases import PHRASES
from collector.reports.phrases import LANGUAGES, ROWS

DASH = "—"


@dataclass(frozen=True)
class ServiceRow:
    """A key service's month: ``period`` seconds observed (the month, or since the asset was added)."""

    name: str
    kind: str
    tier: str | None
    site: str | None
    period: float
    downtime: float  # unplanned: outside maintenance windows
    planned: float  # down inside a maintenance window (not counted)
    outages: int  # separate times it went down (outside maintenance)
    monitored_from: float | None  # set when the asset was added during the month

    @property
    def availability(self) -> float | None:
        return 1.0 - self.downtime / self.period if self.period > 0 else None


@dataclass(frozen=True)
class SeverityRow:
    severity: Severity | None  # None: the total over P1-P4
    count: int
    acknowledged: int
    resolved: int
    mtta: tuple[float | None, float | None]  # (mean, median) seconds, opened → acknowledged
    mttr: tuple[float | None, float | None]  # (mean, median) seconds, opened → resolved


@dataclass(frozen=True)
class TypeRow:
    type: FaultType
    count: int


@dataclass(frozen=True)
class EscalationRow:
    incident_id: int
    asset: str
    title: str
    severity: Severity | None
    first_at: float
    messages: int
    people: tuple[str, ...]  # the directors reached, by name
    delivered: bool | None  # None: only the timeline says so


@dataclass(frozen=True)
class ChecklistRow:
    name: str
    title: str
    scheduled: int | None  # working days the schedule runs on; None when the checklist is not loaded
    patrolled: int  # of those, days with a finished patrol
    runs: int  # finished runs (done, signed or reviewed)
    signed: int
    reviewed: int
    normal: int
    abnormal: int
    not_checked: int
    missed: tuple[dt.date, ...]  # working days without a finished patrol

    @property
    def pass_rate(self) -> float | None:
        judged = self.normal + self.abnormal
        return self.normal / judged if judged else None


@dataclass(frozen=True)
class RecurringRow:
    checklist: str
    item: str
    check: str  # the item in the reader's words
    asset: str
    key: str
    runs: int  # finished runs of the month in which it was abnormal


@dataclass(frozen=True)
class MeasureRow:
    id: int
    incident_id: int
    description: str
    owner: str  # by name
    due: str  # YYYY-MM-DD
    overdue: bool


@dataclass(frozen=True)
class MonthlyReport:
    month: str  # YYYY-MM
    language: str  # en | zh-CN | zh-TW
    tz: str
    start: float
    end: float  # exclusive
    until: float  # the figures run to here: the end, or earlier when made before the month was over
    made_at: float
    services: tuple[ServiceRow, ...]  # lowest availability first
    severities: tuple[SeverityRow, ...]  # P1 to P4
    total: SeverityRow
    types: tuple[TypeRow, ...]  # most frequent first
    escalations: tuple[EscalationRow, ...]
    checklists: tuple[ChecklistRow, ...]
    recurring: tuple[RecurringRow, ...]  # most frequent first
    recurring_threshold: int
    measures_opened: int
    measures_done: int
    open_measures: tuple[MeasureRow, ...]

    # --- words --------------------------------------------------------------------------------
    def t(self, key: str, **values: object) -> str:
        return ROWS[key][LANGUAGES.index(self.language)].format(**values)

    def p(self, key: str, **values: object) -> str:
        """A phrase shared with the director's messages (severities, fault types, units)."""
        return PHRASES[Language(self.language)][key].format(**values)

    def title(self) -> str:
        year, mon = (int(part) for part in self.month.split("-"))
        return self.t("title", year=year, mon=mon)

    def time(self, ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz)).strftime(fmt) if ts is not None else DASH

    def iso(self, ts: float | None) -> str | None:
        return dt.datetime.fromtimestamp(ts, ZoneInfo(self.tz)).isoformat(timespec="seconds") if ts is not None else None

    def period_text(self) -> str:
        last = self.time(self.until) if self.until < self.end else self.time(self.end - 1, "%Y-%m-%d")
        return self.t("head.period_value", start=self.time(self.start, "%Y-%m-%d"), end=last, tz=self.tz)

    def severity(self, severity: Severity | None) -> str:
        if severity is None:
            return self.t("total")
        return self.p("severity", label=severity.label, name=self.p(f"severity.{severity.name}"))

    def fault_type(self, kind: FaultType) -> str:
        return self.p(f"type.{kind.value}")

    def kind(self, row: ServiceRow) -> str:
        kind = ROWS.get(f"kind.{row.kind}")
        words = [kind[LANGUAGES.index(self.language)] if kind else row.kind]
        if row.tier and f"tier.{row.tier}" in ROWS:
            words.append(self.t(f"tier.{row.tier}"))
        return self.t("list").join(words)

    def duration(self, seconds: float | None) -> str:
        """People's units, the two largest: "45 s", "4 min", "1 h 30 min", "2 d 3 h"; "—" for none."""
        if seconds is None:
            return DASH
        total = max(0, round(seconds))
        if total < 60:
            return self.p("unit.s", n=total)
        days, rest = divmod(total // 60, 1440)
        hours, minutes = divmod(rest, 60)
        parts = [self.p(unit, n=n) for n, unit in ((days, "unit.d"), (hours, "unit.h"), (minutes, "unit.min")) if n]
        return " ".join(parts[:2])

    def pair(self, values: tuple[float | None, float | None]) -> str:
        return DASH if values[0] is None else f"{self.duration(values[0])} / {self.duration(values[1])}"


def percent(fraction: float | None) -> str:
    """Two decimals, rounded down: 100.00% only when there was no down time at all."""
    if fraction is None:
        return DASH
    hundredths = math.floor(round(fraction * 10000, 6))
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def where(asset: str, key: str) -> str:
    return " ".join(part for part in (asset, key) if part)


def recurring_text(report: MonthlyReport, row: RecurringRow) -> str:
    place = where(row.asset, row.key)
    what = report.t("named", check=row.check, where=place) if place else row.check
    return report.t("times", what=what, n=row.runs)


def full_report_command(report: MonthlyReport) -> str:
    """How to get the printable report of the month (the director's message names it)."""
    return (f"schoolops report monthly --month {report.month} --language {report.language} --format html "
            f"-o monthly-{report.month}.html")
