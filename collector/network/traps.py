"""SNMP traps and informs: receive them from known devices, describe them, classify them.

Pure core: :func:`trap_event` turns a notification's variable bindings into a :class:`TrapEvent`;
:func:`classify_trap` maps an event to a :class:`TrapFinding` through :class:`TrapRule` entries
keyed by trap OID (:func:`default_trap_rules` covers linkDown/linkUp/coldStart/warmStart/
authenticationFailure). Shell: :class:`TrapReceiver`, one pysnmp engine on a UDP socket per
address family, which hands accepted traps, in arrival order, to ``on_trap(asset, event)``.

Trust: a datagram from an address not in ``sources`` is counted and dropped before pysnmp parses
it. A v1/v2c community must be one of the source's; a v3 user must be one of the source's, at its
configured security level at least. v3 INFORMs authenticate with this receiver's engine ID
(senders discover it); v3 TRAPs with the sender's own engine ID, so a TRAP is accepted only from a
source whose ``engine_id`` is configured. One without it is dropped by pysnmp (no key to check
it with) and counted as ``unknown_engine_id``, logged with the engine ID it carried. A v3 user
name has one set of keys for INFORMs: sources that give the same name different keys get TRAPs
only (logged at start). Known limitation: an INFORM whose community or user is valid for another
source is acknowledged by pysnmp before it is refused here (counted ``bad_auth``, not delivered).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import socket
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from msgspec import Meta, Struct
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413.ntfrcv import NotificationReceiver
from pysnmp.error import PySnmpError
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from collector import CollectorError
from collector.domain import FaultType, Finding, Severity
from collector.network.config import SnmpConfig

logger = structlog.get_logger("schoolops.traps")

SNMP_TRAPS = "1.3.6.1.6.3.1.1.5"
LINK_DOWN, LINK_UP = f"{SNMP_TRAPS}.3", f"{SNMP_TRAPS}.4"
_SYS_UPTIME, _TRAP_OID, _TRAP_COMMUNITY = "1.3.6.1.2.1.1.3.0", "1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.18.1.4.0"
_IF_INDEX, _IF_DESCR, _IF_NAME = "1.3.6.1.2.1.2.2.1.1.", "1.3.6.1.2.1.2.2.1.2.", "1.3.6.1.2.1.31.1.1.1.1."
_IF_COLUMNS = ("1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1.")  # ifTable, ifXTable: instance = ifIndex
SUMMARY_FIELDS = ("if", "if_index", "oid", "source", "kind")
STATS = ("received", "accepted", "unknown_source", "bad_auth", "unknown_engine_id", "discovery",
         "not_in_time_window", "dropped", "queue_full", "callback_failed")


class TrapError(CollectorError):
    """Root of this module's errors: bad receiver settings, a socket that cannot be bound."""


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


# ---- who may send ----------------------------------------------------------------------------

_AUTH = {"MD5": snmp_config.USM_AUTH_HMAC96_MD5, "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
         "SHA224": snmp_config.USM_AUTH_HMAC128_SHA224, "SHA256": snmp_config.USM_AUTH_HMAC192_SHA256,
         "SHA384": snmp_config.USM_AUTH_HMAC256_SHA384, "SHA512": snmp_config.USM_AUTH_HMAC384_SHA512}
_PRIV = {("none", ""): snmp_config.USM_PRIV_NONE, ("DES", ""): snmp_config.USM_PRIV_CBC56_DES,
         ("AES", ""): snmp_config.USM_PRIV_CFB128_AES,
         ("AES192", "blumenthal"): snmp_config.USM_PRIV_CFB192_AES_BLUMENTHAL,
         ("AES256", "blumenthal"): snmp_config.USM_PRIV_CFB256_AES_BLUMENTHAL,
         ("AES192", "reeder"): snmp_config.USM_PRIV_CFB192_AES, ("AES256", "reeder"): snmp_config.USM_PRIV_CFB256_AES}


