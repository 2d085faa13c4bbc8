"""Roles and what they permit (pure). Each endpoint and page names one permission; a person may act
when any of their roles grants it.

- viewer: reads incidents, maintenance windows, patrol runs, runbook runs, people and the schedule;
- operator: the viewer's reading, plus the patrol rounds (run, fill in, sign), maintenance windows,
  fault reports, preventive measures done;
- on-call: the operator's, plus working incidents (acknowledge, note, resolve, RCA, review, close,
  reopen, security report) and runbooks (run; approve or deny where the runbook names the role);
- director: the on-call's, plus reviewing patrol runs, the audit log and the monthly report;
- admin: everything, including the inventory and people's logins (passwords, second factors, locks).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Permission(enum.StrEnum):
    READ = "read"
    FAULT_REPORT = "fault.report"
    MAINTENANCE = "maintenance.edit"
    MEASURE_DONE = "measure.done"
    PATROL_FILL = "patrol.fill"  # run a patrol, fill in manual items, sign
    PATROL_REVIEW = "patrol.review"
    INCIDENT_ACT = "incident.act"  # acknowledge, note, resolve, RCA, review, close, reopen
    SECURITY_REPORT = "security.report"
    RUNBOOK_RUN = "runbook.run"
    RUNBOOK_DECIDE = "runbook.decide"  # approve or deny (the runbook also names who may)
    AUDIT_READ = "audit.read"
    REPORTS = "reports.read"  # the monthly report
    INVENTORY_EDIT = "inventory.edit"
    USERS_EDIT = "users.edit"  # set passwords, enrol or remove second factors, unlock logins


_VIEWER = frozenset({Permission.READ})
_OPERATOR = _VIEWER | {Permission.FAULT_REPORT, Permission.MAINTENANCE, Permission.MEASURE_DONE, Permission.PATROL_FILL}
_ON_CALL = _OPERATOR | {Permission.INCIDENT_ACT, Permission.SECURITY_REPORT, Permission.RUNBOOK_RUN,
                        Permission.RUNBOOK_DECIDE}
_DIRECTOR = _ON_CALL | {Permission.PATROL_REVIEW, Permission.AUDIT_READ, Permission.REPORTS}
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": _VIEWER, "operator": _OPERATOR, "on-call": _ON_CALL, "director": _DIRECTOR,
    "admin": frozenset(Permission),
}
SECOND_FACTOR_ROLES = frozenset({"admin"})  # roles that log in with a TOTP code as well (等保 2.0 level 3)


def permissions(roles: Iterable[str]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(str(role), frozenset())
    return granted


def allowed(roles: Iterable[str], permission: Permission) -> bool:
    return permission in permissions(roles)


def needs_second_factor(roles: Iterable[str], required_for: Iterable[str] = SECOND_FACTOR_ROLES) -> bool:
    return bool(set(map(str, roles)) & set(required_for))
