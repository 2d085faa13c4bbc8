"""One conversation with one SNMP device: its credentials, the errors that say what to check, and
the requests — GET, and GETBULK walks of several table columns at once — on asyncio.

SNMPv2c goes through :mod:`collector.network.snmp_wire` (its own codec: pysnmp's generic decoder
was most of a poll's cost); SNMPv3 through pysnmp's command generators with raw varbinds (the
high-level calls resolve every requested OID against their MIB tree first, which costs more than
the request). Both give varbinds in one form, ``(oid tuple, int | str | Absent)``. Numeric OIDs
only (Debian ships no IETF MIB files). Every failure is wrapped here in an :class:`SnmpError`
naming the device and what to check. What a poll reads is :mod:`collector.network.snmp`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hl
from pysnmp.hlapi.v3arch.asyncio.cmdgen import (
    LCD,  # targets, as the high-level calls configure them
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import IpAddress, ObjectName
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from collector import CollectorError
from collector.network import snmp_wire
from collector.network.config import SnmpConfig
from collector.network.counters import Column
from collector.network.snmp_wire import (
    GET,
    GETBULK,
    Absent,
    Channel,
    NoAnswer,
    Oid,
    VarBind,
)

MAX_ROWS = 4096  # per column; also the wire limit on interfaces
GET_BATCH = 40  # varbinds per GET request

_AUTH = {"MD5": hl.usmHMACMD5AuthProtocol, "SHA": hl.usmHMACSHAAuthProtocol,
         "SHA224": hl.usmHMAC128SHA224AuthProtocol, "SHA256": hl.usmHMAC192SHA256AuthProtocol,
         "SHA384": hl.usmHMAC256SHA384AuthProtocol, "SHA512": hl.usmHMAC384SHA512AuthProtocol}
_PRIV = {("DES", "blumenthal"): hl.usmDESPrivProtocol, ("DES", "reeder"): hl.usmDESPrivProtocol,
         ("AES", "blumenthal"): hl.usmAesCfb128Protocol, ("AES", "reeder"): hl.usmAesCfb128Protocol,
         ("AES192", "blumenthal"): hl.usmAesBlumenthalCfb192Protocol, ("AES192", "reeder"): hl.usmAesCfb192Protocol,
         ("AES256", "blumenthal"): hl.usmAesBlumenthalCfb256Protocol, ("AES256", "reeder"): hl.usmAesCfb256Protocol}


class SnmpError(CollectorError):
    """A device could not be polled; the message names the device and what to check."""

    result: ClassVar[str] = "error"  # the `result` label of polls_total

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device


class SnmpTimeout(SnmpError):
    """No answer: the device is down or unreachable, or it silently drops a wrong community / priv key."""

    result = "timeout"


class SnmpAuthenticationError(SnmpError):
    """The device rejected the SNMPv3 user or its keys (wrong digest, unknown user, decryption error)."""

    result = "auth_failure"


class SnmpAuthorizationError(SnmpError):
    """The device authenticated us but its access control refuses the object or security level."""

    result = "access_denied"


class SnmpDeadlineExceeded(SnmpError):
    """The whole poll took longer than the device's interval and was abandoned."""

    result = "deadline_exceeded"


class _InternalError(SnmpError):
    result = "internal_error"


RESULTS = ("ok", *(c.result for c in (SnmpError, SnmpTimeout, SnmpAuthenticationError, SnmpAuthorizationError,
                                      SnmpDeadlineExceeded, _InternalError)))


