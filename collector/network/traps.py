"""SNMP traps and informs: describe them, classify them (the pure part).

:func:`trap_event` turns a notification's variable bindings into a :class:`TrapEvent`;
:func:`classify_trap` maps an event to a :class:`TrapFinding` through :class:`TrapRule` entries
keyed by trap OID (:func:`default_trap_rules` covers linkDown/linkUp/coldStart/warmStart/
authenticationFailure). Receiving them from known devices (the shell, and who may send) is
:mod:`collector.network.trap_receiver`.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta, Struct

from collector import CollectorError
from collector.domain import FaultType, Finding, Severity

SNMP_TRAPS = "1.3.6.1.6.3.1.1.5"
LINK_DOWN, LINK_UP = f"{SNMP_TRAPS}.3", f"{SNMP_TRAPS}.4"
_SYS_UPTIME, _TRAP_OID, _TRAP_COMMUNITY = "1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.18.1.4.0"
_IF_INDEX, _IF_DESCR, _IF_NAME = "1.3.6.1.2.1.2.2.1.1.", "1.3.6.1.2.1.2.2.1.2.", "1.3.6.1.2.1.31.1.1.1.1."
_IF_COLUMNS = ("1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1.")  # ifTable, ifXTable: instance = ifIndex
SUMMARY_FIELDS = ("if", "if_index", "oid", "source", "kind")
STATS = ("received", "accepted", "unknown_source", "bad_auth", "unknown_engine_id", "discovery",
         "not_in_time_window", "dropped", "queue_full", "callback_failed")


class TrapError(CollectorError):
    """Root of the trap errors (here and in :mod:`collector.network.trap_receiver`): bad receiver
    settings, a socket that cannot be bound."""


class TrapKind(enum.StrEnum):
    LINK_DOWN = "link_down"
    LINK_UP = "link_up"
    COLD_START = "cold_start"
    WARM_START = "warm_start"
    AUTHENTICATION_FAILURE = "authentication_failure"
    OTHER = "other"


_KINDS = {f"{SNMP_TRAPS}.1": TrapKind.COLD_START, f"{SNMP_TRAPS}.2": TrapKind.WARM_START, LINK_DOWN: TrapKind.LINK_DOWN,
          LINK_UP: TrapKind.LINK_UP, f"{SNMP_TRAPS}.5": TrapKind.AUTHENTICATION_FAILURE}


@dataclass(frozen=True)
class TrapEvent:
    """One accepted notification, in SNMPv2 form (v1 traps translated per RFC 3584)."""

    received_at: float
    source: str  # the sender's IP address
    source_port: int
    version: str  # "1", "2c" or "3"
    principal: str  # the v3 user, or for v1/v2c the community's label (its secret's name), never the community
    trap_oid: str  # numeric; a v1 trap's RFC 3584 equivalent
    varbinds: tuple[tuple[str, str], ...]  # the payload: no sysUpTime.0, snmpTrapOID.0 or snmpTrapCommunity.0
    kind: TrapKind
    if_index: int | None = None
    if_name: str | None = None
    if_descr: str | None = None
    uptime: int | None = None  # the sender's sysUpTime, hundredths of a second
    inform: bool = False  # an INFORM (acknowledged) rather than a TRAP
    engine_id: str | None = None  # v3: the authoritative engine ID, hex

    @property
    def interface(self) -> str | None:
        """The interface as people name it: ifName, else ifDescr, else "ifIndex N"."""
        if self.if_name or self.if_descr:
            return self.if_name or self.if_descr
        return None if self.if_index is None else f"ifIndex {self.if_index}"


def trap_event(
    varbinds: Sequence[tuple[str, str]], *, received_at: float, source: str, source_port: int = 0,
    version: str, principal: str, inform: bool = False, engine_id: str | None = None,
) -> TrapEvent:
    """Describe a notification from its (OID, value) strings; pure."""
    oids = {oid.lstrip("."): value for oid, value in varbinds}
    trap_oid = oids.get(_TRAP_OID, "").lstrip(".")
    payload = tuple((o.lstrip("."), v) for o, v in varbinds if o.lstrip(".") not in (_SYS_UPTIME, _TRAP_OID, _TRAP_COMMUNITY))
    if_index = next((_int(v) for o, v in payload if o.startswith(_IF_INDEX)), None)
    if if_index is None:  # no ifIndex varbind: the instance of another ifTable/ifXTable column
        columns = (o.removeprefix(p).split(".") for o, _ in payload for p in _IF_COLUMNS if o.startswith(p))
        if_index = next((_int(c[1]) for c in columns if len(c) == 2), None)
    uptime = _int(oids.get(_SYS_UPTIME, ""))
    return TrapEvent(
        received_at=received_at, source=source, source_port=source_port, version=version, principal=principal,
        trap_oid=trap_oid, varbinds=payload, kind=_KINDS.get(trap_oid, TrapKind.OTHER), if_index=if_index,
        if_name=next((v for o, v in payload if o.startswith(_IF_NAME)), None),
        if_descr=next((v for o, v in payload if o.startswith(_IF_DESCR)), None),
        uptime=uptime, inform=inform, engine_id=engine_id,
    )


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


# ---- classification (pure) -------------------------------------------------------------------

Oid = Annotated[str, Meta(pattern=r"^[0-2](\.\d+)+\Z", max_length=512)]


class TrapRule(Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What a trap OID means: the fault it raises, or (``clears_oid``) the fault it clears."""

    oid: Oid
    type: FaultType
    severity: str  # P1..P4 or info
    summary: Annotated[str, Meta(min_length=1, max_length=1024)]  # fields: {if} {if_index} {oid} {source} {kind}
    clears_oid: Oid | None = None  # this trap ends the fault that trap raised (linkUp clears linkDown)

    def __post_init__(self) -> None:
        Severity.parse(self.severity)  # ValueError names the bad value
        for _, name, _, _ in string.Formatter().parse(self.summary):
            if name is not None and name not in SUMMARY_FIELDS:
                known = ", ".join("{" + f + "}" for f in SUMMARY_FIELDS)
                raise ValueError(f"summary: unknown field {{{name}}}: use {known}")


