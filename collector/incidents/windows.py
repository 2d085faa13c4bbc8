"""Maintenance windows between their stored form (JSON scope) and the pure model, validated on the way in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.incidents.maintenance import MaintenanceWindow, Recurrence, Scope, validate_window
from collector.store.incidents import WindowRecord


def scope_from(data: Mapping[str, Any]) -> Scope:
    return Scope(
        assets=frozenset(data.get("assets", ())), sites=frozenset(data.get("sites", ())),
        roles=frozenset(data.get("roles", ())), labels=dict(data.get("labels", {})),
    )


def scope_to(scope: Scope) -> dict[str, Any]:
    return {"assets": sorted(scope.assets), "sites": sorted(scope.sites), "roles": sorted(scope.roles),
            "labels": dict(scope.labels)}


def recurrence_from(data: Mapping[str, Any] | None) -> Recurrence | None:
    if not data:
        return None
    return Recurrence(cron=str(data["cron"]), duration=float(data["duration"]), timezone=str(data.get("timezone", "UTC")))


def to_window(record: WindowRecord) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=str(record.id), scope=scope_from(record.scope), starts_at=record.starts_at, ends_at=record.ends_at,
        owner=record.owner, reason=record.reason, recurrence=recurrence_from(record.recurrence), ended_at=record.ended_at,
    )


def check(scope: Mapping[str, Any], starts_at: float, ends_at: float, owner: str, reason: str,
          recurrence: Mapping[str, Any] | None) -> MaintenanceWindow:
    """Validate a new window (raises ValueError naming the field) before it is stored."""
    return validate_window(MaintenanceWindow(
        id="new", scope=scope_from(scope), starts_at=starts_at, ends_at=ends_at, owner=owner, reason=reason,
        recurrence=recurrence_from(recurrence),
    ))
