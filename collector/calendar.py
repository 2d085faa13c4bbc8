"""The school calendar: terms, exam days, class hours, holidays and make-up workdays.

The data lives in a YAML file (example: ``deploy/examples/calendar.yaml``; set ``calendar_file``) validated at start-up; a school may add
its published ICS calendar, read at load. :meth:`SchoolCalendar.load` is the I/O edge; the result
is plain data, and :meth:`SchoolCalendar.state_at` is a pure function of it and ``now``.

How a day is read (in the calendar's time zone):

- ``exam_day``: the name of the first exam range (file or ICS) holding the day, whatever else holds.
- ``holiday``, first that applies: an extra holiday (file or ICS), a public holiday of ``region``
  (the ``holidays`` package), ``"school break"`` outside every term (when terms are configured),
  ``"weekend"`` on a weekend day that is not a make-up workday. Otherwise ``None``: a school day.
- Make-up workdays (調休) are the file's ``make_up_workdays`` plus those the ``holidays`` package
  knows for the region (the State Council's in mainland China). Such a day has the class hours of
  the weekday it ``follows`` (Monday unless the file says otherwise). An extra holiday on the same
  day wins, which is how a school opts out of one.
- ``class_hours``: a school day and the local time inside one of the class-hour periods
  (start inclusive, end exclusive).

ICS import: VEVENTs whose SUMMARY contains one of ``exam_keywords`` become exam days, else those
containing one of ``holiday_keywords`` become holidays (case-insensitive); other and cancelled
events are ignored. DTEND is exclusive (RFC 5545); a recurring event counts at its first
occurrence only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import icalendar
import msgspec
import yaml
from msgspec import Meta, Struct

from schoolops import ConfigError
from schoolops.conf import load_file

WEEKEND = "weekend"
SCHOOL_BREAK = "school break"
EXAM_KEYWORDS = ("exam", "考試", "考试", "期末", "期中")
HOLIDAY_KEYWORDS = ("holiday", "假", "放假")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NAMES = {name: i for i, names in enumerate(zip(WEEKDAYS, _FULL_NAMES)) for name in names}
Strict: dict[str, Any] = {"forbid_unknown_fields": True, "kw_only": True}
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Keyword = Annotated[str, Meta(min_length=1)]


@dataclass(frozen=True)
class CalendarState:
    exam_day: str | None  # the exam's name when today is an exam day
    class_hours: bool  # a school day and inside class hours
    holiday: str | None  # public / extra / ICS holiday name, "school break" or "weekend"
    in_term: bool  # inside a term (True when no terms are configured)


@dataclass(frozen=True)
class DayRange:
    name: str
    start: dt.date
    end: dt.date  # inclusive

    def holds(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class ClassPeriod:
    weekdays: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time  # exclusive


@dataclass(frozen=True)
class MakeUpWorkday:
    day: dt.date
    follows: int = 0  # the weekday whose class hours apply; 0 = Monday


DEFAULT_CLASS_HOURS = (ClassPeriod(frozenset(range(5)), dt.time(8), dt.time(17)),)


def _weekday(name: str, key: str) -> int:
    try:
        return _WEEKDAY_NAMES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"{key}: unknown weekday {name!r}: use {', '.join(WEEKDAYS)}") from None


def _time_of_day(value: str | int, key: str) -> dt.time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 13:30 as the base-60 number 810
        raise TypeError(f"{key}: {value} is a number; quote the time, e.g. \"13:30\"")
    hours, _, minutes = value.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"{key}: {value!r} is not a time of day: use HH:MM, from 00:00 to 23:59")
    return dt.time(int(hours), int(minutes))


class DayRangeEntry(Struct, **Strict):
    name: Name
    start: dt.date
    end: dt.date | None = None  # a single day when omitted

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end: {self.end} is before start {self.start}")

    def plain(self) -> DayRange:
        return DayRange(self.name, self.start, self.end or self.start)


class ClassHoursEntry(Struct, **Strict):
    days: Annotated[list[str], Meta(min_length=1)]
    start: str | int
    end: str | int

    def __post_init__(self) -> None:
        for day in self.days:
            _weekday(day, "days")
        if _time_of_day(self.end, "end") <= _time_of_day(self.start, "start"):
            raise ValueError(f"end: {self.end} is not after start {self.start}")

    def plain(self) -> ClassPeriod:
        weekdays = frozenset(_weekday(d, "days") for d in self.days)
        return ClassPeriod(weekdays, _time_of_day(self.start, "start"), _time_of_day(self.end, "end"))


class MakeUpWorkdayEntry(Struct, **Strict):
    date: dt.date
    follows: str = "mon"  # whose class hours the day has

    def __post_init__(self) -> None:
        _weekday(self.follows, "follows")

    def plain(self) -> MakeUpWorkday:
        return MakeUpWorkday(self.date, _weekday(self.follows, "follows"))


class CalendarFile(Struct, **Strict):
    timezone: str
    region: str
    subdivision: str | None = None
    terms: list[DayRangeEntry] = []
    exam_days: list[DayRangeEntry] = []
    class_hours: list[ClassHoursEntry] | None = None  # omitted: Monday to Friday 08:00-17:00
    extra_holidays: list[DayRangeEntry] = []
    make_up_workdays: list[dt.date | MakeUpWorkdayEntry] = []
    ics_files: list[Annotated[str, Meta(min_length=1)]] = []
    exam_keywords: list[Keyword] = msgspec.field(default_factory=lambda: list(EXAM_KEYWORDS))
    holiday_keywords: list[Keyword] = msgspec.field(default_factory=lambda: list(HOLIDAY_KEYWORDS))

    def __post_init__(self) -> None:
        _zone(self.timezone)
        public = _public_holidays(self.region, self.subdivision)
        for entry in self.make_up_workdays:
            day = entry if isinstance(entry, dt.date) else entry.date
            if not public.is_weekend(day):
                raise ValueError(f"make_up_workdays: {day} is a {day:%A}, not a weekend day")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {name!r}: use a zoneinfo name such as Asia/Shanghai") from None


def _public_holidays(region: str, subdivision: str | None) -> holidays.HolidayBase:
    """The region's public holidays; years fill in lazily (and are kept) as dates are looked up."""
    try:  # names in English where the package has them: reasons are written in English
        language = "en_US" if "en_US" in holidays.country_holidays(region).supported_languages else None
    except (NotImplementedError, KeyError):
        raise ValueError(f"region: unknown region {region!r}: use a country code of the holidays package, "
                         "such as CN, TW, HK, US") from None
    try:
        return holidays.country_holidays(region, subdiv=subdivision, language=language)
    except (NotImplementedError, KeyError):
        raise ValueError(f"subdivision: region {region} has no subdivision {subdivision!r}") from None


