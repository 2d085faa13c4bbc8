"""Receiving SNMP traps and informs from known devices (the shell around :mod:`collector.network.traps`).

:class:`TrapReceiver`, one pysnmp engine on a UDP socket per address family, hands accepted traps,
in arrival order, to ``on_trap(asset, event)``; who may send is said by the
:class:`~collector.network.trap_sources.TrapSource` entries it is given.

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
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
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

from collector.network.trap_sources import TrapSource, TrapUser
from collector.network.traps import STATS, TrapError, TrapEvent, trap_event

logger = structlog.get_logger("schoolops.traps")


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

    ``stats`` counts every datagram's fate (keys in :data:`~collector.network.traps.STATS`). Accepted traps are handed to
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
