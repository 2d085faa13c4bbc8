"""The runbook API: list runbooks, start one (or dry-run it), read run records, approve or deny.

:func:`request_run` is how a person starts a run, here and on the web pages alike.

The API token's user is who starts or decides; for approvals that user must be a person in the
on-call file holding the requested role, and may not be the one who started the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct

from collector import keys
from collector.api import Strict, authenticated, body, error
from collector.auth.roles import Permission
from collector.incidents import actions
from collector.store import runbooks as r
from schoolops.wire import AssetName


class RunBody(Struct, **Strict):
    asset: AssetName | None = None
    incident: Annotated[int, Meta(ge=1)] | None = None
    variables: dict[Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]*\Z", max_length=64)],
                    Annotated[str, Meta(max_length=1000)]] = {}
    dry_run: bool = False


class DecisionBody(Struct, **Strict):
    note: Annotated[str, Meta(max_length=2000)] | None = None


def _runbooks(app: web.Application) -> dict[str, Any]:
    from collector.app import RUNBOOKS

    return app[RUNBOOKS]


async def list_runbooks(request: web.Request, actor: str) -> web.StreamResponse:
    return web.json_response([{"name": rb.name, "description": rb.description, "automatic": rb.automatic,
                               "safe_for_automation": rb.safe_for_automation, "steps": [s.name for s in rb.steps]}
                              for rb in _runbooks(request.app).values()])


@dataclass(frozen=True)
class RunRequest:
    """A person's request to run a runbook, checked: the run queued, or the steps a dry run would take."""

    asset: str
    run_id: int | None  # None for a dry run: nothing was queued
    steps: list[tuple[int, Any]]  # (depth, planned step) of a dry run; empty when queued


async def request_run(app: web.Application, name: str, *, asset: str | None, incident: int | None,
                      variables: Mapping[str, str], dry_run: bool, actor: str) -> RunRequest:
    """The one path a run started by a person takes (this API and the web pages): resolve the target,
    render every step, then plan it (``dry_run``) or queue it with ``actor`` as who started it. The
    runbook service runs it like any other: approvals, the budget and the timeline apply the same.
    ``manual.RequestRefused`` says why a request cannot start."""
    from collector.inventory import load_entries
    from collector.runbooks import manual

    settings, store, runbooks = app[keys.SETTINGS], app[keys.STORE], _runbooks(app)
    target = await store.run(lambda c: manual.resolve_target(c, asset=asset, incident_id=incident))
    entries = await asyncio.to_thread(load_entries, settings.inventory_file) if settings.inventory_file else []
    entry = next((e for e in entries if e.name == target.asset), None)
    if dry_run:
        return RunRequest(target.asset, None, list(manual.dry_run(runbooks, name, target, entry, variables)))
    run_id = await store.run(lambda c: manual.queue(c, runbooks, name, target, entry, variables, actor=actor,
                                                    now=time.time()))
    return RunRequest(target.asset, run_id, [])


async def start_run(request: web.Request, actor: str) -> web.StreamResponse:
    from collector.runbooks import manual

    spec: RunBody = await body(request, RunBody)
    try:
        done = await request_run(request.app, request.match_info["name"], asset=spec.asset, incident=spec.incident,
                                 variables=spec.variables, dry_run=spec.dry_run, actor=actor)
    except manual.RequestRefused as exc:
        status = 404 if str(exc).startswith(("no runbook", "no incident", "no asset")) else 422
        return error(status, "refused", str(exc))
    if done.run_id is None:
        return web.json_response({"asset": done.asset, "dry_run": True, "steps": [
            {"depth": depth, "step": s.name, "action": s.action, "command": s.shown, "mutating": s.mutating,
             "verify": s.verify.shown if s.verify else None, "simulated": s.simulated} for depth, s in done.steps]})
    run_id = done.run_id
    run = await request.app[keys.STORE].run(lambda c: r.get_run(c, run_id))
    return web.json_response(run.as_dict() if run is not None else {"id": run_id}, status=201)


async def list_runs(request: web.Request, actor: str) -> web.StreamResponse:
    query = request.query
    try:
        incident = int(query["incident"]) if "incident" in query else None
    except ValueError:
        return error(422, "invalid_request", "incident: a number")
    states = tuple(query["state"].split(",")) if "state" in query else None
    runs = await request.app[keys.STORE].run(lambda c: r.list_runs(c, incident_id=incident, asset=query.get("asset"),
                                                                   states=states))
    return web.json_response([run.as_dict() for run in runs])


async def show_run(request: web.Request, actor: str) -> web.StreamResponse:
    run_id = _id(request)
    run, steps, approvals = await request.app[keys.STORE].run(
        lambda c: (r.get_run(c, run_id), r.steps(c, run_id), r.approvals(c, run_id=run_id)))
    if run is None:
        raise actions.IncidentNotFound(f"no run {run_id}")
    return web.json_response({**run.as_dict(), "steps": [s.as_dict() for s in steps],
                              "approvals": [a.as_dict() for a in approvals]})


def decide(approve: bool) -> Any:
    async def handler(request: web.Request, actor: str) -> web.StreamResponse:
        from collector.app import ONCALL, RUNBOOK_SERVICE

        run_id = _id(request)
        spec: DecisionBody = await body(request, DecisionBody)
        oncall = request.app[ONCALL]
        person = next((p for p in oncall.people if p.id == actor), None) if oncall is not None else None
        if person is None:
            return error(403, "not_a_person", f"{actor!r} is not a person in the on-call file: approvals need a role")
        runner = request.app[RUNBOOK_SERVICE].runner  # type: ignore[attr-defined]
        roles = [role.value for role in person.roles]
        decision, refusal = await request.app[keys.STORE].run(
            lambda c: runner.decide(c, run_id, actor, roles, approve, spec.note))
        if decision is None:
            return error(403, "approval_refused", refusal)
        return web.json_response({"run": run_id, "decision": decision, "by": actor})
    return handler


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise actions.InvalidInput("the run id is a number") from None


def add_routes(app: web.Application) -> None:
    router, P = app.router, Permission
    router.add_get("/api/v1/runbooks", authenticated(list_runbooks, P.READ))
    router.add_post("/api/v1/runbooks/{name}/runs", authenticated(start_run, P.RUNBOOK_RUN))
    router.add_get("/api/v1/runbook-runs", authenticated(list_runs, P.READ))
    router.add_get("/api/v1/runbook-runs/{id}", authenticated(show_run, P.READ))
    router.add_post("/api/v1/runbook-runs/{id}/approve", authenticated(decide(True), P.RUNBOOK_DECIDE))
    router.add_post("/api/v1/runbook-runs/{id}/deny", authenticated(decide(False), P.RUNBOOK_DECIDE))