@dataclass(frozen=True)
class SchoolCalendar:
    timezone: str = "Asia/Shanghai"
    region: str = "CN"
    subdivision: str | None = None
    terms: tuple[DayRange, ...] = ()
    exam_days: tuple[DayRange, ...] = ()
    class_hours: tuple[ClassPeriod, ...] = DEFAULT_CLASS_HOURS
    extra_holidays: tuple[DayRange, ...] = ()
    make_up_workdays: tuple[MakeUpWorkday, ...] = ()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _public: holidays.HolidayBase = field(init=False, repr=False, compare=False)  # a per-year cache
    _make_up: dict[dt.date, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_zone", _zone(self.timezone))
            object.__setattr__(self, "_public", _public_holidays(self.region, self.subdivision))
        except ValueError as exc:
            raise ConfigError(f"school calendar: {exc}") from None
        object.__setattr__(self, "_make_up", {m.day: m.follows for m in self.make_up_workdays})

    @classmethod
    def default(cls, region: str = "CN", timezone: str = "Asia/Shanghai") -> SchoolCalendar:
        """No terms and no exams; class hours Monday to Friday 08:00-17:00; public holidays only."""
        return cls(timezone=timezone, region=region)

    @classmethod
    def load(cls, path: str | Path) -> SchoolCalendar:
        """Read and validate the calendar file and its ICS files; errors name the file, line and key."""
        path = Path(path)
        data = load_file(path, CalendarFile)
        zone = _zone(data.timezone)
        exams = [e.plain() for e in data.exam_days]
        extra = [e.plain() for e in data.extra_holidays]
        for index, name in enumerate(data.ics_files):
            ics = path.parent / name
            try:
                found_exams, found_holidays = read_ics(ics, zone, data.exam_keywords, data.holiday_keywords)
            except ConfigError as exc:
                raise ConfigError(f"{path}:{_line_of_item(path, 'ics_files', index)}: ics_files[{index}]: {exc}") from None
            exams += found_exams
            extra += found_holidays
        return cls(
            timezone=data.timezone,
            region=data.region,
            subdivision=data.subdivision,
            terms=tuple(t.plain() for t in data.terms),
            exam_days=tuple(exams),
            class_hours=DEFAULT_CLASS_HOURS if data.class_hours is None else tuple(c.plain() for c in data.class_hours),
            extra_holidays=tuple(extra),
            make_up_workdays=tuple(MakeUpWorkday(m) if isinstance(m, dt.date) else m.plain() for m in data.make_up_workdays),
        )

    def state_at(self, now: float) -> CalendarState:
        """What the school is doing at unix time ``now``; pure (the holiday table is a cache)."""
        local = dt.datetime.fromtimestamp(now, self._zone)
        day, clock = local.date(), local.time()
        exam = _name_on(self.exam_days, day)
        in_term = not self.terms or _name_on(self.terms, day) is not None
        holiday = _name_on(self.extra_holidays, day) or self._public.get(day)
        timetable = self._timetable_weekday(day)
        if holiday is None and not in_term:
            holiday = SCHOOL_BREAK
        if holiday is None and timetable is None:
            holiday = WEEKEND
        class_hours = holiday is None and any(
            timetable in p.weekdays and p.start <= clock < p.end for p in self.class_hours
        )
        return CalendarState(exam_day=exam, class_hours=class_hours, holiday=holiday, in_term=in_term)

    def _timetable_weekday(self, day: dt.date) -> int | None:
        """The weekday whose class hours the day has, or None on a weekend day off."""
        if day in self._make_up:
            return self._make_up[day]
        if not self._public.is_weekend(day):
            return day.weekday()  # is_weekend filled the year in, with its weekend workdays
        return 0 if day in self._public.weekend_workdays else None


def _name_on(ranges: tuple[DayRange, ...], day: dt.date) -> str | None:
    return next((r.name for r in ranges if r.holds(day)), None)


def read_ics(
    path: Path, zone: ZoneInfo, exam_keywords: list[str], holiday_keywords: list[str]
) -> tuple[list[DayRange], list[DayRange]]:
    """Exam days and holidays from an ICS file, as local-date ranges; ConfigError names the file."""
    try:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid ICS calendar: {exc}") from None
    exams: list[DayRange] = []
    days_off: list[DayRange] = []
    for event in calendar.walk("VEVENT"):
        summary, text = str(event.get("SUMMARY", "")).strip(), str(event.get("SUMMARY", "")).casefold()
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if any(k.casefold() in text for k in exam_keywords):
            target = exams
        elif any(k.casefold() in text for k in holiday_keywords):
            target = days_off
        else:
            continue
        try:
            first, last = _event_days(event, zone)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: event {summary!r}: cannot read its dates: {exc}") from None
        target.append(DayRange(summary, first, last))
    return exams, days_off


def _event_days(event: icalendar.cal.Component, zone: ZoneInfo) -> tuple[dt.date, dt.date]:
    start = event.decoded("DTSTART")
    if "DTEND" in event:
        end = event.decoded("DTEND")
    elif "DURATION" in event:
        end = start + event.decoded("DURATION")
    else:  # RFC 5545: a date lasts one day, a date-time no time at all
        end = start if isinstance(start, dt.datetime) else start + dt.timedelta(days=1)
    if isinstance(start, dt.datetime):  # a floating (naive) time is the calendar's local time
        first, until = (m.replace(tzinfo=zone) if m.tzinfo is None else m.astimezone(zone) for m in (start, end))
        return first.date(), (until - dt.timedelta(microseconds=1)).date() if until > first else first.date()
    return start, max(start, end - dt.timedelta(days=1))


def _line_of_item(path: Path, key: str, index: int) -> int | str:
    """The line of ``key[index]`` in an already-validated YAML file (read again, on the error path only)."""
    node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    for key_node, value in node.value if isinstance(node, yaml.MappingNode) else ():
        if key_node.value == key and isinstance(value, yaml.SequenceNode) and index < len(value.value):
            return int(value.value[index].start_mark.line) + 1
    return "?"
