"""Asking for an upgrade, deciding on it, asking for a rollback; and the dry run. Store functions only.

The collector's :class:`~collector.upgrades.service.UpgradeService` carries out what is asked here:
a request is a row; the plan's text is stored with it, so what the approver approved is what runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.inventory import InventoryEntry
from collector.runbooks.render import PlannedStep, RenderError, plan
from collector.runbooks.scope import build_scope
from collector.store import incidents as q
from collector.store import upgrades as u
from collector.store.tables import assets as assets_table
from collector.upgrades import core
from collector.upgrades.model import Plan


class RequestRefused(CollectorError):
    """The request cannot be made or decided as asked; the message says why."""


def known_assets(conn: Connection, entries: Mapping[str, InventoryEntry]) -> dict[str, dict[str, str]]:
    """Every asset the collector has recorded or the inventory names, with the facts selectors match."""
    facts: dict[str, dict[str, str]] = {}
    for row in conn.execute(sa.select(assets_table)):
        facts[row.name] = {"name": row.name, "kind": row.kind, "site": row.site or "", "role": row.role or "",
                           "tier": row.tier or "normal"}
    for name, entry in entries.items():
        facts.setdefault(name, {"name": name, "kind": entry.kind, "site": entry.site or "", "role": entry.role or "",
                                "tier": str(entry.tier)})
        facts[name].update({f"labels.{k}": v for k, v in entry.labels.items()})
    return facts


def affected(conn: Connection, upgrade: Plan, entries: Mapping[str, InventoryEntry]) -> list[str]:
    return sorted(name for name, facts in known_assets(conn, entries).items() if upgrade.assets.matches(facts))


def request(conn: Connection, upgrade: Plan, *, mode: str, actor: str, now: float,
            entries: Mapping[str, InventoryEntry]) -> int:
    """Record a check (queued at once) or an upgrade (waiting for the plan's approval); return its id."""
    targets = affected(conn, upgrade, entries)
    if not targets:
        raise RequestRefused(f"{upgrade.source}: assets: the selector matches no asset the collector knows "
                             "(see schoolops assets list)")
    not_before = datetime.fromisoformat(upgrade.window.start).timestamp() if upgrade.window.start else None
    if mode == "run" and not_before is not None and now > not_before + float(upgrade.window.duration):
        raise RequestRefused(f"{upgrade.source}: window.start: the window ({upgrade.window.start}, "
                             f"{upgrade.window.duration:g}s) has passed: give a new start")
    state = "queued" if mode == "check" else "waiting_approval"
    upgrade_id = u.create(conn, plan=upgrade.name, source=upgrade.source, plan_text=upgrade.text, mode=mode,
                          requested_by=actor, at=now, state=state,
                          approval_role=upgrade.approval.role if mode == "run" else None,
                          expires_at=now + float(upgrade.approval.expires) if mode == "run" else None,
                          not_before=not_before if mode == "run" else None)
    u.update(conn, upgrade_id, outcome={"assets": targets, "description": upgrade.description,
                                        "reason": upgrade.reason.reference, "reason_source": upgrade.reason.source.value,
                                        "detail": upgrade.reason.detail,
                                        "window_end": not_before + float(upgrade.window.duration)
                                        if not_before is not None and mode == "run" else None})
    q.audit(conn, now, actor, f"upgrade.{'check' if mode == 'check' else 'request'}", f"upgrade:{upgrade_id}",
            {"plan": upgrade.name, "assets": targets, "digest": u.digest(upgrade.text)})
    return upgrade_id


def decide(conn: Connection, upgrade_id: int, *, person: str, roles: Sequence[str], approve: bool, note: str | None,
           now: float) -> tuple[str | None, str]:
    """Approve or deny: ``(decision, "")``, or ``(None, why not)``. A refusal is written to the audit log
    too, so the caller must not roll the transaction back."""
    record = u.get(conn, upgrade_id)
    refusal = f"no upgrade request {upgrade_id}" if record is None else core.approval_refusal(
        upgrade_id=upgrade_id, state=record.state, role=record.approval_role, requested_by=record.requested_by,
        expires_at=record.expires_at, person=person, roles=roles, now=now)
    decision = "approved" if approve else "denied"
    ending = {} if approve else {"finished_at": now, "result": f"denied by {person}" + (f": {note}" if note else "")}
    if refusal is None and not u.move(conn, upgrade_id, "waiting_approval", decision, decided_by=person,
                                      decided_at=now, decision_note=note, **ending):
        refusal = f"upgrade {upgrade_id}: somebody decided a moment ago"
    if refusal is not None or record is None:
        q.audit(conn, now, person, "upgrade.approval_refused", f"upgrade:{upgrade_id}", {"reason": refusal})
        return None, str(refusal)
    q.audit(conn, now, person, f"upgrade.{decision}", f"upgrade:{upgrade_id}",
            {"plan": record.plan, "note": note, "digest": record.digest})
    return decision, ""


def request_rollback(conn: Connection, upgrade_id: int, *, actor: str, now: float) -> int:
    """Roll back by hand the assets an upgrade left upgraded (its plan's rollback steps, then its post-checks)."""
    record = u.get(conn, upgrade_id)
    if record is None or record.mode != "run":
        raise RequestRefused(f"no upgrade {upgrade_id} to roll back")
    if record.state not in ("succeeded", "incomplete", "rolled_back", "rollback_failed", "interrupted"):
        raise RequestRefused(f"upgrade {upgrade_id} is {record.state.replace('_', ' ')}: nothing was changed to roll back")
    upgraded = list(record.outcome.get("upgraded") or [])
    if record.state in ("rollback_failed", "interrupted"):
        upgraded += [a for a in record.outcome.get("rolled_back") or record.outcome.get("assets") or []
                     if a not in upgraded]
    if not upgraded:
        raise RequestRefused(f"upgrade {upgrade_id} left no asset upgraded: nothing to roll back")
    rollback_id = u.create(conn, plan=record.plan, source=record.source, plan_text=record.plan_text, mode="rollback",
                           requested_by=actor, at=now, state="queued", of_upgrade=upgrade_id)
    u.update(conn, rollback_id, outcome={"upgraded": upgraded, "before": record.outcome.get("before", {}),
                                         "assets": upgraded})
    q.audit(conn, now, actor, "upgrade.rollback_request", f"upgrade:{rollback_id}",
            {"of": upgrade_id, "assets": upgraded})
    return rollback_id


@dataclass(frozen=True)
class DryStep:
    phase: str
    batch: int | None
    asset: str
    step: PlannedStep


def dry_run(conn: Connection, upgrade: Plan, entries: Mapping[str, InventoryEntry]) -> tuple[list[str], list[DryStep]]:
    """Every step that would run, per phase, batch and asset, templates filled and secrets masked."""
    facts = known_assets(conn, entries)
    targets = sorted(name for name, f in facts.items() if upgrade.assets.matches(f))
    if not targets:
        raise RequestRefused(f"{upgrade.source}: assets: the selector matches no asset the collector knows")
    out: list[DryStep] = []

    def add(phase: str, runbook: object, asset: str, batch: int | None) -> None:
        known = {k: facts[asset].get(k) for k in ("kind", "site", "role", "tier")}
        scope = build_scope(asset, known=known, entry=entries.get(asset), incident=None, fault=None, variables={})
        try:
            steps = plan(runbook, scope)  # type: ignore[arg-type]
        except RenderError as exc:
            raise RequestRefused(f"{asset}: {exc}") from None
        out.extend(DryStep(phase, batch, asset, s) for s in steps)

    for asset in targets:
        add("pre_checks", upgrade.pre_checks.steps, asset, None)
    for asset in targets:
        add("backup", upgrade.backup.steps, asset, None)
        add("backup", upgrade.backup.restore_test, asset, None)
    for number, batch in enumerate(core.batches(targets, upgrade.serial), 1):
        for asset in batch:
            add("execute", upgrade.execute, asset, number)
        for asset in batch:
            add("post_checks", upgrade.post_checks.steps, asset, number)
    for asset in targets:
        add("rollback", upgrade.rollback, asset, None)
    return targets, out
