"""Notify or hold: precedence (consequence, maintenance, flapping, info) and the reasons people read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.domain import Severity
from collector.incidents.decide import Hold, NotifyDecision, decide
from collector.incidents.flapping import FlapState
from collector.incidents.maintenance import MaintenanceWindow, Scope

NOW = datetime(2025, 3, 7, 12, 0, tzinfo=UTC).timestamp()
KERNEL = MaintenanceWindow(
    id="mw-3", scope=Scope(assets=frozenset({"web-01"})), starts_at=NOW - 3600,
    ends_at=datetime(2025, 3, 7, 14, 0, tzinfo=UTC).timestamp(), owner="li.wei", reason="kernel update",
)
FLAPPING = FlapState(history=(False, True) * 10, flapping=True, percent=34.2)
CALM = FlapState(history=(True,) * 21, flapping=False, percent=0.0)


def decision(severity: Severity = Severity.P3, event: str = "opened", *, maintenance: list[MaintenanceWindow] | None = None,
             flapping: FlapState | None = None, parent: tuple[str, str | None] | None = None) -> NotifyDecision:
    return decide(
        severity=severity, event=event, maintenance=maintenance or [], flapping=flapping,
        parent_incident=parent[0] if parent else None, parent_asset=parent[1] if parent else None,
        now=NOW, asset="web-01",
    )


@pytest.mark.parametrize(
    ("severity", "maintenance", "flapping", "parent", "hold"),
    [
        (Severity.P3, [KERNEL], FLAPPING, ("12", "core-sw-01"), Hold.CONSEQUENCE),
        (Severity.INFO, [KERNEL], FLAPPING, ("12", "core-sw-01"), Hold.CONSEQUENCE),
        (Severity.P1, [KERNEL], FLAPPING, None, Hold.MAINTENANCE),
        (Severity.INFO, [KERNEL], None, None, Hold.MAINTENANCE),
        (Severity.P2, [], FLAPPING, None, Hold.FLAPPING),
        (Severity.INFO, [], FLAPPING, None, Hold.FLAPPING),
        (Severity.INFO, [], CALM, None, Hold.INFO),
        (Severity.INFO, [], None, None, Hold.INFO),
        (Severity.P1, [], CALM, None, None),
        (Severity.P4, [], None, None, None),
    ],
)
def test_precedence(severity: Severity, maintenance: list[MaintenanceWindow], flapping: FlapState | None,
                    parent: tuple[str, str] | None, hold: Hold | None) -> None:
    result = decision(severity, maintenance=maintenance, flapping=flapping, parent=parent)
    assert result.hold is hold
    assert result.notify is (hold is None)


def test_reason_for_a_consequence_of_a_parent_outage() -> None:
    assert decision(parent=("12", "core-sw-01")).reason == "held: consequence of core-sw-01 being down (incident 12); P3 incident opened"


def test_reason_for_a_consequence_when_the_parent_asset_is_unknown() -> None:
    assert decision(parent=("12", None)).reason == "held: consequence of incident 12; P3 incident opened"


def test_reason_for_maintenance_names_the_window_its_owner_and_its_end() -> None:
    assert decision(maintenance=[KERNEL]).reason == (
        "held: web-01 is in maintenance window mw-3 (kernel update, owner li.wei) until 14:00 UTC; P3 incident opened"
    )


def test_maintenance_ending_on_another_day_shows_the_date() -> None:
    long = MaintenanceWindow(id="mw-4", scope=KERNEL.scope, starts_at=NOW - 60, owner="zhang.min", reason="rewiring",
                             ends_at=datetime(2025, 3, 9, 8, 30, tzinfo=UTC).timestamp())
    assert "until 2025-03-09 08:30 UTC" in decision(maintenance=[long]).reason


def test_of_several_windows_the_latest_ending_is_named() -> None:
    long = MaintenanceWindow(id="mw-4", scope=KERNEL.scope, starts_at=NOW - 60, owner="zhang.min", reason="rewiring",
                             ends_at=datetime(2025, 3, 7, 18, 0, tzinfo=UTC).timestamp())
    reason = decision(maintenance=[KERNEL, long]).reason
    assert reason.startswith("held: web-01 is in maintenance window mw-4 (rewiring, owner zhang.min) and 1 other window until 18:00 UTC")


def test_windows_not_active_now_do_not_hold() -> None:
    over = MaintenanceWindow(id="mw-1", scope=KERNEL.scope, starts_at=NOW - 7200, ends_at=NOW - 3600, owner="li.wei", reason="x")
    ended = MaintenanceWindow(id="mw-2", scope=KERNEL.scope, starts_at=NOW - 7200, ends_at=NOW + 3600, owner="li.wei",
                              reason="x", ended_at=NOW - 1)
    result = decision(maintenance=[over, ended])
    assert result == NotifyDecision(True, None, "notify: P3 incident opened")


def test_reason_for_flapping_gives_the_percentage() -> None:
    assert decision(flapping=FLAPPING).reason == "held: the fault is flapping (34% state changes); P3 incident opened"


def test_reason_for_info_severity() -> None:
    assert decision(Severity.INFO).reason == "held: info severity is recorded and pages nobody; info incident opened"


@pytest.mark.parametrize(
    ("severity", "event", "reason"),
    [
        (Severity.P3, "opened", "notify: P3 incident opened"),
        (Severity.P1, "reopened", "notify: P1 incident reopened"),
        (Severity.P2, "severity raised to P2", "notify: P2 incident: severity raised to P2"),
        (Severity.P4, "maintenance ended with the fault still present",
         "notify: P4 incident: maintenance ended with the fault still present"),
    ],
)
def test_reason_for_a_notification_names_the_event(severity: Severity, event: str, reason: str) -> None:
    assert decision(severity, event) == NotifyDecision(True, None, reason)


@pytest.mark.parametrize(
    "kwargs",
    [{"parent": ("12", "core-sw-01")}, {"maintenance": [KERNEL]}, {"flapping": FLAPPING}, {}],
)
def test_every_reason_names_the_event(kwargs: dict[str, object]) -> None:
    assert decision(Severity.P2, "severity raised to P2", **kwargs).reason.endswith("severity raised to P2")  # type: ignore[arg-type]
