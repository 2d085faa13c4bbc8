"""The school calendar: what the school is doing at a moment, read from a validated file.

``state_at`` is pure, so every case is a timestamp and the state expected at it; the file errors
are read as an operator would, naming the file, the line and the key to fix.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from collector.calendar import SCHOOL_BREAK, WEEKEND, CalendarState, SchoolCalendar
from schoolops import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]

CALENDAR = """\
timezone: Asia/Shanghai
region: CN
subdivision: null
terms:
  - {name: "2026 autumn", start: 2026-09-01, end: 2027-01-20}
exam_days:
  - {name: "autumn finals", start: 2027-01-11, end: 2027-01-15}
  - {name: "mid-term maths", start: 2026-11-05}
class_hours:
  - {days: [mon, tue, wed, thu, fri], start: "08:00", end: "12:00"}
  - {days: [mon, tue, wed, thu, fri], start: "13:30", end: "17:00"}
extra_holidays: [{name: "school anniversary", start: 2026-10-20, end: 2026-10-20}]
make_up_workdays: [2026-10-10, {date: 2026-11-14, follows: fri}]
"""


def at(text: str, zone: ZoneInfo = SHANGHAI) -> float:
    """Unix time of a local wall-clock time such as '2026-09-07 09:00'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def write(tmp_path: Path, text: str, name: str = "calendar.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def calendar(tmp_path: Path) -> SchoolCalendar:
    return SchoolCalendar.load(write(tmp_path, CALENDAR))


SCHOOL_DAY = CalendarState(exam_day=None, class_hours=True, holiday=None, in_term=True)
AFTER_HOURS = CalendarState(exam_day=None, class_hours=False, holiday=None, in_term=True)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        pytest.param("2026-09-07 09:00", SCHOOL_DAY, id="monday-morning-lesson"),
        pytest.param("2026-09-07 12:30", AFTER_HOURS, id="lunch-break"),
        pytest.param("2026-09-07 13:30", SCHOOL_DAY, id="afternoon-start-inclusive"),
        pytest.param("2026-09-07 17:00", AFTER_HOURS, id="end-exclusive"),
        pytest.param("2026-09-07 20:00", AFTER_HOURS, id="same-day-evening"),
        pytest.param("2026-09-12 10:00", CalendarState(None, False, WEEKEND, True), id="saturday"),
        pytest.param("2026-10-10 10:00", SCHOOL_DAY, id="make-up-workday-saturday"),
        pytest.param("2026-10-10 20:00", AFTER_HOURS, id="make-up-workday-evening"),
        pytest.param("2026-11-14 10:00", SCHOOL_DAY, id="make-up-workday-following-friday"),
        pytest.param("2026-09-20 10:00", SCHOOL_DAY, id="state-council-make-up-sunday-from-holidays-package"),
        pytest.param("2026-10-01 10:00", CalendarState(None, False, "National Day", True), id="national-day"),
        pytest.param("2026-10-20 10:00", CalendarState(None, False, "school anniversary", True), id="extra-holiday"),
        pytest.param("2027-01-13 09:00", CalendarState("autumn finals", True, None, True), id="exam-day"),
        pytest.param("2027-01-13 19:00", CalendarState("autumn finals", False, None, True), id="exam-day-evening"),
        pytest.param("2026-11-05 10:00", CalendarState("mid-term maths", True, None, True), id="single-exam-day"),
        pytest.param("2027-07-20 10:00", CalendarState(None, False, SCHOOL_BREAK, False), id="summer-break"),
        pytest.param("2027-01-21 10:00", CalendarState(None, False, SCHOOL_BREAK, False), id="day-after-term"),
    ],
)
def test_state_at(calendar: SchoolCalendar, local: str, expected: CalendarState) -> None:
    assert calendar.state_at(at(local)) == expected


def test_local_time_is_the_calendars_time_zone_not_utc(calendar: SchoolCalendar) -> None:
    monday_nine_in_shanghai = at("2026-09-07 01:00", ZoneInfo("UTC"))
    assert dt.datetime.fromtimestamp(monday_nine_in_shanghai, SHANGHAI).hour == 9
    assert calendar.state_at(monday_nine_in_shanghai) == SCHOOL_DAY
    # Monday 20:00 UTC is already Tuesday 04:00 in Shanghai: a school day, before lessons
    assert calendar.state_at(at("2026-09-07 20:00", ZoneInfo("UTC"))) == AFTER_HOURS


def test_state_at_is_deterministic_across_years(calendar: SchoolCalendar) -> None:
    moments = [at("2027-01-13 09:00"), at("2031-10-01 10:00"), at("2026-10-01 10:00"), at("2027-01-13 09:00")]
    first = [calendar.state_at(m) for m in moments]
    assert [calendar.state_at(m) for m in moments] == first
    assert first[0] == first[3]


def test_default_calendar_has_public_holidays_and_weekday_hours() -> None:
    calendar = SchoolCalendar.default()
    assert calendar.state_at(at("2026-09-07 16:59")) == SCHOOL_DAY
    assert calendar.state_at(at("2026-09-07 17:00")) == AFTER_HOURS
    assert calendar.state_at(at("2026-10-01 10:00")) == CalendarState(None, False, "National Day", True)
    assert calendar.state_at(at("2026-07-20 10:00")) == SCHOOL_DAY  # no terms: no school break
    taiwan = SchoolCalendar.default(region="TW", timezone="Asia/Taipei")
    assert taiwan.state_at(at("2026-10-09 10:00", ZoneInfo("Asia/Taipei"))).holiday == "National Day (observed)"