@dataclass(frozen=True)
class Credentials:
    """v2c community, or v3 USM user with protocols (SnmpConfig names) and keys resolved from secrets."""

    community: str | None = field(default=None, repr=False)
    user: str | None = None
    auth_protocol: str | None = None  # MD5 SHA SHA224 SHA256 SHA384 SHA512
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str = "none"  # none DES AES AES192 AES256
    priv_key: str | None = field(default=None, repr=False)
    aes_variant: str = "blumenthal"  # AES-192/256 key extension: blumenthal (Net-SNMP) | reeder (Cisco)

    def __post_init__(self) -> None:
        if (self.community is None) == (self.user is None):
            raise ValueError("credentials: give a community (v2c) or a user (v3), not both")
        if self.auth_protocol is not None and self.auth_protocol not in _AUTH:
            raise ValueError(f"auth_protocol: {self.auth_protocol!r} is not one of {', '.join(_AUTH)}")
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_key: an auth protocol and its key go together")
        if self.priv_protocol != "none" and (self.priv_protocol, self.aes_variant) not in _PRIV:
            raise ValueError(f"priv_protocol: {self.priv_protocol!r}/{self.aes_variant!r} is not supported")
        if self.priv_protocol != "none" and (self.auth_key is None or self.priv_key is None):
            raise ValueError("priv_key: privacy needs authentication and a priv key")
        for name, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key) < 8:
                raise ValueError(f"{name}: an SNMPv3 pass phrase has at least 8 characters (RFC 3414)")

    @classmethod
    def from_config(cls, config: SnmpConfig, secret: Callable[[str], str]) -> Credentials:
        """Resolve the secret names in ``config`` through ``secret(name) -> value``."""
        if config.version == "2c":
            assert config.community_secret is not None  # SnmpConfig guarantees it
            return cls(community=secret(config.community_secret))
        return cls(user=config.user, auth_protocol=config.auth,
                   auth_key=secret(config.auth_secret) if config.auth_secret else None,
                   priv_protocol=config.priv,
                   priv_key=secret(config.priv_secret) if config.priv_secret else None,
                   aes_variant=config.aes_variant)

    def auth_data(self) -> hl.CommunityData | hl.UsmUserData:
        if self.community is not None:
            return hl.CommunityData(self.community, mpModel=1)
        priv = None if self.priv_protocol == "none" else _PRIV[self.priv_protocol, self.aes_variant]
        return hl.UsmUserData(self.user, self.auth_key, self.priv_key,
                              authProtocol=_AUTH[self.auth_protocol] if self.auth_protocol else None,
                              privProtocol=priv)


def _native(value: Any) -> int | str | Absent:
    """A pysnmp value as the v2c codec gives it (an IpAddress dotted, an OID dotted, text from octets)."""
    if isinstance(value, EndOfMibView):
        return Absent.END_OF_MIB_VIEW
    if isinstance(value, NoSuchObject):
        return Absent.NO_SUCH_OBJECT
    if isinstance(value, NoSuchInstance):
        return Absent.NO_SUCH_INSTANCE
    if isinstance(value, univ.Null):
        return Absent.NULL
    if isinstance(value, IpAddress):
        return ".".join(str(b) for b in bytes(value))
    if isinstance(value, univ.OctetString):
        return bytes(value).decode("utf-8", "replace").rstrip("\x00")
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(x) for x in value)
    return int(value)


_NUMERIC_OID = re.compile(r"^[0-9]+(?:\.[0-9]+)+\Z")
_NULL = univ.Null("")


def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


