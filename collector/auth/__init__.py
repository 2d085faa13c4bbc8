"""Who may do what: roles and permissions (pure), passwords and second factors, sessions for the web pages.

People are the on-call file's people (their id, name, language and roles); a person logs in to the
web pages with a password set by ``schoolops user passwd`` (or by an admin on the ``/users`` page)
and, where the role asks for it or the person enrolled, a TOTP code; :mod:`.accounts` makes those
changes. Scripts use API tokens (``schoolops api-token create``) that act as their person. Every
page and API endpoint names the permission it needs (:mod:`.roles`).
"""