@dataclass(frozen=True)
class TrapUser:
    """An SNMPv3 (USM) user a source may send as; keys are resolved secrets, kept out of repr."""

    name: str
    auth: str | None = None  # MD5, SHA, SHA224, SHA256, SHA384, SHA512
    auth_key: str | None = field(default=None, repr=False)
    priv: str = "none"  # none, DES, AES, AES192, AES256
    priv_key: str | None = field(default=None, repr=False)
    aes_variant: str = "blumenthal"  # AES192/256 key extension: Net-SNMP blumenthal, Cisco reeder

    def __post_init__(self) -> None:
        self.protocols()
        if (self.auth is not None and not self.auth_key) or (self.priv != "none" and (self.auth is None or not self.priv_key)):
            raise TrapError(f"v3 user {self.name!r}: auth needs auth_key; priv needs auth and priv_key")

    @property
    def level(self) -> int:
        """The least security level accepted from this user: 1 noAuthNoPriv, 2 authNoPriv, 3 authPriv."""
        return 1 if self.auth is None else 2 if self.priv == "none" else 3

    def protocols(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        variant = self.aes_variant if self.priv in ("AES192", "AES256") else ""
        if (self.auth is not None and self.auth not in _AUTH) or (self.priv, variant) not in _PRIV:
            raise TrapError(f"v3 user {self.name!r}: unsupported auth {self.auth!r} / priv {self.priv!r} ({variant or '-'})")
        return _AUTH[self.auth] if self.auth else snmp_config.USM_AUTH_NONE, _PRIV[(self.priv, variant)]


@dataclass(frozen=True)
class TrapSource:
    """A device allowed to send traps: its asset, communities (label → community), v3 users and,
    for v3 TRAPs, its snmpEngineID."""

    asset: str
    communities: Mapping[str, str] = field(default_factory=dict, repr=False)
    users: tuple[TrapUser, ...] = ()
    engine_id: bytes | None = None

    @classmethod
    def from_snmp_config(cls, asset: str, snmp: SnmpConfig, secret: Callable[[str], str],
                         *, engine_id: str | bytes | None = None) -> TrapSource:
        """From a device's polling settings; ``secret(name)`` resolves a secret's name to its value."""
        engine = parse_engine_id(engine_id) if isinstance(engine_id, str) else engine_id
        if snmp.version == "2c":
            assert snmp.community_secret is not None
            return cls(asset, {snmp.community_secret: secret(snmp.community_secret)}, engine_id=engine)
        assert snmp.user is not None
        user = TrapUser(snmp.user, snmp.auth, secret(snmp.auth_secret) if snmp.auth_secret else None, snmp.priv,
                        secret(snmp.priv_secret) if snmp.priv_secret else None, snmp.aes_variant)
        return cls(asset, users=(user,), engine_id=engine)


def parse_engine_id(text: str) -> bytes:
    """An snmpEngineID written in hex ("0x80001f88…", "80:00:1f:88…"): 5 to 32 octets (RFC 3411)."""
    digits = text.strip().removeprefix("0x").removeprefix("0X").replace(":", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"engine_id: {text!r} is not hex") from None
    if not 5 <= len(value) <= 32:
        raise ValueError(f"engine_id: {len(value)} octets, an SNMP engine ID has 5 to 32")
    return value


def _address(text: str) -> str:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


# ---- the receiver (shell) --------------------------------------------------------------------

OnTrap = Callable[[str, TrapEvent], Awaitable[None]]
_VERSIONS = {0: "1", 1: "2c", 3: "3"}
_COUNTERS = (("__SNMPv2-MIB", "snmpInBadCommunityNames"), ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
             ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"), ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
             ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
             ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"), ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"))
_DROP_REASONS = {  # pysnmp's counter that moved → (stats key, reason)
    "snmpInBadCommunityNames": ("bad_auth", "unknown community"),
    "usmStatsUnknownEngineIDs": ("discovery", "engine ID discovery (the first step of a v3 INFORM)"),
    "usmStatsUnknownUserNames": ("bad_auth", "unknown v3 user"),
    "usmStatsWrongDigests": ("bad_auth", "wrong v3 authentication key"),
    "usmStatsDecryptionErrors": ("bad_auth", "cannot decrypt: wrong v3 privacy key or protocol"),
    "usmStatsUnsupportedSecLevels": ("bad_auth", "security level not supported by the v3 user"),
    "usmStatsNotInTimeWindows": ("not_in_time_window", "outside the v3 time window (stale or replayed)"),
}


