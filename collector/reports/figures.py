"""The monthly report's arithmetic: month bounds, down intervals, maintenance time, working days, averages.

Pure functions of data (no I/O, no clock). Times are unix seconds; intervals are half-open
``(start, end)`` pairs.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]  # no stubs in the venv

from collector.calendar import SCHOOL_BREAK, SchoolCalendar
from collector.domain import AssetContext
from collector.incidents.windows import scope_from
from collector.store.incidents import WindowRecord
from collector.store.monthly import FaultEvent, KeyService

Interval = tuple[float, float]
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])\Z")


def parse_month(month: str) -> tuple[int, int]:
    """(year, month) of ``YYYY-MM``; ValueError otherwise."""
    found = _MONTH.match(month.strip())
    if not found:
        raise ValueError(f"{month!r} is not a month: use YYYY-MM, e.g. 2026-10")
    return int(found.group(1)), int(found.group(2))


def month_bounds(month: str, tz: str) -> Interval:
    """The unix times of the month's first midnight and the next month's, in ``tz``."""
    year, number = parse_month(month)
    zone = ZoneInfo(tz)
    after = (year + 1, 1) if number == 12 else (year, number + 1)
    return (dt.datetime(year, number, 1, tzinfo=zone).timestamp(), dt.datetime(*after, 1, tzinfo=zone).timestamp())


def previous_month(now: float, tz: str) -> str:
    """The month before the one holding ``now`` in ``tz``, as YYYY-MM."""
    today = dt.datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


# --- intervals ------------------------------------------------------------------------------------


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union, as sorted disjoint intervals (touching ones joined)."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    return merge((max(start, lo), min(end, hi)) for start, end in intervals)


def subtract(intervals: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    """What of ``intervals`` lies outside every cut (both merged first)."""
    out = []
    cuts = merge(cuts)
    for start, end in merge(intervals):
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                out.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def length(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def down_intervals(events: Iterable[FaultEvent], until: float) -> dict[str, list[Interval]]:
    """Per asset, the times some down fault of it was active: each firing to its clearing, in event order.

    A firing starts at the fault's ``since`` when known (the condition began before the rule's delay).
    A second start of a fault already active (a regrouping under a parent's incident) changes nothing; a
    clearing without a start (the start was not in the data) is ignored; a fault still active runs until
    ``until``."""
    began: dict[str, tuple[str, float]] = {}
    spans: dict[str, list[Interval]] = defaultdict(list)
    for event in events:
        if event.starts:
            if event.fingerprint not in began:
                start = event.at if event.since is None else min(event.at, event.since)
                began[event.fingerprint] = (event.asset, start)
        elif event.fingerprint in began:
            asset, start = began.pop(event.fingerprint)
            spans[asset].append((start, event.at))
    for asset, start in began.values():
        spans[asset].append((start, until))
    return {asset: merge(found) for asset, found in spans.items()}


def window_intervals(window: WindowRecord, lo: float, hi: float) -> list[Interval]:
    """When ``window`` was active within [lo, hi): its span, or each occurrence of its recurrence in it."""
    end = window.ends_at if window.ended_at is None else min(window.ends_at, window.ended_at)
    lo, hi = max(lo, window.starts_at), min(hi, end)
    if lo >= hi:
        return []
    if not window.recurrence:
        return [(lo, hi)]
    cron = str(window.recurrence["cron"])
    duration = float(window.recurrence["duration"])
    zone = ZoneInfo(str(window.recurrence.get("timezone", "UTC")))
    found = []
    try:
        times = croniter(cron, dt.datetime.fromtimestamp(lo - duration - 1, zone))
        while (begins := times.get_next(dt.datetime).timestamp()) < hi:
            found.append((begins, begins + duration))
    except CroniterBadDateError:  # an expression that never matches
        pass
    return clip(found, lo, hi)


def covers(window: WindowRecord, service: KeyService) -> bool:
    """Whether the window's scope holds the service: by name, site or role, as the incident engine matches
    it (its assets carry no labels, so a window scoped by labels alone covers none there nor here)."""
    context = AssetContext(name=service.name, kind=service.kind, site=service.site or "", role=service.role or "")
    return scope_from(window.scope).matches(context)


# --- patrol days ----------------------------------------------------------------------------------


def scheduled_days(schedule: str, tz: str, start: float, end: float,
                   calendar: SchoolCalendar | None) -> list[dt.date]:
    """The local dates (in ``tz``) in [start, end) on which the cron ``schedule`` runs and which are
    working days for the office: not a weekend (make-up workdays count), not a public or school
    holiday; the school break is a working day. Without a calendar every scheduled day counts."""
    zone = ZoneInfo(tz)
    days: list[dt.date] = []
    moment = dt.datetime.fromtimestamp(start, zone) - dt.timedelta(seconds=1)
    while True:
        try:
            found: dt.datetime = croniter(schedule, moment).get_next(dt.datetime)
        except CroniterBadDateError:
            return days
        if found.timestamp() >= end:
            return days
        if calendar is None or calendar.state_at(found.timestamp()).holiday in (None, SCHOOL_BREAK):
            days.append(found.date())
        # the next day's first time (a schedule of several times a day is one patrol day)
        moment = dt.datetime.combine(found.date() + dt.timedelta(days=1), dt.time(), zone) - dt.timedelta(seconds=1)


def local_date(at: float, tz: str) -> dt.date:
    return dt.datetime.fromtimestamp(at, ZoneInfo(tz)).date()


# --- averages -------------------------------------------------------------------------------------


def mean_median(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.median(values)