def test_default_refuses_an_unknown_region() -> None:
    with pytest.raises(ConfigError, match="region: unknown region 'XX'"):
        SchoolCalendar.default(region="XX")


def test_the_shipped_calendar_loads() -> None:
    calendar = SchoolCalendar.load(REPO / "deploy" / "examples" / "calendar.yaml")
    assert calendar.region == "CN" and calendar.terms and calendar.exam_days
    assert calendar.state_at(at("2026-10-01 10:00")).holiday == "National Day"
    assert calendar.state_at(at("2026-09-07 09:00")) == SCHOOL_DAY


# ---- ICS import ----------------------------------------------------------------------------------


def write_ics(path: Path) -> None:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test School//Calendar//EN")
    cal.add("version", "2.0")
    for uid, summary, start, end in [
        ("exam-1", "期末考试 Term-end exams", dt.date(2026, 12, 28), dt.date(2026, 12, 30)),  # Mon-Tue
        ("holiday-1", "Sports day holiday", dt.date(2026, 11, 20), dt.date(2026, 11, 21)),
        ("meeting-1", "Parents' meeting", dt.date(2026, 11, 23), dt.date(2026, 11, 24)),
    ]:
        event = icalendar.Event()
        event.add("uid", uid)
        event.add("summary", summary)
        event.add("dtstart", start)
        event.add("dtend", end)  # exclusive (RFC 5545)
        cal.add_component(event)
    timed = icalendar.Event()  # a timed exam in another zone: the local date is what counts
    timed.add("uid", "exam-2")
    timed.add("summary", "Make-up EXAM")
    timed.add("dtstart", dt.datetime(2026, 12, 3, 23, 0, tzinfo=ZoneInfo("UTC")))  # Dec 4, 07:00 Shanghai
    timed.add("dtend", dt.datetime(2026, 12, 4, 2, 0, tzinfo=ZoneInfo("UTC")))
    cal.add_component(timed)
    path.write_bytes(cal.to_ical())


def test_ics_exam_days_and_holidays(tmp_path: Path) -> None:
    (tmp_path / "ics").mkdir()
    write_ics(tmp_path / "ics" / "school.ics")
    calendar = SchoolCalendar.load(write(tmp_path, CALENDAR + "ics_files: [ics/school.ics]\n"))
    exam = "期末考试 Term-end exams"
    assert calendar.state_at(at("2026-12-28 09:00")) == CalendarState(exam, True, None, True)
    assert calendar.state_at(at("2026-12-29 09:00")).exam_day == exam
    assert calendar.state_at(at("2026-12-30 09:00")) == SCHOOL_DAY  # DTEND is exclusive
    assert calendar.state_at(at("2026-11-20 09:00")) == CalendarState(None, False, "Sports day holiday", True)
    assert calendar.state_at(at("2026-11-21 09:00")).holiday == WEEKEND  # Saturday, after the one-day event
    assert calendar.state_at(at("2026-11-23 09:00")) == SCHOOL_DAY  # matches no keyword
    assert calendar.state_at(at("2026-12-04 09:00")).exam_day == "Make-up EXAM"
    assert calendar.state_at(at("2026-12-03 09:00")).exam_day is None


# ---- validation errors ---------------------------------------------------------------------------


def load_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        SchoolCalendar.load(path)
    return path, str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "where", "fragment"),
    [
        pytest.param(
            "end: 2027-01-20}", "end: 2026-08-01}", "5: terms[0].end: ", "2026-08-01 is before start 2026-09-01",
            id="end-before-start",
        ),
        pytest.param('end: "12:00"', 'end: "25:00"', "10: class_hours[0].end: ", "'25:00' is not a time of day", id="bad-time"),
        pytest.param('start: "13:30"', "start: 13:30", "11: class_hours[1].start: ", 'quote the time', id="unquoted-time"),
        pytest.param("[mon, tue, wed", "[mon, tue, funday", "10: class_hours[0].days: ", "unknown weekday 'funday'", id="weekday"),
        pytest.param("region: CN", "region: XX", "2: region: ", "unknown region 'XX'", id="region"),
        pytest.param("subdivision: null", "subdivision: ZZ", "3: subdivision: ", "no subdivision 'ZZ'", id="subdivision"),
        pytest.param("timezone: Asia/Shanghai", "timezone: Mars/Olympus", "1: timezone: ", "unknown time zone", id="timezone"),
        pytest.param("[2026-10-10,", "[2026-10-12,", "13: make_up_workdays: ", "2026-10-12 is a Monday", id="make-up-weekday"),
        pytest.param("subdivision: null", "subdivisions: null", "3: subdivisions: ", "unknown field", id="unknown-key"),
    ],
)
def test_validation_errors_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, where: str, fragment: str
) -> None:
    assert old in CALENDAR
    path, message = load_error(tmp_path, CALENDAR.replace(old, new, 1))
    assert message.startswith(f"{path}:{where}"), message
    assert fragment in message


def test_a_missing_ics_file_names_the_entry(tmp_path: Path) -> None:
    path, message = load_error(tmp_path, CALENDAR + "ics_files:\n  - school.ics\n")
    assert message.startswith(f"{path}:15: ics_files[0]: {tmp_path / 'school.ics'}: file not found"), message


def test_an_unparseable_ics_file_names_it(tmp_path: Path) -> None:
    write(tmp_path, "this is not a calendar\n", "broken.ics")
    path, message = load_error(tmp_path, CALENDAR + f"ics_files: [{tmp_path / 'broken.ics'}]\n")
    assert message.startswith(f"{path}:14: ics_files[0]: {tmp_path / 'broken.ics'}: not a valid ICS calendar"), message
