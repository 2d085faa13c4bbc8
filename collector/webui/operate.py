"""Pages that start work by hand: a patrol run, a runbook run (or its dry run).

They take the paths the command line and the API take: a patrol run is queued for the patrol
service as ``schoolops patrol run`` queues it; a runbook run goes through
:func:`collector.api_runbooks.request_run`, so it is checked, rendered and queued exactly as an
API request is, and the runbook service applies its approvals, budget and timeline the same way.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from collector import keys
from collector.auth.roles import Permission
from collector.incidents import actions
from collector.store import incidents as q
from collector.store import patrol as p
from collector.webui.pages import Viewer, _back, _form, page, render
from collector.webui.words import word

_LIVE = ("queued", "running")


@page(Permission.PATROL_FILL)
async def patrol_run(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Queue a run of a checklist now; the patrol service carries it out (as ``schoolops patrol run``)."""
    from collector.app import CHECKLISTS
    from collector.patrol.service import _queue

    name, now = _form(request, "checklist", 64), time.time()
    if name not in request.app[CHECKLISTS]:
        raise actions.InvalidInput(f"no checklist named {name!r}")

    def queue(conn: Any) -> int:
        busy = next((r for r in p.list_runs(conn, checklist=name, limit=20) if r.state in _LIVE), None)
        if busy is not None:
            raise actions.ActionRefused(f"patrol run {busy.id} of {name} is {busy.state} already: wait for it")
        run_id = _queue(conn, name, viewer.id, now)
        q.audit(conn, now, viewer.id, "patrol.run", f"patrol:{run_id}", {"checklist": name, "via": "web"})
        return run_id

    run_id = await request.app[keys.STORE].run(queue)
    raise _back(f"/patrol/{run_id}", ok=f"{word(viewer.language, 'queued')}: #{run_id}")


def _variables(text: str) -> dict[str, str]:
    """NAME=VALUE lines (blank lines skipped) as a mapping; a line without '=' is refused."""
    found: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise actions.InvalidInput(f"variables, line {n}: expected NAME=VALUE, got {line[:60]!r}")
        found[key.strip()] = value.strip()
    return found


@page(Permission.RUNBOOK_RUN)
async def runbook_run(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Dry-run or start a runbook on an asset or an incident, through the API's own checks and path."""
    from collector.api_runbooks import RunBody, request_run
    from collector.runbooks import manual

    name, mode = _form(request, "runbook", 64), _form(request, "mode", 10)
    asset, incident, variables = _form(request, "asset", 63), _form(request, "incident", 12), _form(request, "variables")
    if mode not in ("dry-run", "run"):
        raise actions.InvalidInput("mode: dry-run or run")
    if incident and not incident.isdigit():
        raise actions.InvalidInput("incident: a number")
    try:  # the API's own validation of a request: asset names, variable names and sizes
        spec = msgspec.convert({"asset": asset or None, "incident": int(incident) if incident else None,
                                "variables": _variables(variables), "dry_run": mode == "dry-run"}, RunBody)
    except msgspec.ValidationError as exc:
        raise actions.InvalidInput(str(exc)) from None
    try:
        done = await request_run(request.app, name, asset=spec.asset, incident=spec.incident,
                                 variables=spec.variables, dry_run=spec.dry_run, actor=viewer.id)
    except manual.RequestRefused as exc:
        raise actions.InvalidInput(str(exc)) from None
    if done.run_id is None:
        return render(request, viewer, "runbook_plan.html", runbook=name, asset=done.asset, steps=done.steps,
                      form={"asset": asset, "incident": incident, "variables": variables})
    raise _back("/runbooks", ok=f"{word(viewer.language, 'queued')}: #{done.run_id} {name} → {done.asset}")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/patrol/run", patrol_run)
    app.router.add_post("/runbooks/run", runbook_run)
