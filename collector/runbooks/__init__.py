"""Runbooks: remediation procedures and emergency plans as data under ``runbooks/``.

:mod:`collector.runbooks.model` is the file schema (a typed params struct per step action);
:mod:`collector.runbooks.loader` reads and validates the whole folder at start-up.
"""
