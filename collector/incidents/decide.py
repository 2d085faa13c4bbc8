"""Whether an incident event is notified now or held, and why, in words a person reads.

Precedence: a consequence of a parent outage first (the parent's incident already pages), then
maintenance, then flapping, then info severity (recorded, pages nobody); otherwise notify.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from collector.domain import Severity
from collector.incidents.flapping import FlapState
from collector.incidents.maintenance import MaintenanceWindow


class Hold(enum.StrEnum):
    MAINTENANCE = "maintenance"
    FLAPPING = "flapping"
    CONSEQUENCE = "consequence"
    INFO = "info"


@dataclass(frozen=True)
class NotifyDecision:
    notify: bool
    hold: Hold | None
    reason: str  # plain English, e.g. "held: the fault is flapping (34% state changes); P3 incident opened"


def decide(
    *,
    severity: Severity,
    event: str,
    maintenance: list[MaintenanceWindow],
    flapping: FlapState | None,
    parent_incident: str | None,
    parent_asset: str | None,
    now: float,
    asset: str = "the asset",
) -> NotifyDecision:
    """Notify or hold one incident event.

    ``event`` is what happened ("opened", "reopened", "severity raised to P2", "maintenance ended
    with the fault still present"); it appears in every reason. ``maintenance`` are the windows
    whose scope covers ``asset`` (``windows_covering``); windows not active at ``now`` are ignored.
    """
    what = _what(severity, event)
    if parent_incident is not None:
        parent = f"{parent_asset} being down (incident {parent_incident})" if parent_asset else f"incident {parent_incident}"
        return NotifyDecision(False, Hold.CONSEQUENCE, f"held: consequence of {parent}; {what}")
    active = [(until, w) for w in maintenance if (until := w.active_until(now)) is not None]
    if active:
        until, window = max(active, key=lambda pair: pair[0])
        others = f" and {len(active) - 1} other window{'s' if len(active) > 2 else ''}" if len(active) > 1 else ""
        return NotifyDecision(
            False,
            Hold.MAINTENANCE,
            f"held: {asset} is in maintenance window {window.id} ({window.reason}, owner {window.owner}){others} "
            f"until {_when(until, now)}; {what}",
        )
    if flapping is not None and flapping.flapping:
        return NotifyDecision(
            False, Hold.FLAPPING, f"held: the fault is flapping ({flapping.percent:.0f}% state changes); {what}"
        )
    if severity is Severity.INFO:
        return NotifyDecision(False, Hold.INFO, f"held: info severity is recorded and pages nobody; {what}")
    return NotifyDecision(True, None, f"notify: {what}")


def _what(severity: Severity, event: str) -> str:
    """"P3 incident opened" for a one-word event, "P2 incident: severity raised to P2" otherwise."""
    event = event.strip()
    return f"{severity.label} incident {event}" if " " not in event else f"{severity.label} incident: {event}"


def _when(moment: float, now: float) -> str:
    """"14:00 UTC" on the day of ``now``, "2025-03-08 14:00 UTC" on another day."""
    at, today = datetime.fromtimestamp(moment, UTC), datetime.fromtimestamp(now, UTC)
    return at.strftime("%H:%M UTC") if at.date() == today.date() else at.strftime("%Y-%m-%d %H:%M UTC")
