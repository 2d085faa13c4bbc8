"""The one-click acknowledgement link: GET shows the incident and a confirm button, POST acknowledges.

The link is signed (it cannot be forged or pointed at another incident), expires, and works once.
A GET never changes anything, so a mail scanner that follows links cannot acknowledge for you.
"""

from __future__ import annotations

import html
import time

import structlog
from aiohttp import web

from collector import keys
from collector.incidents import actions
from collector.incidents.lifecycle import Action, IncidentState
from collector.notify import links
from collector.store import incidents as q
from collector.store import outbox

logger = structlog.get_logger("schoolops.ack")
LINK_KEY = web.AppKey("link_key", bytes)

_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
.sev{{font-weight:bold}} button{{font-size:1.2rem;padding:.6rem 1.4rem}} .note{{color:#555}}</style></head>
<body>{body}</body></html>"""


def page(title: str, body: str, status: int = 200, lang: str = "zh-CN") -> web.Response:
    return web.Response(text=_PAGE.format(title=html.escape(title), body=body, lang=lang), status=status,
                        content_type="text/html", headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def refusal(reason: str, status: int) -> web.Response:
    return page("schoolops", f"<h1>無法確認 · Cannot acknowledge</h1><p>{html.escape(reason)}</p>", status)


async def _claims(request: web.Request) -> links.LinkClaims | web.Response:
    try:
        claims = links.verify_token(request.app[LINK_KEY], request.match_info["token"], time.time())
    except links.LinkError as exc:
        return refusal(str(exc), 403)
    state = await request.app[keys.STORE].run(lambda c: outbox.link_state(c, claims.nonce))
    if state is None or state[0] != claims.incident_id or state[1] != claims.person:
        return refusal("this link is not known here", 403)
    if state[2] is not None:
        return refusal("this link has been used already; each link works once", 410)
    return claims


async def show(request: web.Request) -> web.Response:
    claims = await _claims(request)
    if isinstance(claims, web.Response):
        return claims
    incident = await request.app[keys.STORE].run(lambda c: q.get_incident(c, claims.incident_id))
    if incident is None:
        return refusal("the incident no longer exists", 404)
    done = incident.state is not IncidentState.OPEN
    button = ("" if done else '<form method="post"><button type="submit">確認處理 · Acknowledge</button></form>')
    body = (f"<h1>{html.escape(incident.title)}</h1>"
            f'<p class="sev">{incident.severity.label} {incident.severity.title_zh} · {incident.severity.title_en}</p>'
            f"<p>{html.escape(incident.reason)}</p>"
            f"<p>狀態 · state: <b>{incident.state.value}</b>"
            + (f" — {html.escape(incident.acknowledged_by or '')}" if incident.acknowledged_by else "") + "</p>"
            + button + f'<p class="note">{html.escape(claims.person)}</p>')
    return page(incident.title, body)


async def acknowledge(request: web.Request) -> web.Response:
    claims = await _claims(request)
    if isinstance(claims, web.Response):
        return claims
    now = time.time()

    def act(conn: object) -> str:
        if not outbox.use_link(conn, claims.nonce, now):  # type: ignore[arg-type]
            return "used"
        try:
            actions.transition(conn, claims.incident_id, Action.ACKNOWLEDGE, actor=claims.person, at=now,  # type: ignore[arg-type]
                               note="acknowledged with the one-click link")
        except actions.ActionError as exc:
            return str(exc)
        return "ok"

    outcome = await request.app[keys.STORE].run(act)
    if outcome == "used":
        return refusal("this link has been used already; each link works once", 410)
    if outcome != "ok":
        return refusal(outcome, 409)
    logger.info("incident_acknowledged", incident=claims.incident_id, by=claims.person, via="link")
    return page("schoolops", f"<h1>已確認 · Acknowledged</h1><p>incident {claims.incident_id} — {html.escape(claims.person)}</p>")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ack/{token}", show)
    app.router.add_post("/ack/{token}", acknowledge)