@dataclass
class _Pending:
    """What pysnmp reported while it processed the current datagram (all synchronous)."""

    source: TrapSource
    address: str
    port: int
    engine_id: bytes | None = None
    settled: bool = False  # delivered or refused by this module


class _Screened:
    """Transport mixin: every datagram goes through the receiver's screen before pysnmp."""

    loop: asyncio.AbstractEventLoop
    _callback_function: Callable[..., None] | None
    screen: Callable[[Any, Any, bytes], None]

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        self.loop.call_soon(self.screen, self, transportAddress, datagram)

    def forward(self, address: Any, datagram: bytes) -> None:
        if self._callback_function is not None:
            self._callback_function(self, address, datagram)


class _Udp(_Screened, udp.UdpAsyncioTransport):
    pass


class _Udp6(_Screened, udp6.Udp6AsyncioTransport):
    pass


class TrapReceiver:
    """Listens for traps and informs from ``sources`` (IP address → :class:`TrapSource`).

    ``stats`` counts every datagram's fate (keys in :data:`STATS`). Accepted traps are handed to
    ``on_trap(asset, event)`` one at a time, in arrival order, from a bounded queue.
    """

    def __init__(self, sources: Mapping[str, TrapSource], on_trap: OnTrap, *, host: str = "0.0.0.0",
                 port: int = 162, host6: str | None = None, engine_id: bytes | None = None,
                 queue_size: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        try:
            self._sources = {_address(ip): source for ip, source in sources.items()}
        except ValueError as exc:
            raise TrapError(f"sources: {exc}") from exc
        self._on_trap, self._clock, self._queue_size = on_trap, clock, queue_size
        self._listen = [(socket.AF_INET, host, port)] + ([(socket.AF_INET6, host6, port)] if host6 else [])
        self._engine_id_setting = engine_id
        self.stats: dict[str, int] = dict.fromkeys(STATS, 0)
        self._engine: SnmpEngine | None = None
        self._transports: list[_Screened] = []
        self._pending: _Pending | None = None
        self._warned: set[tuple[str, ...]] = set()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs bound, once started (a port of 0 becomes the kernel's choice)."""
        return [tuple(t.transport.get_extra_info("sockname")[:2]) for t in self._transports if t.transport]  # type: ignore[attr-defined,misc]

    @property
    def engine_id(self) -> bytes:
        """This receiver's snmpEngineID (what v3 INFORM senders discover), once started."""
        if self._engine is None:
            raise TrapError("the trap receiver is not started")
        return bytes(self._engine.snmpEngineID)

    async def start(self) -> None:
        if self._engine is not None:
            raise TrapError("the trap receiver is already started")
        loop = asyncio.get_running_loop()
        sockets: list[socket.socket] = []
        engine: SnmpEngine | None = None
        try:
            for family, host, port in self._listen:
                sockets.append(_bind(family, host, port))
            engine = SnmpEngine(snmpEngineID=self._engine_id_setting) if self._engine_id_setting else SnmpEngine()
            self._configure(engine)
            for sock in sockets:
                transport = (_Udp if sock.family == socket.AF_INET else _Udp6)(loop=loop)
                transport.screen = self._screen
                await loop.create_datagram_endpoint(lambda t=transport: t, sock=sock)
                domain = udp.DOMAIN_NAME if sock.family == socket.AF_INET else udp6.DOMAIN_NAME
                snmp_config.add_transport(engine, domain, transport)
                self._transports.append(transport)
            self._receiver = NotificationReceiver(engine, self._on_notification)
        except BaseException as exc:  # release what was set up, whatever failed
            if engine is not None and engine.transport_dispatcher is not None:
                engine.close_dispatcher()
            for sock in sockets:
                sock.close()
            self._transports.clear()
            if isinstance(exc, (PySnmpError, PyAsn1Error)):
                raise TrapError(f"cannot start the trap receiver: {exc}") from exc
            raise
        self._engine = engine
        self._queue: asyncio.Queue[tuple[str, TrapEvent]] = asyncio.Queue(self._queue_size)
        self._worker = asyncio.create_task(self._deliver(), name="trap-delivery")
        logger.info("trap_receiver_started", addresses=self.addresses, sources=len(self._sources))

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop listening, then let ``on_trap`` finish the queued traps (bounded), then stop."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        self._receiver.close(engine)
        engine.observer.unregister_observer(self._observe_usm)
        engine.close_dispatcher()  # closes the sockets
        self._transports.clear()
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        except TimeoutError:
            logger.warning("trap_delivery_abandoned", queued=self._queue.qsize())
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        logger.info("trap_receiver_stopped", **self.stats)

    # -- set-up

    def _configure(self, engine: SnmpEngine) -> None:
        secnames: dict[str, str] = {}  # community → the pysnmp securityName standing for it
        self._labels: dict[str, dict[str, str]] = {}  # source address → securityName → community label
        for address, source in self._sources.items():
            for label, community in source.communities.items():
                secname = secnames.setdefault(community, f"community-{len(secnames) + 1}")
                self._labels.setdefault(address, {})[secname] = label
        for community, secname in secnames.items():
            snmp_config.add_v1_system(engine, secname, community, securityName=secname)
        by_name: dict[str, list[tuple[str, TrapUser]]] = {}
        for source in self._sources.values():
            for user in source.users:
                by_name.setdefault(user.name, []).append((source.asset, user))
                if source.engine_id is not None:  # v3 TRAPs: keys localized with the sender's engine ID
                    _add_user(engine, user, source.engine_id)
        for name, uses in by_name.items():  # v3 INFORMs: keys localized with this receiver's engine ID
            if len({(u.auth, u.auth_key, u.priv, u.priv_key, u.aes_variant) for _, u in uses}) == 1:
                _add_user(engine, uses[0][1], None)
            else:
                logger.warning("trap_user_keys_differ", user=name, assets=sorted({a for a, _ in uses}),
                               effect="v3 INFORMs from this user are refused; v3 TRAPs work where engine_id is set")
        self._user_names = set(by_name)
        engine.observer.register_observer(self._observe_usm, "rfc3414.processIncomingMsg")
        mib = engine.get_mib_builder()
        self._counters = {name: mib.import_symbols(module, name)[0] for module, name in _COUNTERS}

    # -- per datagram (synchronous: pysnmp calls back within forward())

    def _screen(self, transport: _Screened, address: Any, datagram: bytes) -> None:
        if self._engine is None:
            return
        self.stats["received"] += 1
        ip = str(address[0])
        try:
            ip = _address(ip)
        except ValueError:
            pass
        source = self._sources.get(ip)
        if source is None:
            self.stats["unknown_source"] += 1
            self._warn(("unknown_source", ip), "trap_unknown_source", source=ip, port=address[1])
            return
        before = self._counts()
        pending = self._pending = _Pending(source, ip, int(address[1]))
        try:
            transport.forward(address, datagram)  # pysnmp decodes, authenticates, answers an INFORM, calls back
        except Exception:
            logger.exception("trap_processing_failed", asset=source.asset, source=ip)
            self.stats["dropped"] += 1
            return
        finally:
            self._pending = None
        if not pending.settled:
            self._dropped(pending, before, self._counts(), datagram)

    def _observe_usm(self, engine: SnmpEngine, execpoint: str, variables: dict[str, Any], ctx: Any) -> None:
        if self._pending is not None:
            self._pending.engine_id = bytes(variables["securityEngineId"])

    def _on_notification(self, engine: SnmpEngine, state: Any, context_engine_id: Any, context_name: Any,
                         varbinds: Sequence[tuple[Any, Any]], ctx: Any) -> None:
        pending = self._pending
        if pending is None:
            return
        pending.settled = True
        request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        version = _VERSIONS.get(int(request["messageProcessingModel"]), "?")
        principal, refusal = self._authorize(pending, version, str(request["securityName"]), int(request["securityLevel"]))
        log = {"asset": pending.source.asset, "source": pending.address, "version": version}
        if principal is None:
            self.stats["bad_auth"] += 1
            self._warn(("bad_auth", pending.address, refusal), "trap_bad_auth", reason=refusal, **log)
            return
        event = trap_event(
            [(str(oid), value.prettyPrint()) for oid, value in varbinds], received_at=self._clock(),
            source=pending.address, source_port=pending.port, version=version, principal=principal,
            inform=request["pdu"].tagSet == v2c.InformRequestPDU.tagSet,
            engine_id=pending.engine_id.hex() if pending.engine_id is not None else None,
        )
        try:
            self._queue.put_nowait((pending.source.asset, event))
        except asyncio.QueueFull:
            self.stats["queue_full"] += 1
            self._warn(("queue_full",), "trap_queue_full", trap_oid=event.trap_oid, **log)
            return
        self.stats["accepted"] += 1
        logger.info("trap_received", trap_oid=event.trap_oid, kind=str(event.kind), if_index=event.if_index,
                    inform=event.inform, **log)

    def _authorize(self, pending: _Pending, version: str, secname: str, level: int) -> tuple[str | None, str]:
        """(principal, "") when the source may send with these credentials, else (None, why not)."""
        if version in ("1", "2c"):
            label = self._labels.get(pending.address, {}).get(secname)
            return (label, "") if label is not None else (None, "community belongs to another source")
        user = next((u for u in pending.source.users if u.name == secname), None)
        if user is None:
            return None, "v3 user belongs to another source"
        if level < user.level:
            return None, "security level lower than the v3 user's"
        if pending.engine_id not in (bytes(self._engine.snmpEngineID) if self._engine else None, pending.source.engine_id):
            return None, "v3 engine ID belongs to another source"
        return user.name, ""

    def _dropped(self, pending: _Pending, before: dict[str, int], after: dict[str, int], datagram: bytes) -> None:
        moved = next((name for name in _DROP_REASONS if after[name] > before[name]), None)
        key, reason = _DROP_REASONS.get(moved or "", ("dropped", "not a notification, or malformed"))
        log: dict[str, Any] = {"asset": pending.source.asset, "source": pending.address, "reason": reason}
        if moved == "usmStatsUnknownUserNames":
            user, engine_id = _v3_header(datagram)
            log.update(user=user, engine_id=engine_id)
            if user in self._user_names:
                key, log["reason"] = "unknown_engine_id", "v3 TRAP from an engine ID not configured for this source"
                log["hint"] = f"set engine_id {engine_id} for this source if it is the device's snmpEngineID"
        self.stats[key] += 1
        if key == "discovery":
            logger.debug("trap_engine_discovery", **log)
        else:
            self._warn((key, pending.address, str(log.get("engine_id"))), f"trap_{key}", **log)

    def _counts(self) -> dict[str, int]:
        return {name: int(node.syntax) for name, node in self._counters.items()}

    def _warn(self, key: tuple[str, ...], event: str, **values: Any) -> None:
        """Warn once per key (a chatty device must not flood the log); later repeats at debug."""
        if key in self._warned or len(self._warned) >= 4096:
            logger.debug(event, **values)
            return
        self._warned.add(key)
        logger.warning(event, **values)

    async def _deliver(self) -> None:
        while True:
            asset, event = await self._queue.get()
            try:
                await self._on_trap(asset, event)
            except Exception:
                self.stats["callback_failed"] += 1
                logger.exception("trap_callback_failed", asset=asset, trap_oid=event.trap_oid)
            finally:
                self._queue.task_done()


def _bind(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise TrapError(f"cannot listen for traps on {host} port {port}: {exc.strerror or exc}") from exc
    return sock


def _add_user(engine: SnmpEngine, user: TrapUser, engine_id: bytes | None) -> None:
    auth, priv = user.protocols()
    snmp_config.add_v3_user(engine, user.name, auth, user.auth_key, priv, user.priv_key, securityEngineId=engine_id)


def _v3_header(datagram: bytes) -> tuple[str | None, str | None]:
    """(msgUserName, msgAuthoritativeEngineID hex) of an SNMPv3 message, for diagnostics."""
    try:
        message, _ = ber_decoder.decode(datagram, asn1Spec=SNMPv3Message())
        params, _ = ber_decoder.decode(bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
        return bytes(params["msgUserName"]).decode(errors="replace"), bytes(params["msgAuthoritativeEngineId"]).hex()
    except (PyAsn1Error, KeyError, TypeError, ValueError):
        return None, None