class Session:
    """One poll's conversation with one device: v2c over :class:`~collector.network.snmp_wire.Channel`,
    v3 through pysnmp's ``engine``; failures become SnmpError. ``close()`` when done."""

    def __init__(self, engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
                 now: float) -> None:
        self.engine, self.address, self.config, self.creds = engine, address, config, creds
        self.device = f"{address}:{config.port}"
        self.loop = asyncio.get_running_loop()
        self.started, self.now = self.loop.time(), now
        self.auth: hl.CommunityData | hl.UsmUserData | None = None
        self.target: hl.UdpTransportTarget | hl.Udp6TransportTarget | None = None
        self.context = hl.ContextData()
        self.channel: Channel | None = None

    def clock(self) -> float:
        """``now`` as the caller gave it, advanced by the time this poll has taken so far."""
        return self.now + (self.loop.time() - self.started)

    async def open(self) -> None:
        host = self.address.strip("[]")
        try:
            if self.creds.community is not None:
                self.channel = await Channel.open(host, self.config.port, self.creds.community,
                                                  float(self.config.timeout), self.config.retries)
                return
            cls = hl.Udp6TransportTarget if ":" in host else hl.UdpTransportTarget
            self.auth = self.creds.auth_data()
            self.target = await cls.create((host, self.config.port), timeout=float(self.config.timeout),
                                           retries=self.config.retries)
        except (PySnmpError, PyAsn1Error, OSError) as exc:
            raise SnmpError(self.device, f"cannot set up SNMP to {self.address!r}: {exc}") from exc

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def _who(self) -> str:
        if self.creds.community is not None:
            return f"community (secret {self.config.community_secret})"
        return f"user {self.creds.user!r}"

    def timeout(self, problem: str | None = None) -> SnmpTimeout:
        cfg, tries = self.config, f"{self.config.timeout:g}s x {self.config.retries + 1} tries"
        seen = f" ({problem})" if problem else ""
        if self.creds.community is not None:
            return SnmpTimeout(self.device, f"no answer within {tries}{seen}: check the device is up and reachable "
                                            f"on UDP {cfg.port}, SNMP is enabled, and the community is right "
                                            f"(a wrong community gets no answer at all)")
        return SnmpTimeout(self.device, f"no answer within {tries}: check the device is up and reachable on UDP "
                                        f"{cfg.port}, SNMP is enabled, and the privacy protocol and key of "
                                        f"{self._who()} (a wrong priv key gets no answer; for AES-192/256 check "
                                        f"aes_variant: 'reeder' for Cisco, 'blumenthal' for Net-SNMP)")

    def status_error(self, code: int, name: str, oid: str) -> SnmpError:
        """The device answered with a non-zero error-status ``code`` (``name`` as RFC 3416 spells it)."""
        if code in (6, 16):  # noAccess, authorizationError
            return SnmpAuthorizationError(self.device, f"access to {oid} denied to {self._who()} ({name}): check "
                                                       f"the device's view for it and the security level it requires")
        if code == 1:
            return SnmpError(self.device, f"response too big while reading {oid}: lower max_repetitions")
        return SnmpError(self.device, f"the device answered {oid} with error {name}")

    def indication_error(self, indication: Any, oid: str) -> SnmpError:
        """pysnmp's error indication (v3: no answer, keys, security level) as an SnmpError."""
        d, creds, cfg, who = self.device, self.creds, self.config, self._who()
        if isinstance(indication, errind.RequestTimedOut):
            return self.timeout()
        if isinstance(indication, (errind.WrongDigest, errind.AuthenticationFailure, errind.AuthenticationError)):
            return SnmpAuthenticationError(d, f"authentication failure for {who}: wrong digest; check the auth "
                                              f"protocol ({creds.auth_protocol}) and key (auth_secret "
                                              f"{cfg.auth_secret})")
        if isinstance(indication, errind.UnknownUserName):
            return SnmpAuthenticationError(d, f"authentication failure: the device has no SNMPv3 {who}; "
                                              f"check the user name and the device's USM configuration")
        if isinstance(indication, errind.DecryptionError):
            return SnmpAuthenticationError(d, f"decryption error for {who}: check the privacy protocol "
                                              f"({creds.priv_protocol}, {creds.aes_variant}) and key")
        if isinstance(indication, (errind.UnsupportedSecurityLevel, errind.NotInTimeWindow,
                                   errind.UnknownEngineID)):
            return SnmpAuthenticationError(d, f"{who} rejected ({indication}): check the security level "
                                              f"(auth/priv) matches the user on the device")
        if isinstance(indication, errind.TooBig):
            return SnmpError(d, f"response too big while reading {oid}: lower max_repetitions")
        return SnmpError(d, f"SNMP error while reading {oid}: {indication}")

    async def request(self, kind: int, oids: Sequence[Oid], what: str, *bulk: int) -> list[VarBind]:
        """One GET (``kind`` GET) or GETBULK (``bulk`` = non-repeaters, max-repetitions) of numeric
        OIDs: the varbinds of the answer. ``what``: the OID to name in an error."""
        if self.channel is not None:
            try:
                response = await self.channel.request(kind, oids, *bulk)
            except NoAnswer as exc:
                raise self.timeout(exc.problem) from None
            except (ValueError, OSError) as exc:
                raise SnmpError(self.device, f"SNMP failure reading {what}: {exc}") from exc
            if response.error_status:
                raise self.status_error(response.error_status, snmp_wire.error_name(response.error_status), what)
            return response.varbinds
        try:
            indication, status, binds = await self._pysnmp(
                cmdgen.GetCommandGenerator if kind == GET else cmdgen.BulkCommandGenerator, oids, *bulk)
        except (PySnmpError, PyAsn1Error) as exc:
            raise SnmpError(self.device, f"SNMP failure reading {what}: {exc}") from exc
        if indication:
            raise self.indication_error(indication, what)
        if status:
            raise self.status_error(int(status), status.prettyPrint(), what)
        return [(tuple(name), _native(value)) for name, value in binds]

    async def _pysnmp(self, generator: Any, oids: Sequence[Oid],
                      *bulk: int) -> tuple[Any, Any, Sequence[tuple[Any, Any]]]:
        target, _ = LCD.configure(self.engine, self.auth, self.target, self.context.contextName)
        answer: asyncio.Future[tuple[Any, Any, Sequence[tuple[Any, Any]]]] = self.loop.create_future()

        def done(_engine: Any, _handle: Any, indication: Any, status: Any, _index: Any, binds: Any, _ctx: Any) -> None:
            if not answer.done():  # a poll past its deadline was cancelled
                answer.set_result((indication, status, binds))

        generator().send_varbinds(self.engine, target, self.context.contextEngineId, self.context.contextName, *bulk,
                                [(ObjectName(oid), _NULL) for oid in oids], done)
        return await answer

    async def get(self, oids: Sequence[str]) -> dict[str, int | str]:
        """GET in batches; objects the device lacks are left out."""
        found: dict[str, int | str] = {}
        for start in range(0, len(oids), GET_BATCH):
            batch = oids[start:start + GET_BATCH]
            for oid, value in await self.request(GET, [_oid(o) for o in batch], batch[0]):
                if not isinstance(value, Absent):
                    found[".".join(map(str, oid))] = value
        return found

    async def walk(self, columns: Mapping[str, str], rows: int | None = None, *,
                   probe: int | None = None) -> dict[str, Column]:
        """Walk table columns (single-integer index) together with GETBULK, each bounded to MAX_ROWS rows.

        One request asks for every column still being walked, ``rep`` rows each; the answer is row
        by row (row 1 of every column, then row 2 …) and an agent may cut it short. A column ends
        where its OIDs leave it. ``rows``: how many rows the table is known to have — asking for one
        more ends every column in the same request without making the device compute what follows.
        ``probe``: rows asked in the first request, for tables a device may well not have (a
        missing column costs as many varbinds of whatever follows it). One request for many
        columns instead of one walk each: a request costs the poller more than a dozen varbinds."""
        names = list(columns)
        prefixes = {name: _oid(columns[name]) for name in names}
        last = dict(prefixes)  # where each column's walk goes on from
        values: dict[str, dict[int, int | str]] = {name: {} for name in names}
        stamps: dict[str, float] = {}
        limit = self.config.max_repetitions
        rep = limit if rows is None else max(1, min(rows + 1, limit))
        pending, first = names, True
        for _ in range((MAX_ROWS // rep + 1) * len(names)):  # every request moves a column on, or the walk ends
            if not pending:
                break
            repetitions, first = (probe if probe and first else rep), False
            binds = await self.request(GETBULK, [last[n] for n in pending], columns[pending[0]], 0, repetitions)
            at, ended, moved = self.clock(), set(), False
            width = len(pending)
            for position, (oid, value) in enumerate(binds):
                column = pending[position % width]
                if column in ended:
                    continue
                prefix = prefixes[column]
                if value is Absent.END_OF_MIB_VIEW or oid[:len(prefix)] != prefix or oid <= last[column]:
                    ended.add(column)
                    continue
                last[column], stamps[column], moved = oid, at, True
                if len(oid) == len(prefix) + 1 and not isinstance(value, Absent):
                    values[column][oid[-1]] = value
                    if len(values[column]) >= MAX_ROWS:
                        ended.add(column)
            pending = [name for name in pending if name not in ended]
            if not moved:
                break
        now = self.clock()
        return {name: Column(values[name], stamps.get(name, now)) for name in names}
