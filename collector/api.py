"""The people's API: incidents, preventive measures, maintenance windows, fault reports.

Authenticated with an API token (`schoolops api-token create USER`); the token's user is the actor
recorded on the incident timeline and in the audit log. Bodies are validated with msgspec; every
refusal is a JSON error naming the problem.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta, Struct

from collector import keys, tokens
from collector.auth.roles import ROLE_PERMISSIONS, Permission, allowed
from collector.domain import FaultType, Severity
from collector.incidents import actions
from collector.incidents import windows as window_model
from collector.incidents.lifecycle import Action
from collector.store import incidents as q
from collector.store.sql import find_api_token
from schoolops.units import dec_hook
from schoolops.wire import AssetName, Label

Strict = {"forbid_unknown_fields": True, "kw_only": True}
Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def error(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"status": "error", "code": code, "reason": reason}, status=status)


class NoteBody(Struct, **Strict):
    note: Annotated[str, Meta(max_length=10_000)] | None = None


class TextBody(Struct, **Strict):
    text: Annotated[str, Meta(min_length=1, max_length=10_000)]


class MeasureBody(Struct, **Strict):
    description: Annotated[str, Meta(min_length=1, max_length=2000)]
    owner: Annotated[str, Meta(min_length=1, max_length=64)]
    due: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}\Z")]


class RcaBody(Struct, **Strict):
    rca: Annotated[str, Meta(min_length=1, max_length=20_000)] | None = None
    measures: Annotated[list[MeasureBody], Meta(max_length=50)] = []


class ScopeBody(Struct, **Strict):
    assets: list[AssetName] = []
    sites: list[Label] = []
    roles: list[Label] = []
    labels: dict[str, Label] = {}


class RecurrenceBody(Struct, **Strict):
    cron: Annotated[str, Meta(min_length=1, max_length=100)]
    duration: Annotated[float, Meta(gt=0)]
    timezone: Annotated[str, Meta(max_length=64)] = "UTC"


class MaintenanceBody(Struct, **Strict):
    scope: ScopeBody
    ends_at: float
    owner: Annotated[str, Meta(min_length=1, max_length=64)]
    reason: Annotated[str, Meta(min_length=1, max_length=2000)]
    starts_at: float | None = None  # default: now
    recurrence: RecurrenceBody | None = None


class SecurityReportBody(Struct, **Strict):
    reference: Annotated[str, Meta(min_length=1, max_length=500)]  # the report's number or where it went


class FaultReportBody(Struct, **Strict):
    description: Annotated[str, Meta(min_length=1, max_length=4000)]
    asset: AssetName | None = None
    site: Label | None = None
    type: FaultType = FaultType.APPLICATION
    severity: Annotated[str, Meta(pattern=r"^(?i:p[1-4]|info)\Z")] = "P4"

    def __post_init__(self) -> None:
        if (self.asset is None) == (self.site is None):
            raise ValueError("name either the asset or the site (location) of the fault")


def person_roles(app: web.Application, person: str) -> tuple[str, ...] | None:
    """The roles of ``person`` in the on-call file; None when the file does not name them."""
    oncall = app[keys.ONCALL]
    found = next((p for p in getattr(oncall, "people", ()) if p.id == person), None)
    return tuple(str(role) for role in found.roles) if found is not None else None


def authenticated(handler: Handler, needs: Permission) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The API token's person, who must hold a role granting ``needs``; the handler gets their id."""
    async def wrapper(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        parsed = tokens.parse(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
        if parsed is None:
            return error(401, "missing_token", "send an API token as 'Authorization: Bearer <token>' (schoolops api-token create)")
        record = await request.app[keys.STORE].run(lambda c: find_api_token(c, parsed[0]))
        if record is None or not tokens.verify(record, parsed[1]):
            return error(401, "invalid_token", "unknown or revoked API token")
        person = record.asset
        roles = person_roles(request.app, person)
        if roles is None:
            return error(403, "unknown_person", f"{person!r} is not in the on-call file: add them with their roles")
        if not allowed(roles, needs):
            return error(403, "forbidden", f"{person} ({', '.join(roles)}) may not do this: it needs a role with "
                                            f"{needs.value} ({', '.join(r for r, p in ROLE_PERMISSIONS.items() if needs in p)})")
        try:
            return await handler(request, person)
        except actions.ActionError as exc:
            return error(exc.status, type(exc).__name__.lower(), str(exc))
        except ValueError as exc:
            return error(422, "invalid_request", str(exc))

    return wrapper


async def body(request: web.Request, type_: type[Any]) -> Any:
    raw = await request.read()
    try:
        return msgspec.json.decode(raw or b"{}", type=type_, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise actions.InvalidInput(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise actions.InvalidInput(f"request body is not valid JSON: {exc}") from None


def incident_id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise actions.IncidentNotFound(f"no incident {request.match_info['id']!r}") from None


async def list_incidents(request: web.Request, actor: str) -> web.Response:
    states = [s for s in request.query.get("state", "").split(",") if s] or None
    severity = request.query.get("severity")
    max_severity = int(Severity.parse(severity)) if severity else None
    found = await request.app[keys.STORE].run(lambda c: q.list_incidents(
        c, states=states, asset=request.query.get("asset"), site=request.query.get("site"), max_severity=max_severity,
        limit=min(int(request.query.get("limit", "200")), 1000)))
    return web.json_response([i.as_dict() for i in found])


async def show_incident(request: web.Request, actor: str) -> web.Response:
    number = incident_id(request)

    def read(conn: Any) -> dict[str, Any]:
        incident = q.get_incident(conn, number)
        if incident is None:
            raise actions.IncidentNotFound(f"no incident {number}")
        return {
            **incident.as_dict(),
            "faults": [f.as_dict() for f in q.incident_faults(conn, number)],
            "timeline": [e.__dict__ for e in q.events(conn, number)],
            "measures": [m.__dict__ for m in q.measures(conn, number)],
        }

    return web.json_response(await request.app[keys.STORE].run(read))


def transition_handler(action: Action) -> Handler:
    async def handle(request: web.Request, actor: str) -> web.Response:
        number, note = incident_id(request), (await body(request, NoteBody)).note
        incident = await request.app[keys.STORE].run(
            lambda c: actions.transition(c, number, action, actor=actor, at=time.time(), note=note))
        return web.json_response(incident.as_dict())

    return handle


async def add_note(request: web.Request, actor: str) -> web.Response:
    number, text = incident_id(request), (await body(request, TextBody)).text
    incident = await request.app[keys.STORE].run(lambda c: actions.add_note(c, number, actor=actor, at=time.time(), text=text))
    return web.json_response(incident.as_dict())


async def submit_rca(request: web.Request, actor: str) -> web.Response:
    number, data = incident_id(request), await body(request, RcaBody)
    measures = [actions.MeasureInput(m.description, m.owner, m.due) for m in data.measures]
    incident = await request.app[keys.STORE].run(
        lambda c: actions.submit_rca(c, number, actor=actor, at=time.time(), rca=data.rca, measures=measures))
    return web.json_response(incident.as_dict())


async def complete_measure(request: web.Request, actor: str) -> web.Response:
    measure_id = int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
    measure = await request.app[keys.STORE].run(lambda c: actions.complete_measure(c, measure_id, actor=actor, at=time.time()))
    return web.json_response(measure.__dict__)


async def list_maintenance(request: web.Request, actor: str) -> web.Response:
    found = await request.app[keys.STORE].run(lambda c: q.windows(c))
    return web.json_response([w.__dict__ for w in found])


async def add_maintenance(request: web.Request, actor: str) -> web.Response:
    data = await body(request, MaintenanceBody)
    now = time.time()
    scope = msgspec.to_builtins(data.scope)
    recurrence = msgspec.to_builtins(data.recurrence) if data.recurrence else None
    starts_at = data.starts_at if data.starts_at is not None else now
    window_model.check(scope, starts_at, data.ends_at, data.owner, data.reason, recurrence)
    window_id = await request.app[keys.STORE].run(lambda c: _add_window(c, scope, starts_at, data, recurrence, now, actor))
    return web.json_response({"id": window_id}, status=201)


def _add_window(conn: Any, scope: dict[str, Any], starts_at: float, data: MaintenanceBody,
                recurrence: dict[str, Any] | None, now: float, actor: str) -> int:
    window_id = q.add_window(conn, scope=scope, starts_at=starts_at, ends_at=data.ends_at, owner=data.owner,
                             reason=data.reason, recurrence=recurrence, at=now, actor=actor)
    q.audit(conn, now, actor, "maintenance.add", f"maintenance:{window_id}", {"scope": scope, "ends_at": data.ends_at})
    return window_id


async def end_maintenance(request: web.Request, actor: str) -> web.Response:
    window_id = int(request.match_info["id"]) if request.match_info["id"].isdigit() else -1
    now = time.time()

    def end(conn: Any) -> bool:
        done = q.end_window(conn, window_id, now)
        if done:
            q.audit(conn, now, actor, "maintenance.end", f"maintenance:{window_id}")
        return done

    if not await request.app[keys.STORE].run(end):
        raise actions.ActionRefused(f"maintenance window {window_id} does not exist or has ended already")
    return web.json_response({"id": window_id, "ended_at": now})


async def report_fault(request: web.Request, actor: str) -> web.Response:
    data = await body(request, FaultReportBody)
    report_id = await request.app[keys.STORE].run(lambda c: q.add_fault_report(
        c, asset=data.asset, site=data.site, description=data.description, type=data.type,
        severity=Severity.parse(data.severity), reporter=actor, at=time.time()))
    await request.app[keys.ENGINE].take_fault_reports_now()
    reports = await request.app[keys.STORE].run(lambda c: _report_incident(c, report_id))
    return web.json_response({"report": report_id, "incident": reports}, status=201)


def _report_incident(conn: Any, report_id: int) -> int | None:
    import sqlalchemy as sa

    from collector.store.tables import fault_reports

    return conn.execute(sa.select(fault_reports.c.incident_id).where(fault_reports.c.id == report_id)).scalar_one()


async def security_reported(request: web.Request, actor: str) -> web.Response:
    from collector.store import outbox

    number, data, now = incident_id(request), await body(request, SecurityReportBody), time.time()

    def mark(conn: Any) -> bool:
        done = outbox.mark_security_reported(conn, number, now, actor, data.reference)
        if done:
            q.add_event(conn, number, now, "security_reported", actor,
                        f"security incident reported to the higher authority by {actor}: {data.reference}")
            q.audit(conn, now, actor, "incident.security_reported", f"incident:{number}", {"reference": data.reference})
        return done

    if not await request.app[keys.STORE].run(mark):
        raise actions.ActionRefused(f"incident {number} has no open reporting clock")
    return web.json_response({"incident": number, "reported_at": now})


def _inventory_path(request: web.Request) -> Any:
    from pathlib import Path

    settings = request.app[keys.SETTINGS]
    if not settings.inventory_file:
        raise actions.ActionRefused("this collector has no inventory_file: set it in the collector config")
    return Path(settings.inventory_file)


async def list_inventory(request: web.Request, actor: str) -> web.Response:
    from collector.inventory import load_entries
    from schoolops.units import enc_hook

    path = _inventory_path(request)
    entries = await asyncio.to_thread(load_entries, path) if path.exists() else []
    return web.json_response([msgspec.to_builtins(e, enc_hook=enc_hook) for e in entries])


async def put_inventory(request: web.Request, actor: str) -> web.Response:
    from collector.inventory import InventoryEntry, load_entries, write_entries
    from schoolops import ConfigError

    name, path = request.match_info["name"], _inventory_path(request)
    entry = await body(request, InventoryEntry)
    if entry.name != name:
        raise actions.InvalidInput(f"the body names {entry.name!r}, the URL {name!r}")
    entries = await asyncio.to_thread(load_entries, path) if path.exists() else []
    existed = any(e.name == name for e in entries)
    updated = [entry if e.name == name else e for e in entries] if existed else [*entries, entry]
    try:
        await asyncio.to_thread(write_entries, path, updated)
    except ConfigError as exc:
        raise actions.InvalidInput(str(exc)) from None
    await _after_inventory_change(request, actor, "inventory.set" if existed else "inventory.add", name)
    return web.json_response({"name": name, "created": not existed}, status=200 if existed else 201)


async def delete_inventory(request: web.Request, actor: str) -> web.Response:
    from collector.inventory import load_entries, write_entries

    name, path = request.match_info["name"], _inventory_path(request)
    entries = await asyncio.to_thread(load_entries, path) if path.exists() else []
    if not any(e.name == name for e in entries):
        raise actions.IncidentNotFound(f"{name!r} is not in the inventory")
    children = [e.name for e in entries if name in e.parents]
    if children:
        raise actions.ActionRefused(f"{name} is the parent of {', '.join(children)}: change their parents first")
    await asyncio.to_thread(write_entries, path, [e for e in entries if e.name != name])
    await _after_inventory_change(request, actor, "inventory.remove", name)
    return web.json_response({"name": name, "removed": True})


async def _after_inventory_change(request: web.Request, actor: str, action: str, name: str) -> None:
    now = time.time()
    await request.app[keys.STORE].run(lambda c: q.audit(c, now, actor, action, f"asset:{name}"))
    from collector.app import RELOAD_INVENTORY

    await request.app[RELOAD_INVENTORY]()  # type: ignore[operator]


def add_routes(app: web.Application) -> None:
    r, P = app.router, Permission
    r.add_get("/api/v1/incidents", authenticated(list_incidents, P.READ))
    r.add_get("/api/v1/incidents/{id}", authenticated(show_incident, P.READ))
    for action, path in ((Action.ACKNOWLEDGE, "acknowledge"), (Action.RESOLVE, "resolve"), (Action.REVIEW, "review"),
                         (Action.CLOSE, "close"), (Action.REOPEN, "reopen")):
        r.add_post(f"/api/v1/incidents/{{id}}/{path}", authenticated(transition_handler(action), P.INCIDENT_ACT))
    r.add_post("/api/v1/incidents/{id}/notes", authenticated(add_note, P.INCIDENT_ACT))
    r.add_post("/api/v1/incidents/{id}/rca", authenticated(submit_rca, P.INCIDENT_ACT))
    r.add_post("/api/v1/measures/{id}/done", authenticated(complete_measure, P.MEASURE_DONE))
    r.add_get("/api/v1/maintenance", authenticated(list_maintenance, P.READ))
    r.add_post("/api/v1/maintenance", authenticated(add_maintenance, P.MAINTENANCE))
    r.add_post("/api/v1/maintenance/{id}/end", authenticated(end_maintenance, P.MAINTENANCE))
    r.add_post("/api/v1/faults", authenticated(report_fault, P.FAULT_REPORT))
    r.add_post("/api/v1/incidents/{id}/security-report", authenticated(security_reported, P.SECURITY_REPORT))
    r.add_get("/api/v1/inventory", authenticated(list_inventory, P.READ))
    r.add_put("/api/v1/inventory/{name}", authenticated(put_inventory, P.INVENTORY_EDIT))
    r.add_delete("/api/v1/inventory/{name}", authenticated(delete_inventory, P.INVENTORY_EDIT))
