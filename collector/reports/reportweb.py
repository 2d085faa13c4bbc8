"""The monthly report behind a signed link: the director opens the printable report from the message.

As for the patrol report (:mod:`collector.patrol.reportweb`): the link names the month, the
reader's language and an expiry, signed with the collector's link key (HMAC-SHA256, compared in
constant time), so it cannot be forged or pointed at another month or language, and it stops
working after :data:`LINK_TTL`. Reading the report changes nothing: the link may be opened any
number of times until then. :func:`build_for` is also what the logged-in ``/reports`` page shows.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from collector import keys
from collector.notify import ackweb
from collector.reports import figures, monthly
from collector.reports.model import MonthlyReport
from collector.reports.phrases import LANGUAGES

LINK_TTL = 30 * 86400.0
PATH = "/reports/monthly/{month}"
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
           "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                                      "base-uri 'none'; form-action 'none'"}


def signature(key: bytes, month: str, language: str, expires: int) -> str:
    return hmac.new(key, f"monthly-report\n{month}\n{language}\n{expires}".encode(), hashlib.sha256).hexdigest()


def report_link(base_url: str, key: bytes, month: str, language: str, now: float, ttl: float = LINK_TTL) -> str:
    expires = int(now + ttl)
    query = urlencode({"lang": language, "expires": expires, "sig": signature(key, month, language, expires)})
    return f"{base_url.rstrip('/')}{PATH.format(month=quote(month))}?{query}"


async def build_for(app: web.Application, month: str | None, language: str, now: float) -> MonthlyReport:
    """The report of ``month`` (YYYY-MM; None: the previous month) in ``language``, read from the store as
    of ``now``, in the school's time zone. ValueError: not a month, or one that has not begun."""
    from collector.app import CALENDAR, CHECKLISTS, ONCALL, RULES
    from collector.notify.oncall import directors
    from collector.store.monthly import month_data

    oncall: Any = app[ONCALL]
    tz = oncall.timezone if oncall is not None else "UTC"
    month = month or figures.previous_month(now, tz)
    start, end = figures.month_bounds(month, tz)
    if start > now:
        raise ValueError(f"{month} has not begun yet")
    bosses = {person.id for person in directors(oncall)} if oncall is not None else set()
    rules = monthly.down_rules(app[RULES])
    data = await app[keys.STORE].run(lambda c: month_data(c, start, end, as_of=now, directors=bosses,
                                                           down_rules=rules))
    names = {person.id: person.name for person in getattr(oncall, "people", ())}
    return monthly.build(data, month=month, language=language, tz=tz, names=names, checklists=app[CHECKLISTS],
                         calendar=app[CALENDAR])


def _refuse(status: int, reason: str) -> web.Response:
    return ackweb.page("schoolops", "<h1>无法打开报告 · 無法打開報告 · Cannot open the report</h1>"
                                    f"<p>{html.escape(reason)}</p>", status)


async def show(request: web.Request) -> web.Response:
    month = request.match_info["month"][:16]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        return _refuse(400, "this link is incomplete: open the report from the message again")
    language, given = request.query.get("lang", ""), request.query.get("sig", "")
    if language not in LANGUAGES:
        return _refuse(400, f"unknown language {language[:20]!r}: one of {', '.join(LANGUAGES)}")
    expected = signature(request.app[ackweb.LINK_KEY], month, language, expires)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return _refuse(403, "this link is not valid: it was changed, or made by another collector")
    now = time.time()
    if now >= expires:
        return _refuse(410, f"this link has expired: use 'schoolops report monthly --month {month} --format html' "
                            "instead")
    try:
        built = await build_for(request.app, month, language, now)
    except ValueError as exc:
        return _refuse(404, str(exc))
    return web.Response(text=monthly.to_html(built), content_type="text/html", headers=HEADERS)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, show)
