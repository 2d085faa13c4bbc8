"""One conversation with one SNMP device: its credentials, the errors that say what to check, and
the requests — GET, and GETBULK walks of several table columns at once — over pysnmp on asyncio.

Numeric OIDs only (Debian ships no IETF MIB files), sent as raw varbinds through pysnmp's command
generators: the high-level calls resolve every requested OID against their MIB tree first, which
costs more than the request. Every pysnmp error is wrapped here in an :class:`SnmpError` naming the
device and what to check. What a poll reads is :mod:`collector.network.snmp`.
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
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD  # targets, as the high-level calls configure them
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import ObjectName
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from collector import CollectorError
from collector.network.config import SnmpConfig
from collector.network.counters import Column

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


def _python(value: Any) -> int | str:
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
    """One poll's conversation with one device; turns pysnmp's error values into SnmpError."""

    def __init__(self, engine: hl.SnmpEngine, address: str, config: SnmpConfig, creds: Credentials,
                 now: float) -> None:
        self.engine, self.address, self.config, self.creds = engine, address, config, creds
        self.device = f"{address}:{config.port}"
        self.loop = asyncio.get_running_loop()
        self.started, self.now = self.loop.time(), now
        self.auth: hl.CommunityData | hl.UsmUserData | None = None
        self.target: hl.UdpTransportTarget | hl.Udp6TransportTarget | None = None
        self.context = hl.ContextData()

    def clock(self) -> float:
        """``now`` as the caller gave it, advanced by the time this poll has taken so far."""
        return self.now + (self.loop.time() - self.started)

    async def open(self) -> None:
        host = self.address.strip("[]")
        cls = hl.Udp6TransportTarget if ":" in host else hl.UdpTransportTarget
        try:
            self.auth = self.creds.auth_data()
            self.target = await cls.create((host, self.config.port), timeout=float(self.config.timeout),
                                           retries=self.config.retries)
        except (PySnmpError, PyAsn1Error, OSError) as exc:
            raise SnmpError(self.device, f"cannot set up SNMP to {self.address!r}: {exc}") from exc

    def error(self, indication: Any, status: Any, oid: str) -> SnmpError:
        d, creds, cfg = self.device, self.creds, self.config
        who = f"community (secret {cfg.community_secret})" if creds.community is not None else f"user {creds.user!r}"
        if isinstance(indication, errind.RequestTimedOut):
            tries = f"{cfg.timeout:g}s x {cfg.retries + 1} tries"
            if creds.community is not None:
                return SnmpTimeout(d, f"no answer within {tries}: check the device is up and reachable on "
                                      f"UDP {cfg.port}, SNMP is enabled, and the community is right "
                                      f"(a wrong community gets no answer at all)")
            return SnmpTimeout(d, f"no answer within {tries}: check the device is up and reachable on UDP "
                                  f"{cfg.port}, SNMP is enabled, and the privacy protocol and key of {who} "
                                  f"(a wrong priv key gets no answer; for AES-192/256 check aes_variant: "
                                  f"'reeder' for Cisco, 'blumenthal' for Net-SNMP)")
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
        if indication:
            if isinstance(indication, errind.TooBig):
                return SnmpError(d, f"response too big while reading {oid}: lower max_repetitions")
            return SnmpError(d, f"SNMP error while reading {oid}: {indication}")
        code = int(status)
        if code in (6, 16):  # noAccess, authorizationError
            return SnmpAuthorizationError(d, f"access to {oid} denied to {who} ({status.prettyPrint()}): check "
                                             f"the device's view for it and the security level it requires")
        if code == 1:
            return SnmpError(d, f"response too big while reading {oid}: lower max_repetitions")
        return SnmpError(d, f"the device answered {oid} with error {status.prettyPrint()}")

    async def request(self, generator: Any, oids: Sequence[str | tuple[int, ...]],
                      *bulk: int) -> tuple[Any, Any, Sequence[tuple[Any, Any]]]:
        """One GET (or GETBULK with ``bulk`` = non-repeaters, max-repetitions) of numeric OIDs:
        (error indication, error status, varbinds). pysnmp's command generator with raw varbinds —
        its high-level calls first resolve every requested OID against their MIB tree, which costs
        more than the request itself, and this module reads numeric OIDs only."""
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
            try:
                ind, status, binds = await self.request(cmdgen.GetCommandGenerator, batch)
            except (PySnmpError, PyAsn1Error) as exc:
                raise SnmpError(self.device, f"SNMP failure reading {batch[0]}: {exc}") from exc
            if ind or status:
                raise self.error(ind, status, batch[0])
            for name, value in binds:
                if not isinstance(value, (NoSuchObject, NoSuchInstance, EndOfMibView, univ.Null)):
                    found[str(name)] = _python(value)
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
            try:
                ind, status, binds = await self.request(cmdgen.BulkCommandGenerator, [last[n] for n in pending], 0,
                                                         repetitions)
            except (PySnmpError, PyAsn1Error) as exc:
                raise SnmpError(self.device, f"SNMP failure walking {columns[pending[0]]}: {exc}") from exc
            if ind or status:
                raise self.error(ind, status, columns[pending[0]])
            at, ended, moved = self.clock(), set(), False
            for position, (name, value) in enumerate(binds):
                column = pending[position % len(pending)]
                oid, prefix = tuple(name), prefixes[column]
                if column in ended:
                    continue
                if isinstance(value, EndOfMibView) or oid[:len(prefix)] != prefix or oid <= last[column]:
                    ended.add(column)
                    continue
                last[column], stamps[column], moved = oid, at, True
                index = oid[len(prefix):]
                if len(index) == 1 and not isinstance(value, (NoSuchObject, NoSuchInstance)):
                    values[column][index[0]] = _python(value)
                    if len(values[column]) >= MAX_ROWS:
                        ended.add(column)
            pending = [name for name in pending if name not in ended]
            if not moved:
                break
        now = self.clock()
        return {name: Column(values[name], stamps.get(name, now)) for name in names}
