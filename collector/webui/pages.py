"""The pages and their handlers. Each handler is wrapped by :func:`page`, which finds the person from
the session cookie, checks the permission, the CSRF token of a form, and turns a refused action into
a message on the page it came from (Post/Redirect/Get)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import structlog
from aiohttp import web

from collector import keys
from collector.auth import login
from collector.auth.roles import Permission, allowed
from collector.incidents import actions
from collector.incidents import windows as window_model
from collector.incidents.lifecycle import Action, IncidentState
from collector.patrol import manual
from collector.secrets import SecretBox
from collector.store import audit as audit_store
from collector.store import incidents as q
from collector.store import patrol as p
from collector.store import runbooks as rb
from collector.webui.words import LANGUAGES, word

logger = structlog.get_logger("schoolops.web")
COOKIE = "schoolops_session"
LANG_COOKIE = "schoolops_lang"
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("collector.webui", "templates"),
                          autoescape=jinja2.select_autoescape(default=True, default_for_string=True))
_HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}
NAV = (("/incidents", "nav.incidents", Permission.READ), ("/maintenance", "nav.maintenance", Permission.READ),
       ("/patrol", "nav.patrol", Permission.READ), ("/runbooks", "nav.runbooks", Permission.READ),
       ("/people", "nav.people", Permission.READ), ("/reports", "nav.reports", Permission.REPORTS),
       ("/audit", "nav.audit", Permission.AUDIT_READ), ("/users", "nav.users", Permission.USERS_EDIT))
Handler = Callable[[web.Request, "Viewer"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Viewer:
    id: str
    name: str
    language: str  # what the pages are shown in
    roles: tuple[str, ...]
    csrf: str
    session_id: str

    def may(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)


# --- plumbing -------------------------------------------------------------------------------------


def _oncall(app: web.Application) -> Any:
    return app[keys.ONCALL]


def _person(app: web.Application, person_id: str) -> Any:
    return next((x for x in getattr(_oncall(app), "people", ()) if x.id == person_id), None)


def _tz(app: web.Application) -> ZoneInfo:
    oncall = _oncall(app)
    return ZoneInfo(oncall.timezone if oncall is not None else "UTC")


def _language(request: web.Request, default: str) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else default if default in LANGUAGES else "en"


def _secure(request: web.Request) -> bool:
    settings = request.app[keys.SETTINGS]
    return request.secure or settings.tls is not None or (settings.public_url or "").startswith("https:")


def _set_session_cookie(request: web.Request, response: web.StreamResponse, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", secure=_secure(request), path="/",
                        max_age=int(login.LIFETIME))


def _local_path(target: str | None, fallback: str = "/incidents") -> str:
    """Only a path on this site (no scheme, no host, no //): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else fallback


def _back(path: str, *, ok: str | None = None, error: str | None = None) -> web.HTTPSeeOther:
    query = f"ok={quote(ok[:300])}" if ok else f"error={quote(error[:500])}" if error else ""
    return web.HTTPSeeOther(f"{path}?{query}" if query else path)


def render(request: web.Request, viewer: Viewer | None, template: str, status: int = 200,
           **context: Any) -> web.Response:
    lang = viewer.language if viewer else _language(request, "zh-CN")
    tz = _tz(request.app)

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M") if ts else "—"

    nav = [(path, key) for path, key, needs in NAV if viewer is not None and viewer.may(needs)]
    values = {"t": lambda key: word(lang, key), "lang": lang, "viewer": viewer, "nav": nav,
              "here": "/" + request.path.split("/")[1], "when": when, "flash_ok": request.query.get("ok", "")[:300],
              "flash_error": request.query.get("error", "")[:500], **context}
    text = _ENV.get_template(template).render(**values)
    return web.Response(text=text, status=status, content_type="text/html", headers=_HEADERS)


def _refusal(request: web.Request, viewer: Viewer | None, status: int, reason: str) -> web.Response:
    lang = viewer.language if viewer else "en"
    heading = word(lang, "forbidden") if status == 403 else str(status)
    return render(request, viewer, "error.html", status=status, heading=heading, reason=reason)


async def _viewer(request: web.Request) -> tuple[Viewer | None, bool]:
    """(the logged-in person, whether they still owe their second factor)."""
    session_id = request.cookies.get(COOKIE, "")
    if not session_id or len(session_id) > 200:
        return None, False
    session = await request.app[keys.STORE].run(lambda c: login.current(c, session_id, time.time()))
    person = _person(request.app, session.person) if session is not None else None
    if session is None or person is None:  # a person removed from the on-call file has no access
        return None, False
    roles = tuple(str(role) for role in person.roles)
    viewer = Viewer(person.id, person.name, _language(request, str(person.language)), roles, session.csrf, session_id)
    return viewer, not session.second_factor_ok


def page(needs: Permission) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapper(request: web.Request) -> web.StreamResponse:
            viewer, owes_second = await _viewer(request)
            if viewer is None or owes_second:
                if request.method != "GET":
                    return _refusal(request, None, 401, "log in first")
                target = "/login/second-factor" if owes_second else "/login"
                raise web.HTTPSeeOther(f"{target}?next={quote(request.path_qs)}")
            if not viewer.may(needs):
                logger.info("page_forbidden", person=viewer.id, path=request.path, needs=needs.value)
                return _refusal(request, viewer, 403, f"{viewer.id} ({', '.join(viewer.roles)}) may not do this: "
                                                      f"it needs {needs.value}")
            if request.method == "POST":
                form = await request.post()
                if form.get("csrf") != viewer.csrf:
                    return _refusal(request, viewer, 403, "this form is out of date: reload the page and try again")
                request["form"] = form
            try:
                return await handler(request, viewer)
            except (actions.ActionError, manual.Refused, ValueError) as exc:
                if request.method != "POST":
                    return _refusal(request, viewer, getattr(exc, "status", 404), str(exc))
                raise _back(_local_path(request.headers.get("Referer") and urlsplit(request.headers["Referer"]).path,
                                        request.path), error=str(exc)) from None

        return wrapper

    return wrap


def _form(request: web.Request, name: str, limit: int = 10_000) -> str:
    value = request["form"].get(name, "")
    if not isinstance(value, str):
        raise actions.InvalidInput(f"{name}: expected text")
    if len(value) > limit:
        raise actions.InvalidInput(f"{name}: at most {limit} characters")
    return value.strip()


def _number(request: web.Request, name: str = "id") -> int:
    text = request.match_info[name]
    if not text.isdigit() or len(text) > 12:
        raise actions.IncidentNotFound(f"no such {name} {text[:20]!r}")
    return int(text)


# --- login ----------------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    viewer, owes = await _viewer(request)
    target = _local_path(request.query.get("next"))
    if viewer is not None and not owes:
        raise web.HTTPSeeOther(target)
    return render(request, None, "login.html", next=target, person="")


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    person, password = str(form.get("person", ""))[:64].strip(), str(form.get("password", ""))[:256]
    target = _local_path(str(form.get("next", "")))
    found = _person(request.app, person)
    roles = tuple(str(role) for role in found.roles) if found is not None else None
    second_roles = tuple(request.app[keys.SETTINGS].auth.second_factor_roles)
    attempt = await request.app[keys.STORE].run(lambda c: login.password_login(
        c, person, roles, password, time.time(), second_factor_roles=second_roles, source=request.remote or ""))
    if not attempt.ok or attempt.session_id is None:
        return render(request, None, "login.html", status=401, next=target, person=person, flash_error=attempt.reason)
    next_page = f"/login/second-factor?next={quote(target)}" if attempt.second_factor else target
    response = web.HTTPSeeOther(next_page)
    _set_session_cookie(request, response, attempt.session_id)
    raise response


async def second_factor_page(request: web.Request) -> web.StreamResponse:
    viewer, owes = await _viewer(request)
    if viewer is None:
        raise web.HTTPSeeOther("/login")
    if not owes:
        raise web.HTTPSeeOther(_local_path(request.query.get("next")))
    return render(request, None, "second_factor.html", next=_local_path(request.query.get("next")))


async def second_factor_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    session_id = request.cookies.get(COOKIE, "")
    box = SecretBox(request.app[keys.SETTINGS].data_path / "secret.key")
    attempt = await request.app[keys.STORE].run(lambda c: login.second_factor(
        c, box, session_id, str(form.get("code", ""))[:16], time.time(), source=request.remote or ""))
    target = _local_path(str(form.get("next", "")))
    if not attempt.ok or attempt.session_id is None:
        if attempt.reason == "log in again":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPSeeOther(f"/login/second-factor?next={quote(target)}&error={quote(attempt.reason)}")
    response = web.HTTPSeeOther(target)
    _set_session_cookie(request, response, attempt.session_id)
    raise response


@page(Permission.READ)
async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await request.app[keys.STORE].run(lambda c: login.logout(c, viewer.session_id, time.time()))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def language(request: web.Request) -> web.StreamResponse:
    chosen = request.query.get("to", "")
    response = web.HTTPSeeOther(_local_path(urlsplit(request.headers.get("Referer", "")).path or None))
    if chosen in LANGUAGES:
        response.set_cookie(LANG_COOKIE, chosen, samesite="Strict", secure=_secure(request), path="/",
                            max_age=365 * 86400)
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/incidents")


# --- incidents ------------------------------------------------------------------------------------

_LIVE = [IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value]


@page(Permission.READ)
async def incidents_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    state = request.query.get("state", "live")
    states = _LIVE if state == "live" else None if state == "all" else [state]
    if states and any(s not in {x.value for x in IncidentState} for s in states):
        raise actions.InvalidInput(f"unknown state {state[:20]!r}")
    severity = request.query.get("severity", "")
    max_severity = int(severity[1]) if severity in ("P1", "P2", "P3", "P4") else None
    site = request.query.get("site", "")[:64].strip()
    found = await request.app[keys.STORE].run(lambda c: q.list_incidents(
        c, states=states, site=site or None, max_severity=max_severity, limit=300))
    return render(request, viewer, "incidents.html", incidents=found, state=state, severity=severity, site=site,
                  states=[s.value for s in IncidentState])


@page(Permission.READ)
async def incident_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    number = _number(request)

    def read(conn: Any) -> tuple[Any, ...]:
        incident = q.get_incident(conn, number)
        if incident is None:
            raise actions.IncidentNotFound(f"no incident {number}")
        return incident, q.incident_faults(conn, number), q.events(conn, number), q.measures(conn, number)

    incident, faults, timeline, measures = await request.app[keys.STORE].run(read)
    possible = {IncidentState.OPEN: ["acknowledge", "resolve"], IncidentState.ACKNOWLEDGED: ["resolve"],
                IncidentState.RESOLVED: ["review", "close", "reopen"], IncidentState.REVIEWED: ["close"]}
    return render(request, viewer, "incident.html", incident=incident, faults=faults, timeline=timeline,
                  measures=measures, can_act=viewer.may(Permission.INCIDENT_ACT),
                  can_run=viewer.may(Permission.RUNBOOK_RUN), actions=possible.get(incident.state, []))


@page(Permission.INCIDENT_ACT)
async def incident_act(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    number, choice = _number(request), _form(request, "action", 20)
    try:
        action = Action(choice)
    except ValueError:
        raise actions.InvalidInput(f"unknown action {choice!r}") from None
    note = _form(request, "note") or None
    await request.app[keys.STORE].run(lambda c: actions.transition(c, number, action, actor=viewer.id, at=time.time(),
                                                                    note=note))
    raise _back(f"/incidents/{number}", ok=word(viewer.language, "done"))


@page(Permission.INCIDENT_ACT)
async def incident_note(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    number, text = _number(request), _form(request, "text")
    if not text:
        raise actions.InvalidInput("the note is empty")
    await request.app[keys.STORE].run(lambda c: actions.add_note(c, number, actor=viewer.id, at=time.time(), text=text))
    raise _back(f"/incidents/{number}", ok=word(viewer.language, "done"))


@page(Permission.INCIDENT_ACT)
async def incident_rca(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    number, form = _number(request), request["form"]
    rca = _form(request, "rca", 20_000) or None
    rows = zip(form.getall("measure_description", []), form.getall("measure_owner", []), form.getall("measure_due", []),
               strict=False)
    measures = []
    for n, (description, owner, due) in enumerate(rows, start=1):
        values = [str(v).strip() for v in (description, owner, due)]
        if not any(values):
            continue
        if not all(values):
            raise actions.InvalidInput(f"measure {n}: give the measure, its owner and its due date")
        if len(values[0]) > 2000 or len(values[1]) > 64:
            raise actions.InvalidInput(f"measure {n}: too long")
        measures.append(actions.MeasureInput(values[0], values[1], values[2]))
    await request.app[keys.STORE].run(lambda c: actions.submit_rca(c, number, actor=viewer.id, at=time.time(), rca=rca,
                                                                    measures=measures))
    raise _back(f"/incidents/{number}", ok=word(viewer.language, "done"))


# --- maintenance ----------------------------------------------------------------------------------


def _scope_text(scope: dict[str, Any]) -> str:
    parts = [", ".join(scope.get(k) or []) for k in ("assets", "sites", "roles")]
    parts += [f"{k}={v}" for k, v in (scope.get("labels") or {}).items()]
    return "; ".join(part for part in parts if part)


@page(Permission.READ)
async def maintenance_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    now = time.time()
    found = await request.app[keys.STORE].run(lambda c: q.windows(c))
    recent = [w for w in found if (w.ended_at or w.ends_at) > now - 7 * 86400 or w.recurrence]
    return render(request, viewer, "maintenance.html", windows=recent, scope=_scope_text,
                  can_edit=viewer.may(Permission.MAINTENANCE))


@page(Permission.MAINTENANCE)
async def maintenance_add(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    names = [n.strip() for n in _form(request, "assets", 2000).split(",") if n.strip()]
    try:
        hours = float(_form(request, "hours", 20))
    except ValueError:
        raise actions.InvalidInput("hours: a number, e.g. 2 or 0.5") from None
    if not 0 < hours <= 720:
        raise actions.InvalidInput("hours: more than 0 and at most 720 (30 days)")
    reason, now = _form(request, "reason", 2000), time.time()
    scope = {"assets": names, "sites": [], "roles": [], "labels": {}}
    window_model.check(scope, now, now + hours * 3600, viewer.id, reason, None)

    def add(conn: Any) -> int:
        window_id = q.add_window(conn, scope=scope, starts_at=now, ends_at=now + hours * 3600, owner=viewer.id,
                                 reason=reason, recurrence=None, at=now, actor=viewer.id)
        q.audit(conn, now, viewer.id, "maintenance.add", f"maintenance:{window_id}", {"scope": scope, "via": "web"})
        return window_id

    await request.app[keys.STORE].run(add)
    raise _back("/maintenance", ok=word(viewer.language, "done"))


@page(Permission.MAINTENANCE)
async def maintenance_end(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    window_id, now = _number(request), time.time()

    def end(conn: Any) -> bool:
        done = q.end_window(conn, window_id, now)
        if done:
            q.audit(conn, now, viewer.id, "maintenance.end", f"maintenance:{window_id}", {"via": "web"})
        return done

    if not await request.app[keys.STORE].run(end):
        raise actions.ActionRefused(f"maintenance window {window_id} does not exist or has ended already")
    raise _back("/maintenance", ok=word(viewer.language, "done"))


# --- patrol ---------------------------------------------------------------------------------------


@page(Permission.READ)
async def patrol_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.app import CHECKLISTS
    from collector.patrol.model import text_for

    runs = await request.app[keys.STORE].run(lambda c: p.list_runs(c, limit=100))
    checklists = sorted((name, text_for(checklist.title, viewer.language))
                        for name, checklist in request.app[CHECKLISTS].items())
    return render(request, viewer, "patrol_runs.html", runs=runs, checklists=checklists,
                  can_run=viewer.may(Permission.PATROL_FILL))


async def _patrol_report(request: web.Request, viewer: Viewer, run_id: int) -> Any:
    from collector.patrol.records import NoReport
    from collector.patrol.reportweb import build_for

    try:
        return await build_for(request.app, run_id, viewer.language)
    except NoReport as exc:
        raise actions.IncidentNotFound(str(exc)) from None


@page(Permission.READ)
async def patrol_run_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    run_id = _number(request)
    built = await _patrol_report(request, viewer, run_id)
    pending = [row for section in built.sections for row in section.rows if row.result.status == "pending"]
    return render(request, viewer, "patrol_run.html", run=built.run, report=built, pending=pending,
                  can_fill=viewer.may(Permission.PATROL_FILL), can_review=viewer.may(Permission.PATROL_REVIEW))


@page(Permission.READ)
async def patrol_report_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.patrol import report

    built = await _patrol_report(request, viewer, _number(request))
    return web.Response(text=report.to_html(built), content_type="text/html", headers=_HEADERS)


@page(Permission.PATROL_FILL)
async def patrol_fill(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.app import CHECKLISTS

    run_id = _number(request)
    status = _form(request, "status", 20)
    if status not in ("normal", "abnormal"):
        raise actions.InvalidInput("status: normal or abnormal")
    item, asset = _form(request, "item", 64), _form(request, "asset", 63)
    value, note = _form(request, "value", 200) or None, _form(request, "note", 2000) or None
    await request.app[keys.STORE].run(lambda c: manual.fill(
        c, request.app[CHECKLISTS], run_id, item, asset=asset, status=status, value=value, note=note, person=viewer.id,
        at=time.time()))
    raise _back(f"/patrol/{run_id}", ok=word(viewer.language, "done"))


@page(Permission.PATROL_FILL)
async def patrol_sign(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    run_id = _number(request)
    await request.app[keys.STORE].run(lambda c: manual.sign(c, run_id, person=viewer.id, at=time.time()))
    raise _back(f"/patrol/{run_id}", ok=word(viewer.language, "done"))


@page(Permission.PATROL_REVIEW)
async def patrol_review(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    run_id, note = _number(request), _form(request, "note", 2000) or None
    await request.app[keys.STORE].run(lambda c: manual.review(c, run_id, person=viewer.id, at=time.time(), note=note))
    raise _back(f"/patrol/{run_id}", ok=word(viewer.language, "done"))


# --- runbooks -------------------------------------------------------------------------------------


@page(Permission.READ)
async def runbooks_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.app import RUNBOOKS

    runs = await request.app[keys.STORE].run(lambda c: rb.list_runs(c, limit=100))
    runbooks = sorted((name, book.description) for name, book in request.app[RUNBOOKS].items())
    asset, incident = request.query.get("asset", "")[:63], request.query.get("incident", "")[:12]
    return render(request, viewer, "runbook_runs.html", runs=runs, can_decide=viewer.may(Permission.RUNBOOK_DECIDE),
                  can_run=viewer.may(Permission.RUNBOOK_RUN), runbooks=runbooks, asset=asset,
                  incident=incident if incident.isdigit() else "")


@page(Permission.RUNBOOK_DECIDE)
async def runbook_decide(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.app import RUNBOOK_SERVICE

    run_id, decision = _number(request), _form(request, "decision", 10)
    if decision not in ("approve", "deny"):
        raise actions.InvalidInput("decision: approve or deny")
    note = _form(request, "note", 2000) or None
    service = request.app.get(RUNBOOK_SERVICE)
    if service is None:
        raise actions.ActionRefused("runbooks are not running in this collector")
    runner = service.runner  # type: ignore[attr-defined]
    done, refusal = await request.app[keys.STORE].run(
        lambda c: runner.decide(c, run_id, viewer.id, list(viewer.roles), decision == "approve", note))
    if done is None:
        raise actions.ActionRefused(refusal)
    raise _back("/runbooks", ok=word(viewer.language, "done"))


# --- people and the audit log ---------------------------------------------------------------------


@page(Permission.READ)
async def people_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    from collector.notify.oncall import on_call_at, shifts

    oncall, now = _oncall(request.app), time.time()
    duty = on_call_at(oncall, now) if oncall is not None else None
    week = [{"start": s.start, "end": s.end, "primary": s.primary.name, "backup": s.backup.name}
            for s in shifts(oncall, now, 14)] if oncall is not None else []
    people = [{"id": x.id, "name": x.name, "roles": [str(r) for r in x.roles], "contacts": x.contacts}
              for x in getattr(oncall, "people", ())]
    return render(request, viewer, "people.html", duty=duty, shifts=week, people=people)


@page(Permission.REPORTS)
async def monthly_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The director's monthly report (default: last month; ?month=YYYY-MM), printable."""
    from collector.reports import monthly
    from collector.reports.reportweb import build_for

    try:
        built = await build_for(request.app, request.query.get("month", "")[:7] or None, viewer.language, time.time())
    except ValueError as exc:
        raise actions.InvalidInput(f"month: {exc}") from None
    return web.Response(text=monthly.to_html(built), content_type="text/html", headers=_HEADERS)


def _audit_query(request: web.Request) -> tuple[str, str, int]:
    actor, action = request.query.get("actor", "")[:64].strip(), request.query.get("action", "")[:64].strip()
    try:
        days = max(1, min(400, int(request.query.get("days", "7"))))
    except ValueError:
        days = 7
    return actor, action, days


@page(Permission.AUDIT_READ)
async def audit_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    actor, action, days = _audit_query(request)
    found = await request.app[keys.STORE].run(lambda c: audit_store.entries(
        c, since=time.time() - days * 86400, actor=actor or None, action=action or None, limit=500))
    return render(request, viewer, "audit.html", entries=found, actor=actor, action=action, days=days)


@page(Permission.AUDIT_READ)
async def audit_csv(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    actor, action, days = _audit_query(request)
    found = await request.app[keys.STORE].run(lambda c: audit_store.entries(
        c, since=time.time() - days * 86400, actor=actor or None, action=action or None, limit=1_000_000))
    tz = _tz(request.app)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "time", "actor", "action", "target", "detail"])
    for e in found:
        cells = [e.id, datetime.fromtimestamp(e.at, tz).isoformat(timespec="seconds"), e.actor, e.action, e.target, e.detail]
        writer.writerow([("'" + c) if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in cells])
    await request.app[keys.STORE].run(lambda c: q.audit(c, time.time(), viewer.id, "audit.export", "audit_log",
                                                         {"rows": len(found), "days": days}))
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8", headers={
        **_HEADERS, "Content-Disposition": f'attachment; filename="schoolops-audit-{days}d.csv"'})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", home)
    r.add_get("/login", login_page)
    r.add_post("/login", login_submit)
    r.add_get("/login/second-factor", second_factor_page)
    r.add_post("/login/second-factor", second_factor_submit)
    r.add_post("/logout", logout)
    r.add_get("/lang", language)
    r.add_get("/incidents", incidents_page)
    r.add_get("/incidents/{id}", incident_page)
    r.add_post("/incidents/{id}/act", incident_act)
    r.add_post("/incidents/{id}/note", incident_note)
    r.add_post("/incidents/{id}/rca", incident_rca)
    r.add_get("/maintenance", maintenance_page)
    r.add_post("/maintenance", maintenance_add)
    r.add_post("/maintenance/{id}/end", maintenance_end)
    r.add_get("/patrol", patrol_page)
    r.add_get("/patrol/{id}", patrol_run_page)
    r.add_get("/patrol/{id}/report", patrol_report_page)
    r.add_post("/patrol/{id}/fill", patrol_fill)
    r.add_post("/patrol/{id}/sign", patrol_sign)
    r.add_post("/patrol/{id}/review", patrol_review)
    r.add_get("/runbooks", runbooks_page)
    r.add_post("/runbooks/runs/{id}/decide", runbook_decide)
    r.add_get("/people", people_page)
    r.add_get("/reports", monthly_page)
    r.add_get("/audit", audit_page)
    r.add_get("/audit.csv", audit_csv)