def default_trap_rules() -> dict[str, TrapRule]:
    """The standard traps of RFC 3418/2863, keyed by OID; config may add or replace entries."""
    rules = (
        TrapRule(oid=LINK_DOWN, type=FaultType.NETWORK, severity="P3", summary="interface {if} is down"),
        TrapRule(oid=LINK_UP, type=FaultType.NETWORK, severity="P3", summary="interface {if} is up", clears_oid=LINK_DOWN),
        TrapRule(oid=f"{SNMP_TRAPS}.1", type=FaultType.SYSTEM, severity="P4", summary="device restarted"),
        TrapRule(oid=f"{SNMP_TRAPS}.2", type=FaultType.SYSTEM, severity="P4", summary="device restarted"),
        TrapRule(oid=f"{SNMP_TRAPS}.5", type=FaultType.SECURITY, severity="P3",
                 summary="SNMP authentication failure (someone tried a wrong community or key)"),
    )
    return {rule.oid: rule for rule in rules}


@dataclass(frozen=True)
class TrapFinding:
    """A classified trap. ``rule`` is ``trap:<oid>`` of the raising trap, also for a clearing one."""

    rule: str
    key: str  # the interface ("ifIndex 3") when the trap names one, else ""
    type: FaultType
    severity: Severity
    summary: str
    clears: bool
    trap_oid: str
    since: float

    def as_finding(self, asset: str) -> Finding:
        return Finding(rule=self.rule, asset=asset, key=self.key, type=self.type, severity=self.severity,
                       value=None, summary=self.summary, since=self.since)


def classify_trap(event: TrapEvent, mapping: Mapping[str, TrapRule]) -> TrapFinding | None:
    """The finding a trap means under ``mapping`` (trap OID → rule); None for an unmapped trap."""
    rule = mapping.get(event.trap_oid)
    if rule is None:
        return None
    fields = {"if": event.interface or "?", "if_index": "" if event.if_index is None else str(event.if_index),
              "oid": event.trap_oid, "source": event.source, "kind": str(event.kind)}
    return TrapFinding(
        rule=f"trap:{rule.clears_oid or rule.oid}", key="" if event.if_index is None else f"ifIndex {event.if_index}",
        type=rule.type, severity=Severity.parse(rule.severity), summary=rule.summary.format_map(fields),
        clears=rule.clears_oid is not None, trap_oid=event.trap_oid, since=event.received_at,
    )
