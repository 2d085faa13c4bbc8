"""The web pages the collector serves: login, incidents, maintenance, patrol, runbooks, people, audit log,
and the admin's page of logins.

Server-rendered (Jinja2, autoescaped), small enough for a phone, in the reader's language (their
on-call file language; a link switches to English and back). Every page names the permission it
needs (:mod:`collector.auth.roles`); a person without it gets 403 and nothing else. A session is
a random cookie (HttpOnly, SameSite=Strict, Secure behind TLS); every form carries the session's
CSRF token; every change goes through the same functions as the API and the CLI, and so into the
incident timeline and the audit log. :mod:`.pages` has the plumbing and the reading pages,
:mod:`.operate` starts patrol and runbook runs by hand, :mod:`.users` manages logins.
"""

from __future__ import annotations

from aiohttp import web

from collector.webui import operate, pages, users


def add_routes(app: web.Application) -> None:
    pages.add_routes(app)
    operate.add_routes(app)
    users.add_routes(app)
