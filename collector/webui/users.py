"""The admin's page of logins: who can log in and how; set a password, enrol or remove a second factor,
unlock a login. The same changes as ``schoolops user`` (:mod:`collector.auth.accounts`), with the same
audit rows (marked ``via: web``).

A TOTP key is shown once, on the page that answers the enrolment (never stored in clear, never
sent again): as text, as its ``otpauth://`` URI, and as a QR code drawn as inline SVG markup (no
script, no image request: the pages' Content-Security-Policy allows neither).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from markupsafe import Markup

from collector import keys
from collector.auth import accounts
from collector.auth import secrets as credentials
from collector.auth.roles import Permission, needs_second_factor
from collector.incidents import actions
from collector.secrets import SecretBox
from collector.webui.pages import Viewer, _back, _form, _oncall, _person, page, render
from collector.webui.words import word


def _target(request: web.Request) -> Any:
    """The person named in the path: one of the on-call file's people, else 404."""
    person = _person(request.app, request.match_info["person"][:64])
    if person is None:
        raise actions.IncidentNotFound(f"no person {request.match_info['person'][:64]!r} in the on-call file")
    return person


def _second_factor_roles(request: web.Request) -> tuple[str, ...]:
    return tuple(request.app[keys.SETTINGS].auth.second_factor_roles)


async def _state(request: web.Request, people: list[Any]) -> list[accounts.LoginState]:
    roles, now = _second_factor_roles(request), time.time()
    return await request.app[keys.STORE].run(lambda c: accounts.states(c, people, now, roles))


def _keep(viewer: Viewer, person: str) -> str | None:
    """An admin who changes their own login stays logged in here; their other sessions end."""
    return viewer.session_id if viewer.id == person else None


@page(Permission.USERS_EDIT)
async def users_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    people = list(getattr(_oncall(request.app), "people", ()))
    return render(request, viewer, "users.html", people=await _state(request, people))


@page(Permission.USERS_EDIT)
async def user_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    (state,) = await _state(request, [_target(request)])
    return render(request, viewer, "user.html", person=state)


@page(Permission.USERS_EDIT)
async def set_password(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    person = _target(request)
    password, again = _form(request, "password", 1000), _form(request, "again", 1000)
    if password != again:
        raise actions.InvalidInput("the two passwords differ; nothing changed")
    try:
        hashed = await asyncio.to_thread(accounts.hash_new_password, password, person.id)
    except credentials.WeakPassword as exc:
        raise actions.InvalidInput(f"{exc}; nothing changed") from None
    now, keep = time.time(), _keep(viewer, person.id)
    await request.app[keys.STORE].run(lambda c: accounts.set_password(
        c, person.id, hashed, actor=viewer.id, now=now, detail={"via": "web"}, keep=keep))
    raise _back(f"/users/{person.id}", ok=word(viewer.language, "users.password_set"))


def qr_svg(uri: str, title: str) -> Markup:
    """The QR code of ``uri`` as inline SVG markup (dark modules on a white square, 4 modules of quiet zone)."""
    import segno

    code = segno.make(uri, error="m", micro=False)
    return Markup(code.svg_inline(scale=5, border=4, dark="#000", light="#fff", title=title,
                                  svgclass="qr", lineclass="qrline"))


@page(Permission.USERS_EDIT)
async def enrol_totp(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    person, now = _target(request), time.time()
    keep = _keep(viewer, person.id)
    box = SecretBox(request.app[keys.SETTINGS].data_path / "secret.key")
    secret = await request.app[keys.STORE].run(lambda c: accounts.enrol_totp(
        c, box, person.id, actor=viewer.id, now=now, detail={"via": "web"}, keep=keep))
    if secret is None:
        raise actions.ActionRefused(f"{person.id} has no password yet: set one first")
    uri = credentials.provisioning_uri(secret, person.id)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render(request, viewer, "user_totp.html", person=person, key=grouped, uri=uri,
                  qr=qr_svg(uri, word(viewer.language, "totp.qr")))


@page(Permission.USERS_EDIT)
async def remove_totp(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    person, now = _target(request), time.time()
    if needs_second_factor([str(role) for role in person.roles], _second_factor_roles(request)):
        raise actions.ActionRefused(f"{person.id}'s role needs a second factor to log in: enrol a new one instead")
    keep = _keep(viewer, person.id)
    if not await request.app[keys.STORE].run(lambda c: accounts.remove_totp(
            c, person.id, actor=viewer.id, now=now, detail={"via": "web"}, keep=keep)):
        raise actions.ActionRefused(f"{person.id} has no login")
    raise _back(f"/users/{person.id}", ok=word(viewer.language, "users.totp_removed"))


@page(Permission.USERS_EDIT)
async def unlock(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    person, now = _target(request), time.time()
    if not await request.app[keys.STORE].run(lambda c: accounts.unlock(c, person.id, actor=viewer.id, now=now,
                                                                       detail={"via": "web"})):
        raise actions.ActionRefused(f"{person.id} has no login")
    raise _back(f"/users/{person.id}", ok=word(viewer.language, "users.unlocked"))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/users", users_page)
    r.add_get("/users/{person}", user_page)
    r.add_post("/users/{person}/password", set_password)
    r.add_post("/users/{person}/totp", enrol_totp)
    r.add_post("/users/{person}/totp/remove", remove_totp)
    r.add_post("/users/{person}/unlock", unlock)
