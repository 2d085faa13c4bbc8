"""Maintenance windows: scope, one-off and recurring activity, validation."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from collector.domain import AssetContext
from collector.incidents.maintenance import (
    MaintenanceWindow,
    Recurrence,
    Scope,
    validate_window,
    windows_covering,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEB = AssetContext(name="web-01", site="main-building", role="web", labels={"env": "prod", "rack": "a3"})


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI).timestamp()


WEB_ONLY = Scope(assets=frozenset({"web-01"}))


def window(scope: Scope = WEB_ONLY, *, starts_at: float = 1000.0, ends_at: float = 2000.0,
           recurrence: Recurrence | None = None, ended_at: float | None = None, owner: str = "li.wei") -> MaintenanceWindow:
    return MaintenanceWindow(id="mw-3", scope=scope, starts_at=starts_at, ends_at=ends_at, owner=owner,
                             reason="kernel update", recurrence=recurrence, ended_at=ended_at)


@pytest.mark.parametrize(
    ("scope", "matches"),
    [
        (Scope(), False),  # an empty scope never silences everything
        (Scope(assets=frozenset({"web-01"})), True),
        (Scope(assets=frozenset({"db-01"})), False),
        (Scope(sites=frozenset({"main-building"})), True),
        (Scope(roles=frozenset({"web"})), True),
        (Scope(roles=frozenset({"db"})), False),
        (Scope(assets=frozenset({"db-01"}), roles=frozenset({"web"})), True),  # any kind given matches
        (Scope(assets=frozenset({"db-01"}), sites=frozenset({"library"})), False),
        (Scope(roles=frozenset({"web"}), labels={"env": "prod"}), True),
        (Scope(roles=frozenset({"web"}), labels={"env": "prod", "rack": "b1"}), False),  # all labels must match
        (Scope(roles=frozenset({"web"}), labels={"owner": "x"}), False),  # a missing label does not match
        (Scope(labels={"env": "prod"}), True),  # labels alone select by label
        (Scope(labels={"env": "test"}), False),
        (Scope(sites=frozenset({"library"})), False),
    ],
)
def test_scope_matching(scope: Scope, matches: bool) -> None:
    assert scope.matches(WEB) is matches


@pytest.mark.parametrize(
    ("now", "active"),
    [(999.9, False), (1000.0, True), (1500.0, True), (1999.9, True), (2000.0, False), (5000.0, False)],
)
def test_a_one_off_window_is_active_from_its_start_up_to_its_end(now: float, active: bool) -> None:
    assert window().active_at(now) is active
    assert window().covers(WEB, now) is active
    assert window().active_until(now) == (2000.0 if active else None)


def test_a_window_ended_early_is_no_longer_active() -> None:
    ended = window(ended_at=1500.0)
    assert ended.active_at(1499.0) and ended.active_until(1499.0) == 1500.0
    assert not ended.active_at(1500.0)
    assert not ended.active_at(1800.0)


def test_a_window_covers_only_assets_in_its_scope() -> None:
    other = dataclasses.replace(WEB, name="db-01", role="db", site="library", labels={})
    assert window().covers(WEB, 1500.0)
    assert not window().covers(other, 1500.0)
    assert not window(Scope()).covers(WEB, 1500.0)


def test_windows_covering_keeps_the_active_matching_windows_in_order() -> None:
    a = dataclasses.replace(window(), id="a")
    b = dataclasses.replace(window(Scope(roles=frozenset({"web"}))), id="b")
    later = dataclasses.replace(window(starts_at=3000.0, ends_at=4000.0), id="later")
    elsewhere = dataclasses.replace(window(Scope(sites=frozenset({"library"}))), id="elsewhere")
    assert [w.id for w in windows_covering([a, later, elsewhere, b], WEB, 1500.0)] == ["a", "b"]


FRIDAY_NIGHTS = Recurrence(cron="0 22 * * 5", duration=2 * 3600, timezone="Asia/Shanghai")


def friday_nights() -> MaintenanceWindow:
    return window(starts_at=local(2025, 3, 1), ends_at=local(2025, 6, 1), recurrence=FRIDAY_NIGHTS)


@pytest.mark.parametrize(
    ("when", "active"),
    [
        ((2025, 3, 7, 22, 30), True),  # Friday 22:30 in Shanghai
        ((2025, 3, 7, 22, 0), True),  # the occurrence's first second
        ((2025, 3, 7, 23, 59, 59), True),
        ((2025, 3, 7, 21, 59), False),
        ((2025, 3, 8, 0, 0), False),  # the occurrence's end is excluded
        ((2025, 3, 8, 0, 30), False),  # Saturday 00:30
        ((2025, 3, 12, 22, 30), False),  # a Wednesday
        ((2025, 2, 28, 22, 30), False),  # a Friday before starts_at
        ((2025, 6, 6, 22, 30), False),  # a Friday after ends_at
        ((2025, 5, 30, 22, 30), True),  # the last Friday within the span
    ],
)
def test_a_weekly_window_in_shanghai_time(when: tuple[int, ...], active: bool) -> None:
    assert friday_nights().active_at(local(*when)) is active


def test_a_recurring_window_is_active_until_the_end_of_the_occurrence() -> None:
    assert friday_nights().active_until(local(2025, 3, 7, 22, 30)) == local(2025, 3, 8, 0, 0)


def test_a_recurring_window_is_clipped_to_its_span() -> None:
    # Starts in the middle of a Friday-night occurrence and ends before the next one is over.
    clipped = window(starts_at=local(2025, 3, 7, 23, 0), ends_at=local(2025, 3, 14, 23, 0), recurrence=FRIDAY_NIGHTS)
    assert not clipped.active_at(local(2025, 3, 7, 22, 30))
    assert clipped.active_at(local(2025, 3, 7, 23, 30))
    assert clipped.active_until(local(2025, 3, 14, 22, 30)) == local(2025, 3, 14, 23, 0)
    assert not clipped.active_at(local(2025, 3, 14, 23, 30))


def test_a_recurring_window_ended_early_stops_at_once() -> None:
    ended = dataclasses.replace(friday_nights(), ended_at=local(2025, 3, 7, 23, 0))
    assert ended.active_at(local(2025, 3, 7, 22, 30))
    assert not ended.active_at(local(2025, 3, 7, 23, 30))
    assert not ended.active_at(local(2025, 3, 14, 22, 30))


def test_occurrences_follow_local_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    daily = window(starts_at=datetime(2025, 3, 1, tzinfo=berlin).timestamp(),
                   ends_at=datetime(2025, 4, 30, tzinfo=berlin).timestamp(),
                   recurrence=Recurrence(cron="0 2 * * *", duration=1800, timezone="Europe/Berlin"))
    # Before and after the switch to summer time on 30 March, 02:15 local is inside.
    assert daily.active_at(datetime(2025, 3, 29, 2, 15, tzinfo=berlin).timestamp())
    assert daily.active_at(datetime(2025, 4, 2, 2, 15, tzinfo=berlin).timestamp())
    assert not daily.active_at(datetime(2025, 4, 2, 3, 15, tzinfo=berlin).timestamp())


def test_a_valid_window_is_returned_as_it_is() -> None:
    assert validate_window(friday_nights()) == friday_nights()
    assert validate_window(window()) == window()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": " "}, "id"),
        ({"scope": Scope()}, "scope"),
        ({"ends_at": 1000.0}, "ends_at"),
        ({"ends_at": 900.0}, "ends_at"),
        ({"starts_at": float("nan")}, "starts_at"),
        ({"ends_at": float("inf")}, "ends_at"),
        ({"ended_at": float("nan")}, "ended_at"),
        ({"owner": ""}, "owner"),
        ({"owner": "  "}, "owner"),
        ({"recurrence": Recurrence(cron="61 * * * *", duration=60)}, "recurrence.cron"),
        ({"recurrence": Recurrence(cron="every friday", duration=60)}, "recurrence.cron"),
        ({"recurrence": Recurrence(cron="0 0 30 2 *", duration=60)}, "recurrence.cron"),  # never happens
        ({"recurrence": Recurrence(cron="* * * * *", duration=0)}, "recurrence.duration"),
        ({"recurrence": Recurrence(cron="* * * * *", duration=-5)}, "recurrence.duration"),
        ({"recurrence": Recurrence(cron="* * * * *", duration=1000)}, "recurrence.duration"),  # the whole span
        ({"recurrence": Recurrence(cron="* * * * *", duration=60, timezone="Mars/Olympus")}, "recurrence.timezone"),
        ({"recurrence": Recurrence(cron="* * * * *", duration=60, timezone="")}, "recurrence.timezone"),
    ],
)
def test_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field.replace('.', '[.]')}: "):
        validate_window(dataclasses.replace(window(), **changes))  # type: ignore[arg-type]


def test_a_recurrence_with_no_occurrence_in_the_span_is_refused() -> None:
    wednesday = window(starts_at=local(2025, 3, 12, 8), ends_at=local(2025, 3, 12, 20), recurrence=FRIDAY_NIGHTS)
    with pytest.raises(ValueError, match="^recurrence.cron: .* no occurrence between starts_at and ends_at"):
        validate_window(wednesday)
