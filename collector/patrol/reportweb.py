"""The patrol report behind a signed link: the director opens the full report from the summary message.

The link names the run, the reader's language and an expiry, signed with the collector's link key
(HMAC-SHA256, compared in constant time): it cannot be forged or pointed at another run, and it
stops working after :data:`LINK_TTL`. Reading a report changes nothing, so the link may be opened
any number of times until then.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from urllib.parse import urlencode

from aiohttp import web

from collector import keys
from collector.notify import ackweb
from collector.patrol import report
from collector.patrol.model import LANGUAGES
from collector.patrol.records import NoReport, build_report, report_inputs

LINK_TTL = 30 * 86400.0
PATH = "/patrol/runs/{run_id}/report"


def signature(key: bytes, run_id: int, language: str, expires: int) -> str:
    return hmac.new(key, f"patrol-report\n{run_id}\n{language}\n{expires}".encode(), hashlib.sha256).hexdigest()


def report_link(base_url: str, key: bytes, run_id: int, language: str, now: float, ttl: float = LINK_TTL) -> str:
    expires = int(now + ttl)
    query = urlencode({"lang": language, "expires": expires, "sig": signature(key, run_id, language, expires)})
    return f"{base_url.rstrip('/')}{PATH.format(run_id=run_id)}?{query}"


async def build_for(app: web.Application, run_id: int, language: str) -> report.PatrolReport:
    """The report of a stored run in ``language``, people named as the on-call file names them; NoReport
    when there is no such run or its checklist is gone."""
    from collector.app import CHECKLISTS, ONCALL

    inputs = await app[keys.STORE].run(lambda c: report_inputs(c, run_id))
    names = {person.id: person.name for person in getattr(app[ONCALL], "people", ())}
    return build_report(inputs, app[CHECKLISTS], names, language)


def _refuse(status: int, reason: str) -> web.Response:
    return ackweb.page("schoolops", f"<h1>無法打開報告 · Cannot open the report</h1><p>{html.escape(reason)}</p>", status)


async def show(request: web.Request) -> web.Response:
    try:
        run_id, expires = int(request.match_info["run_id"]), int(request.query.get("expires", ""))
    except ValueError:
        return _refuse(400, "this link is incomplete: open the report from the message again")
    language, given = request.query.get("lang", ""), request.query.get("sig", "")
    if language not in LANGUAGES:
        return _refuse(400, f"unknown language {language[:20]!r}: one of {', '.join(LANGUAGES)}")
    if not hmac.compare_digest(signature(request.app[ackweb.LINK_KEY], run_id, language, expires).encode(),
                               given.encode("utf-8", "surrogateescape")):
        return _refuse(403, "this link is not valid: it was changed, or made by another collector")
    if time.time() >= expires:
        return _refuse(410, "this link has expired: use 'schoolops patrol show N --format html' instead")
    try:
        built = await build_for(request.app, run_id, language)
    except NoReport as exc:
        return _refuse(404, str(exc))
    return web.Response(text=report.to_html(built), content_type="text/html", headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, show)
