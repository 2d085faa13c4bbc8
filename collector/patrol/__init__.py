"""Daily patrol (日常巡檢): checklists of servers, network devices and software systems, as data.

A checklist (``runbooks/patrol/*.yaml``) is sections of items; each item says what is checked and
the standard, in the school's languages, how it is checked (a measurement from the asset's latest
report, an SNMP value, a show command, a command over SSH, an HTTP request, or a person), which
assets it applies to, and what an abnormal result is (fault type, severity, runbook).

:mod:`collector.patrol.model` is the file schema; :mod:`collector.patrol.loader` reads a folder of
checklists, all or nothing; :mod:`collector.patrol.judge` is pure: an item and what was observed
in, normal / abnormal / not checked with the evidence out.
"""
