"""What people do to a patrol run: fill in manual items, sign it off, review it (one transaction each).

A manual item is filled in by a named patroller while the run is done but not yet signed; an
abnormal one with ``on_abnormal`` about an asset becomes a fault report, so it takes the normal
incident path. Signing needs every manual item filled in; reviewing needs the signature first.
Every action is in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from collector import CollectorError
from collector.patrol.model import Checklist, ManualMethod, text_for
from collector.store import incidents as q
from collector.store import patrol as p


class Refused(CollectorError):
    """The action is not possible now; the message says why and what to do."""


def fill(conn: Connection, checklists: Mapping[str, Checklist], run_id: int, item_id: str, *, asset: str, status: str,
         value: str | None, note: str | None, person: str, at: float) -> str:
    run = _run(conn, run_id)
    if run.state in ("signed", "reviewed"):
        raise Refused(f"patrol run {run_id} is {run.state}: its results can no longer change")
    if run.state != "done":
        raise Refused(f"patrol run {run_id} is {run.state}: fill in manual items once it is done")
    checklist = checklists.get(run.checklist)
    found = checklist.item(item_id) if checklist else None
    if found is None or not isinstance(found[1].method, ManualMethod):
        manual_ids = [i.id for _, i in checklist.items() if isinstance(i.method, ManualMethod)] if checklist else []
        raise Refused(f"{item_id!r} is not a manual item of {run.checklist}; manual items: {', '.join(manual_ids)}")
    _, item = found
    rows = [r for r in p.results(conn, run_id) if r.item == item_id]
    row = next((r for r in rows if r.asset == asset), None)
    if row is None:
        where = ", ".join(r.asset or "(the site)" for r in rows)
        raise Refused(f"{item_id} in run {run_id} has no row for {asset or 'the site'}; it has: {where}")
    if value is not None and len(value) > 500 or note is not None and len(note) > 2000:
        raise Refused("a value has at most 500 characters and a note 2000")
    fault = None
    if status == "abnormal" and item.on_abnormal is not None and asset:
        q.add_fault_report(conn, asset=asset, site=None, type=item.on_abnormal.type, severity=item.on_abnormal.level,
                           description=f"patrol {run.checklist}: {text_for(item.check, 'en')}: "
                                       f"{value or 'abnormal'}{' — ' + note if note else ''}", reporter=person, at=at)
        fault = f"report:{item_id}"
    p.update_result(conn, row.id, status=status, evidence=value or "", handler=person, note=note, at=at,
                    handling="recorded" if status == "abnormal" else "", fault=fault, reason="")
    q.audit(conn, at, person, "patrol.fill", f"patrol:{run_id}", {"item": item_id, "asset": asset, "status": status})
    return status


def sign(conn: Connection, run_id: int, *, person: str, at: float, note: Any = None) -> None:
    run = _run(conn, run_id)
    if run.state != "done":
        raise Refused(f"patrol run {run_id} is {run.state}: only a finished, unsigned run can be signed")
    pending = [f"{r.item}{' on ' + r.asset if r.asset else ''}" for r in p.results(conn, run_id) if r.status == "pending"]
    if pending:
        raise Refused(f"fill in the manual items first (schoolops patrol fill): {', '.join(pending)}")
    if not p.update_run(conn, run_id, expect_state="done", state="signed", signed_by=person, signed_at=at):
        raise Refused(f"patrol run {run_id} changed meanwhile; look again")
    q.audit(conn, at, person, "patrol.sign", f"patrol:{run_id}")


def review(conn: Connection, run_id: int, *, person: str, at: float, note: str | None = None) -> None:
    run = _run(conn, run_id)
    if run.state != "signed":
        raise Refused(f"patrol run {run_id} is {run.state}: it is reviewed after the patroller signs it off")
    if not p.update_run(conn, run_id, expect_state="signed", state="reviewed", reviewed_by=person, reviewed_at=at,
                        review_note=note):
        raise Refused(f"patrol run {run_id} changed meanwhile; look again")
    q.audit(conn, at, person, "patrol.review", f"patrol:{run_id}", {"note": note or ""})


def _run(conn: Connection, run_id: int) -> p.PatrolRun:
    run = p.get_run(conn, run_id)
    if run is None:
        raise Refused(f"no patrol run {run_id}")
    return run
